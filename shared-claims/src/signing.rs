//! Signing access tokens with an RSA key parsed once, and making such keys.
//!
//! The issuer signs thousands of tokens with the same key, so it keeps a parsed key pair
//! and a pre-encoded header and only does the RSA operation per token (a JWT library
//! that takes the key per call re-parses it every time). The RSA operations are AWS-LC's
//! (`aws-lc-rs`), which signs RSA-2048 with AVX-512 IFMA where the CPU has it.

use aws_lc_rs::encoding::{AsDer as _, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use serde::Serialize;

use crate::claims::ACCESS_TOKEN_TYPE;
use crate::jwk::{KeyError, RsaPublicKey};
use crate::pem;

/// Why a key could not be loaded or a token not signed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The file is not a PKCS#8 `PRIVATE KEY` PEM.
    #[error(transparent)]
    Pem(#[from] pem::PemError),
    /// The RSA library refused the key (wrong type, inconsistent).
    #[error("unusable RSA private key: {0}")]
    Rejected(String),
    /// The public half is unusable.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The claims did not serialize or the RSA operation failed.
    #[error("signing failed: {0}")]
    Sign(String),
    /// No key of that size can be generated.
    #[error("cannot generate an RSA key of {0} bits (2048, 3072, 4096 or 8192)")]
    UnsupportedKeySize(usize),
}

/// A fresh RSA private key of `bits` (2048, 3072, 4096 or 8192) as PKCS#8 PEM text, the
/// form the key directory holds. Secret: it must only ever be written with mode 0600.
pub fn generate_rsa_pkcs8_pem(bits: usize) -> Result<SecretString, SigningError> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        8192 => KeySize::Rsa8192,
        _ => return Err(SigningError::UnsupportedKeySize(bits)),
    };
    let pair = KeyPair::generate(size).map_err(|e| SigningError::Sign(e.to_string()))?;
    let der: Pkcs8V1Der<'_> = pair
        .as_der()
        .map_err(|e| SigningError::Sign(e.to_string()))?;
    Ok(SecretString::from(pem::encode(der.as_ref(), "PRIVATE KEY")))
}

/// An RS256 signing key: parsed key pair, its public key and its `kid`.
pub struct RsaSigningKey {
    pair: KeyPair,
    public: RsaPublicKey,
    kid: String,
    /// `base64url(header).`, the same for every token this key signs.
    header_prefix: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("RsaSigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    kid: &'a str,
}

/// `base64url({"alg":"RS256","typ":"at+jwt","kid":…})`: the first segment of every token
/// signed by the key `kid`. Verifiers recognise it byte for byte instead of parsing it.
pub(crate) fn header_segment(kid: &str) -> String {
    let header = Header {
        alg: "RS256",
        typ: ACCESS_TOKEN_TYPE,
        kid,
    };
    // Serializing three string fields cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default())
}

impl RsaSigningKey {
    /// Reads the text of a PKCS#8 PEM file (label `PRIVATE KEY`).
    pub fn from_pkcs8_pem(text: &str) -> Result<Self, SigningError> {
        Self::from_pkcs8_der(&pem::decode(text, "PRIVATE KEY")?)
    }

    /// Reads a DER PKCS#8 RSA private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, SigningError> {
        let pair = KeyPair::from_pkcs8(der).map_err(|e| SigningError::Rejected(e.to_string()))?;
        // Below 2048 bits is refused here (`KeyError::TooShort`).
        let public = RsaPublicKey::from_components(
            pair.public_key()
                .modulus()
                .big_endian_without_leading_zero(),
            pair.public_key()
                .exponent()
                .big_endian_without_leading_zero(),
        )?;
        let kid = public.thumbprint();
        let header_prefix = format!("{}.", header_segment(&kid));
        Ok(Self {
            pair,
            public,
            kid,
            header_prefix,
            rng: SystemRandom::new(),
        })
    }

    /// The RFC 7638 thumbprint that goes into every token's `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, for the JWKS.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// Signs `claims` as a compact JWS with header `{"alg":"RS256","typ":"at+jwt","kid":…}`.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, SigningError> {
        self.sign_after(self.header_prefix.clone(), claims)
    }

    /// Signs `claims` under a header of the caller's (JSON text), for tests of what
    /// verifiers make of headers our issuer never writes.
    #[cfg(test)]
    pub(crate) fn sign_with_header<C: Serialize>(
        &self,
        header_json: &str,
        claims: &C,
    ) -> Result<String, SigningError> {
        self.sign_after(format!("{}.", URL_SAFE_NO_PAD.encode(header_json)), claims)
    }

    /// `token` + base64url(claims), signed.
    fn sign_after<C: Serialize>(
        &self,
        mut token: String,
        claims: &C,
    ) -> Result<String, SigningError> {
        let payload = serde_json::to_vec(claims).map_err(|e| SigningError::Sign(e.to_string()))?;
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|e| SigningError::Sign(e.to_string()))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn a_generated_key_has_the_requested_size_and_loads_into_the_signer() {
        let pem = generate_rsa_pkcs8_pem(3072).unwrap();
        // Reading it checks the PEM label and the PKCS#8 structure.
        let key = RsaSigningKey::from_pkcs8_pem(pem.expose_secret()).unwrap();
        assert_eq!(key.public_key().bits(), 3072);
    }

    #[test]
    fn only_the_supported_key_sizes_are_generated() {
        assert!(matches!(
            generate_rsa_pkcs8_pem(1024),
            Err(SigningError::UnsupportedKeySize(1024))
        ));
    }
}
