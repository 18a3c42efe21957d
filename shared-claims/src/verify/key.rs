//! One trusted RS256 key, parsed once for every signature it will check.
//!
//! Verification sits on every request of every service that trusts our tokens, so the
//! key's parsing (the modulus into the library's form, its Montgomery constants) is done
//! when the key set is built, not per token. The check itself is AWS-LC's RSASSA-PKCS1-v1_5
//! with SHA-256, for moduli of 2048 to 8192 bits: the algorithm is fixed here, never read
//! from a token.

use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};

use crate::jwk::RsaPublicKey;
use crate::signing::header_segment;

/// A trusted public key ready to check RS256 signatures.
#[derive(Clone)]
pub struct VerifyingKey {
    parsed: ParsedPublicKey,
    /// The header segment our issuer writes into every token this key signs: a token
    /// that starts with it byte for byte needs no header parsing (it passes every header
    /// rule and names this key).
    header: String,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey").finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Parses `key` for RS256; `None` if the RSA library cannot use it (a key that
    /// [`RsaPublicKey`] accepted always parses: 2048 bits or more, a non-zero exponent).
    pub fn new(key: &RsaPublicKey) -> Option<Self> {
        RsaPublicKeyComponents {
            n: key.modulus(),
            e: key.exponent(),
        }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .ok()
        .map(|parsed| Self {
            parsed,
            header: header_segment(&key.thumbprint()),
        })
    }

    /// The first segment of the tokens our issuer signs with this key.
    pub(crate) fn header_segment(&self) -> &str {
        &self.header
    }

    /// Whether `signature` is this key's RS256 signature over `message` (RFC 7518 §3.3).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.parsed.verify_sig(message, signature).is_ok()
    }

    /// [`Self::verifies`] for a message already hashed with SHA-256 (`digest`).
    pub(crate) fn verifies_digest(&self, digest: &Digest, signature: &[u8]) -> bool {
        digest.algorithm() == &SHA256 && self.parsed.verify_digest_sig(digest, signature).is_ok()
    }
}
