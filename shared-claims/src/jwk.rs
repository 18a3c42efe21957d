//! RSA public keys as JWKs (RFC 7517), and their RFC 7638 thumbprint, which is our `kid`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use spki::der::{Decode as _, Encode as _};

use crate::pem::{self, PemError};

/// The smallest RSA modulus we sign with or accept (`docs/ARCHITECTURE.md` § Keys).
pub const MIN_RSA_BITS: usize = 2048;

/// A JSON Web Key as published in our JWKS (RFC 7517 §4, RFC 7518 §6.3).
///
/// Every field but `kty` is optional so that a JWK Set from elsewhere, holding keys of
/// other types, still parses; keys we cannot use are skipped, not fatal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    /// Key type; we only use `RSA`.
    pub kty: String,
    /// Intended use; ours are `sig`.
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// The algorithm the key is meant for; ours are `RS256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Key id: the RFC 7638 thumbprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// RSA modulus, base64url big-endian without leading zeros.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url big-endian.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// A JWK Set (RFC 7517 §5): what `/.well-known/jwks.json` serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JwkSet {
    /// The published keys.
    pub keys: Vec<Jwk>,
}

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM wrapper is broken.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// The DER inside is not an RSA public key.
    #[error("not an RSA SubjectPublicKeyInfo: {0}")]
    NotRsa(String),
    /// The modulus is shorter than [`MIN_RSA_BITS`].
    #[error("RSA modulus of {0} bits is below the minimum of 2048")]
    TooShort(usize),
    /// A JWK field is missing or not base64url.
    #[error("unusable JWK: {0}")]
    BadJwk(&'static str),
}

/// An RSA public key by its components, the form JWKs, thumbprints and ring all use.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("bits", &self.bits())
            .field("kid", &self.thumbprint())
            .finish()
    }
}

impl RsaPublicKey {
    /// Builds a key from big-endian modulus and exponent, refusing short moduli.
    pub fn from_components(n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let key = Self {
            n: n.to_vec(),
            e: e.to_vec(),
        };
        if key.bits() < MIN_RSA_BITS {
            return Err(KeyError::TooShort(key.bits()));
        }
        if e.is_empty() {
            return Err(KeyError::BadJwk("zero exponent"));
        }
        Ok(key)
    }

    /// Reads a `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo) PEM file's text.
    pub fn from_spki_pem(text: &str) -> Result<Self, KeyError> {
        Self::from_spki_der(&pem::decode(text, "PUBLIC KEY")?)
    }

