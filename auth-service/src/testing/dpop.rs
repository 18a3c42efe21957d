//! DPoP proofs for tests, made with other code than the services' verifier (p256 and
//! ed25519-dalek, JWS assembled by hand), so a mistake shared with the ring-based verifier
//! cannot hide.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use ring::rand::SecureRandom as _;
use serde_json::{Value, json};

/// A client's DPoP key.
#[derive(Debug)]
pub enum ClientKey {
    /// ECDSA P-256.
    Es256(p256::ecdsa::SigningKey),
    /// Ed25519.
    EdDsa(ed25519_dalek::SigningKey),
}

fn random_32() -> [u8; 32] {
    let mut bytes = [0; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("random bytes");
    bytes
}

/// base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url SHA-256 of `text`: an `ath`, or a thumbprint of a canonical JWK.
pub fn sha256_b64(text: &str) -> String {
    b64(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

impl ClientKey {
    /// A fresh P-256 key.
    pub fn es256() -> Self {
        ClientKey::Es256(
            p256::ecdsa::SigningKey::from_bytes(&random_32().into()).expect("P-256 key"),
        )
    }

    /// A fresh Ed25519 key.
    pub fn eddsa() -> Self {
        ClientKey::EdDsa(ed25519_dalek::SigningKey::from_bytes(&random_32()))
    }

    /// Its JOSE algorithm.
    pub fn alg(&self) -> &'static str {
        match self {
            ClientKey::Es256(_) => "ES256",
            ClientKey::EdDsa(_) => "EdDSA",
        }
    }

    /// Its public JWK.
    pub fn jwk(&self) -> Value {
        match self {
            ClientKey::Es256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                json!({"kty": "EC", "crv": "P-256", "x": b64(point.x().expect("x")), "y": b64(point.y().expect("y"))})
            }
            ClientKey::EdDsa(key) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.verifying_key().to_bytes())})
            }
        }
    }

    /// RFC 7638: the required members in lexicographic order, no whitespace.
    pub fn jkt(&self) -> String {
        let jwk = self.jwk();
        let canonical = match self {
            ClientKey::Es256(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
                jwk["x"], jwk["y"]
            ),
            ClientKey::EdDsa(_) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":{}}}"#, jwk["x"]),
        };
        sha256_b64(&canonical)
    }

    /// A signature of `input`.
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            ClientKey::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(input);
                signature.to_bytes().to_vec()
            }
            ClientKey::EdDsa(key) => key.sign(input).to_bytes().to_vec(),
        }
    }

    /// An honest proof for `htm htu` (with `ath` of `access_token` if given), with
    /// `header` and `claims` merged over it (null removes a member).
    pub fn proof(
        &self,
        htm: &str,
        htu: &str,
        access_token: Option<&str>,
        header: Value,
        claims: Value,
    ) -> String {
        let mut h = json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()});
        merge(&mut h, header);
        let mut c = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": htm,
            "htu": htu,
            "iat": now(),
        });
        if let Some(token) = access_token {
            c["ath"] = json!(sha256_b64(token));
        }
        merge(&mut c, claims);
        jws(&h, &c, Some(self))
    }
}

/// Merges the members of `changes` over `target`; null removes.
pub fn merge(target: &mut Value, changes: Value) {
    let Some(changes) = changes.as_object() else {
        return;
    };
    for (k, v) in changes {
        if v.is_null() {
            if let Some(object) = target.as_object_mut() {
                object.remove(k);
            }
        } else {
            target[k] = v.clone();
        }
    }
}

/// `header.claims.signature` with the signature made by `key` (or none when `None`).
pub fn jws(header: &Value, claims: &Value, key: Option<&ClientKey>) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = key
        .map(|k| b64(k.sign(input.as_bytes())))
        .unwrap_or_default();
    format!("{input}.{signature}")
}
