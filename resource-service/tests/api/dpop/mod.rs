//! DPoP-bound access tokens (RFC 9449) over HTTP: tokens carry `cnf.jkt`, proofs are
//! made here with p256 and ed25519-dalek and assembled by hand, so a mistake shared with
//! the server's ring-based verifier cannot hide. Every refusal is a 401 with the RFC's
//! error code and a DPoP challenge, never a 5xx.

use auth_service::testing::dpop::{ClientKey, b64, jws, sha256_b64};
use reqwest::StatusCode;
use serde_json::{Value, json};

mod accepted;
mod refused;
mod settings;

use crate::helpers::{TestResource, good_token, now};

/// An honest proof by `key` for `GET <app>/api/me` with `token`, with changes merged
/// over its header and claims (null removes).
fn proof(app: &TestResource, key: &ClientKey, token: &str, header: Value, claims: Value) -> String {
    key.proof(
        "GET",
        &format!("{}/api/me", app.address),
        Some(token),
        header,
        claims,
    )
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