    /// Reads a DER SubjectPublicKeyInfo holding an `rsaEncryption` key.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let spki = spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| KeyError::NotRsa(e.to_string()))?;
        if spki.algorithm.oid != pkcs1::ALGORITHM_OID {
            return Err(KeyError::NotRsa(format!(
                "algorithm {} is not rsaEncryption",
                spki.algorithm.oid
            )));
        }
        let bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| KeyError::NotRsa("bit string with unused bits".into()))?;
        let key =
            pkcs1::RsaPublicKeyRef::from_der(bits).map_err(|e| KeyError::NotRsa(e.to_string()))?;
        Self::from_components(key.modulus.as_bytes(), key.public_exponent.as_bytes())
    }

    /// Reads an RSA JWK, checking that it is meant for RS256 signatures when it says.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        if jwk.kty != "RSA" {
            return Err(KeyError::BadJwk("kty is not RSA"));
        }
        if jwk.alg.as_deref().is_some_and(|a| a != "RS256") {
            return Err(KeyError::BadJwk("alg is not RS256"));
        }
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(KeyError::BadJwk("use is not sig"));
        }
        let n = jwk.n.as_deref().ok_or(KeyError::BadJwk("missing n"))?;
        let e = jwk.e.as_deref().ok_or(KeyError::BadJwk("missing e"))?;
        let n = URL_SAFE_NO_PAD
            .decode(n)
            .map_err(|_| KeyError::BadJwk("n is not base64url"))?;
        let e = URL_SAFE_NO_PAD
            .decode(e)
            .map_err(|_| KeyError::BadJwk("e is not base64url"))?;
        Self::from_components(&n, &e)
    }

    /// The modulus, big-endian without leading zeros.
    pub fn modulus(&self) -> &[u8] {
        &self.n
    }

    /// The public exponent, big-endian without leading zeros.
    pub fn exponent(&self) -> &[u8] {
        &self.e
    }

    /// The modulus length in bits.
    pub fn bits(&self) -> usize {
        match self.n.first() {
            Some(first) => self.n.len() * 8 - first.leading_zeros() as usize,
            None => 0,
        }
    }

    /// The RFC 7638 thumbprint: the `kid` every party can recompute from the key alone.
    pub fn thumbprint(&self) -> String {
        rfc7638_thumbprint(
            &URL_SAFE_NO_PAD.encode(&self.e),
            &URL_SAFE_NO_PAD.encode(&self.n),
        )
    }

    /// The JWK we publish for this key: `use: sig`, `alg: RS256`, `kid` = thumbprint.
    pub fn to_jwk(&self) -> Jwk {
        Jwk {
            kty: "RSA".into(),
            use_: Some("sig".into()),
            alg: Some("RS256".into()),
            kid: Some(self.thumbprint()),
            n: Some(URL_SAFE_NO_PAD.encode(&self.n)),
            e: Some(URL_SAFE_NO_PAD.encode(&self.e)),
        }
    }

    /// The key as a `PUBLIC KEY` PEM, for operators who configure verifiers by file.
    pub fn to_spki_pem(&self) -> Result<String, KeyError> {
        let der_error = |e: spki::der::Error| KeyError::NotRsa(e.to_string());
        let rsa = pkcs1::RsaPublicKeyRef {
            modulus: pkcs1::UintRef::new(&self.n).map_err(der_error)?,
            public_exponent: pkcs1::UintRef::new(&self.e).map_err(der_error)?,
        };
        let pkcs1_der = rsa.to_der().map_err(der_error)?;
        let spki = spki::SubjectPublicKeyInfoRef {
            algorithm: spki::AlgorithmIdentifier {
                oid: pkcs1::ALGORITHM_OID,
                parameters: Some(spki::der::asn1::AnyRef::NULL),
            },
            subject_public_key: spki::der::asn1::BitStringRef::from_bytes(&pkcs1_der)
                .map_err(der_error)?,
        };
        Ok(pem::encode(
            &spki.to_der().map_err(der_error)?,
            "PUBLIC KEY",
        ))
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// RFC 7638 §3 thumbprint of an RSA key given its base64url `e` and `n`: SHA-256 over
/// the required members in lexicographic order, without whitespace, base64url-encoded.
pub fn rfc7638_thumbprint(e_b64: &str, n_b64: &str) -> String {
    let canonical = format!(r#"{{"e":"{e_b64}","kty":"RSA","n":"{n_b64}"}}"#);
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of RFC 7638 §3.1.
    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    #[test]
    fn thumbprint_matches_the_rfc7638_example() {
        assert_eq!(
            rfc7638_thumbprint("AQAB", RFC7638_N),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn a_jwk_round_trips_through_pem_with_the_same_kid() {
        let jwk = Jwk {
            kty: "RSA".into(),
            use_: None,
            alg: None,
            kid: None,
            n: Some(RFC7638_N.into()),
            e: Some("AQAB".into()),
        };
        let key = RsaPublicKey::from_jwk(&jwk).unwrap();
        assert_eq!(key.bits(), 2048);
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        let again = RsaPublicKey::from_spki_pem(&key.to_spki_pem().unwrap()).unwrap();
        assert_eq!(again, key);
        assert_eq!(
            again.to_jwk().kid.as_deref(),
            Some(key.thumbprint().as_str())
        );
    }

    #[test]
    fn short_keys_and_foreign_key_types_are_refused() {
        let short = RsaPublicKey::from_components(&[0xff; 128], &[1, 0, 1]);
        assert!(matches!(short, Err(KeyError::TooShort(1024))));
        let ec = Jwk {
            kty: "EC".into(),
            use_: None,
            alg: None,
            kid: None,
            n: None,
            e: None,
        };
        assert!(RsaPublicKey::from_jwk(&ec).is_err());
        let wrong_alg = Jwk {
            alg: Some("RS384".into()),
            kty: "RSA".into(),
            use_: None,
            kid: None,
            n: Some(RFC7638_N.into()),
            e: Some("AQAB".into()),
        };
        assert!(RsaPublicKey::from_jwk(&wrong_alg).is_err());
    }
}
