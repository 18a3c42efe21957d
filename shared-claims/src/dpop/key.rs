//! The public key a DPoP proof carries in its `jwk` header (RFC 7517, RFC 7518 §6.2,
//! RFC 8037 §2): parsed strictly for the proof's `alg`, checked with ring, and named by
//! its RFC 7638 thumbprint.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ECDSA_P256_SHA256_FIXED, ED25519, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::{DpopAlgorithm, DpopError};

/// JWK members that only private keys have (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2) and
/// the symmetric key value `k` (§6.4.1). A proof whose `jwk` holds any of them was made
/// by a careless client that just published its secret: refuse it rather than bind a
/// session to a compromised key.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A proof's public key, ready for ring.
#[derive(Debug)]
pub(super) struct ProofKey {
    alg: DpopAlgorithm,
    /// The RFC 7638 members that identify the key, already canonical base64url.
    x: String,
    /// Only for EC keys.
    y: Option<String>,
    /// What ring verifies with: the uncompressed SEC1 point, or the Ed25519 key.
    public: Vec<u8>,
}

impl ProofKey {
    /// The key in `jwk`, if it is a public key of the kind `alg` needs.
    pub(super) fn from_header(jwk: Option<&Value>, alg: DpopAlgorithm) -> Result<Self, DpopError> {
        let jwk = match jwk {
            None => return Err(DpopError::MissingKey),
            Some(Value::Object(jwk)) => jwk,
            Some(_) => return Err(DpopError::BadKey("it is not a JSON object")),
        };
        let kty = member(jwk, "kty");
        if kty == "oct" || PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(DpopError::PrivateKey);
        }
        if jwk
            .get("alg")
            .is_some_and(|a| a.as_str() != Some(alg.as_str()))
        {
            return Err(DpopError::BadKey("its alg differs from the proof's alg"));
        }
        match alg {
            DpopAlgorithm::Es256 => {
                if kty != "EC" || member(jwk, "crv") != "P-256" {
                    return Err(DpopError::BadKey("ES256 needs an EC key on P-256"));
                }
                let x = coordinate(jwk, "x")?;
                let y = coordinate(jwk, "y")?;
                let mut public = Vec::with_capacity(65);
                public.push(0x04);
                public.extend_from_slice(&x);
                public.extend_from_slice(&y);
                Ok(Self {
                    alg,
                    x: URL_SAFE_NO_PAD.encode(x),
                    y: Some(URL_SAFE_NO_PAD.encode(y)),
                    public,
                })
            }
            DpopAlgorithm::EdDsa => {
                if kty != "OKP" || member(jwk, "crv") != "Ed25519" {
                    return Err(DpopError::BadKey("EdDSA needs an OKP key on Ed25519"));
                }
                if jwk.contains_key("y") {
                    return Err(DpopError::BadKey("an OKP key has no y"));
                }
                let x = coordinate(jwk, "x")?;
                Ok(Self {
                    alg,
                    x: URL_SAFE_NO_PAD.encode(x),
                    y: None,
                    public: x.to_vec(),
                })
            }
        }
    }

    /// Checks a JWS signature over `message` (64 bytes for both algorithms: `r || s` for
    /// ES256 per RFC 7518 §3.4, the raw signature for Ed25519).
    pub(super) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), DpopError> {
        let alg: &'static dyn ring::signature::VerificationAlgorithm = match self.alg {
            DpopAlgorithm::Es256 => &ECDSA_P256_SHA256_FIXED,
            DpopAlgorithm::EdDsa => &ED25519,
        };
        // An off-curve or otherwise invalid point fails here too.
        UnparsedPublicKey::new(alg, &self.public)
            .verify(message, signature)
            .map_err(|_| DpopError::BadSignature)
    }

    /// RFC 7638 §3: SHA-256 over the required members in lexicographic order, without
    /// whitespace, base64url-encoded (`crv`, `kty`, `x`, `y` for EC; `crv`, `kty`, `x`
    /// for OKP, RFC 8037 §2).
    pub(super) fn thumbprint(&self) -> String {
        let canonical = match &self.y {
            Some(y) => format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{y}"}}"#, self.x),
            None => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, self.x),
        };
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }
}

/// A string member; absent and non-string members both read as `""`, which no check
/// accepts.
fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> &'a str {
    jwk.get(name).and_then(Value::as_str).unwrap_or("")
}

/// A 32-byte key coordinate. The base64url decoder refuses padding and non-zero trailing
/// bits, so one key has one encoding and therefore one thumbprint.
fn coordinate(jwk: &Map<String, Value>, name: &'static str) -> Result<[u8; 32], DpopError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .ok_or(DpopError::BadKey(
            "a key coordinate is not 32 bytes of base64url",
        ))
}
