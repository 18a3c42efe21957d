//! The client's DPoP key (RFC 9449): an ES256 key made at login and kept with the
//! credentials, which signs a fresh proof for every token request and API call. A session
//! opened with a proof is bound to this key, so its refresh token (and access tokens) are
//! useless to anyone who copies them without it. All cryptography is ring's.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;

use crate::error::CliError;
use crate::jwt;

/// A P-256 key pair that signs DPoP proofs.
pub struct DpopKey {
    pair: EcdsaKeyPair,
    /// The public JWK, the same in every proof.
    jwk: serde_json::Value,
    rng: SystemRandom,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("DpopKey").field("jwk", &self.jwk).finish()
    }
}

impl DpopKey {
    /// A fresh key, and its PKCS#8 form (base64) to store with the credentials.
    pub fn generate() -> Result<(Self, SecretString), CliError> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| CliError::Unexpected("cannot generate a DPoP key".into()))?;
        let stored = SecretString::from(STANDARD.encode(pkcs8.as_ref()));
        Ok((Self::from_stored(&stored)?, stored))
    }

    /// The key stored with the credentials.
    pub fn from_stored(stored: &SecretString) -> Result<Self, CliError> {
        let unusable =
            || CliError::Unexpected("the stored DPoP key is unusable; log in again".into());
        let der = STANDARD
            .decode(stored.expose_secret())
            .map_err(|_| unusable())?;
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
            .map_err(|_| unusable())?;
        // An uncompressed point: 0x04 ‖ x (32 bytes) ‖ y (32 bytes).
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err(unusable());
        }
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        Ok(Self { pair, jwk, rng })
    }

    /// A proof for `method url` (query and fragment do not matter to the server), with
    /// `ath` when an access token goes with it.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
    ) -> Result<String, CliError> {
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": method,
            "htu": htu,
            "iat": jwt::now(),
        });
        if let Some(token) = access_token {
            let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
            claims["ath"] = json!(URL_SAFE_NO_PAD.encode(digest.as_ref()));
        }
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| CliError::Unexpected("cannot sign a DPoP proof".into()))?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_key_comes_back_the_same_and_signs_proofs_of_the_dpop_shape() {
        let (key, stored) = DpopKey::generate().unwrap();
        let again = DpopKey::from_stored(&stored).unwrap();
        assert_eq!(key.jwk, again.jwk);

        let proof = key
            .proof("GET", "http://api.test/api/me?x=1", Some("token"))
            .unwrap();

        let parts: Vec<&str> = proof.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["typ"], "dpop+jwt");
        assert!(header["jwk"].get("d").is_none(), "no private part");
        assert_eq!(claims["htu"], "http://api.test/api/me");
        assert_eq!(claims["htm"], "GET");
        assert!(claims["ath"].is_string());
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 64);
        assert!(DpopKey::from_stored(&SecretString::from("garbage".to_owned())).is_err());
    }
}
