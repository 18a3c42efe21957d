//! DPoP-bound access tokens (RFC 9449) over HTTP: tokens carry `cnf.jkt`, proofs are
//! made here with p256 and ed25519-dalek and assembled by hand, so a mistake shared with
//! the server's ring-based verifier cannot hide. Every refusal is a 401 with the RFC's
//! error code and a DPoP challenge, never a 5xx.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use reqwest::StatusCode;
use ring::rand::SecureRandom as _;
use serde_json::{Value, json};

mod accepted;
mod refused;
mod settings;

use crate::helpers::{TestResource, good_token, now};

/// A client's DPoP key.
enum ClientKey {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

fn random_32() -> [u8; 32] {
    let mut bytes = [0; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).unwrap();
    bytes
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256_b64(text: &str) -> String {
    b64(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

impl ClientKey {
    fn es256() -> Self {
        ClientKey::Es256(p256::ecdsa::SigningKey::from_bytes(&random_32().into()).unwrap())
    }

    fn eddsa() -> Self {
        ClientKey::EdDsa(ed25519_dalek::SigningKey::from_bytes(&random_32()))
    }

    fn alg(&self) -> &'static str {
        match self {
            ClientKey::Es256(_) => "ES256",
            ClientKey::EdDsa(_) => "EdDSA",
        }
    }

    fn jwk(&self) -> Value {
        match self {
            ClientKey::Es256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                json!({"kty": "EC", "crv": "P-256", "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap())})
            }
            ClientKey::EdDsa(key) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.verifying_key().to_bytes())})
            }
        }
    }

    /// RFC 7638: the required members in lexicographic order, no whitespace.
    fn jkt(&self) -> String {
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

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            ClientKey::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(input);
                signature.to_bytes().to_vec()
            }
            ClientKey::EdDsa(key) => key.sign(input).to_bytes().to_vec(),
        }
    }
}

fn merge(target: &mut Value, changes: Value) {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            target.as_object_mut().unwrap().remove(k);
        } else {
            target[k] = v.clone();
        }
    }
}

/// `header.claims.signature` with the signature made by `key` (or none when `None`).
fn jws(header: &Value, claims: &Value, key: Option<&ClientKey>) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let signature = key
        .map(|k| b64(k.sign(input.as_bytes())))
        .unwrap_or_default();
    format!("{input}.{signature}")
}

/// An honest proof by `key` for `GET <app>/api/me` with `token`, with changes merged
/// over its header and claims (null removes).
fn proof(app: &TestResource, key: &ClientKey, token: &str, header: Value, claims: Value) -> String {
    let mut h = json!({"typ": "dpop+jwt", "alg": key.alg(), "jwk": key.jwk()});
    merge(&mut h, header);
    let mut c = json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "htm": "GET",
        "htu": format!("{}/api/me", app.address),
        "iat": now(),
        "ath": sha256_b64(token),
    });
    merge(&mut c, claims);
    jws(&h, &c, Some(key))
}

/// An access token bound to `key`.
fn bound_token(key: &ClientKey) -> String {
    good_token(json!({"cnf": {"jkt": key.jkt()}}))
}

/// `GET path` with `Authorization: DPoP <token>` and the given proofs.
async fn call(app: &TestResource, path: &str, token: &str, proofs: &[&str]) -> reqwest::Response {
    let mut request = app
        .client
        .get(format!("{}{path}", app.address))
        .header("Authorization", format!("DPoP {token}"));
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    request.send().await.unwrap()
}

/// Asserts a 401 with `code` in the body and a DPoP challenge naming it and the
/// algorithms; returns the description.
async fn assert_refused(response: reqwest::Response, code: &str) -> String {
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], code, "{body}");
    let description = body["error_description"].as_str().unwrap().to_owned();
    assert_eq!(
        challenge,
        format!(
            r#"DPoP realm="resource-service", error="{code}", error_description="{description}", algs="ES256 EdDSA""#
        )
    );
    description
}

async fn refused_proof(app: &TestResource, token: &str, proof: &str) -> String {
    assert_refused(
        call(app, "/api/me", token, &[proof]).await,
        "invalid_dpop_proof",
    )
    .await
}
