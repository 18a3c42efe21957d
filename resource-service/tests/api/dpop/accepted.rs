//! What DPoP lets through: bound tokens with honest proofs, cnf-less tokens as Bearer,
//! and the URL forms RFC 9449 §4.3 says to treat as equal.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::helpers::{spawn_with_pem, spawn_with_pem_and};

#[tokio::test]
async fn an_es256_bound_token_with_its_proof_reaches_api_me() {
    let app = spawn_with_pem().await;
    let key = ClientKey::es256();
    let token = bound_token(&key);

    let response = call(
        &app,
        "/api/me",
        &token,
        &[&proof(&app, &key, &token, json!({}), json!({}))],
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["username"], "alice");
}

#[tokio::test]
async fn an_eddsa_bound_token_with_its_proof_reaches_api_me() {
    let app = spawn_with_pem().await;
    let key = ClientKey::eddsa();
    let token = bound_token(&key);

    let response = call(
        &app,
        "/api/me",
        &token,
        &[&proof(&app, &key, &token, json!({}), json!({}))],
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_url_may_differ_in_query_fragment_and_scheme_case_only() {
    let app = spawn_with_pem().await;
    let key = ClientKey::eddsa();
    let token = bound_token(&key);
    let port = app.address.rsplit(':').next().unwrap();
    let htu = format!("HTTP://127.0.0.1:{port}/api/me?ignored=1#too");

    let response = call(
        &app,
        "/api/me?page=2",
        &token,
        &[&proof(&app, &key, &token, json!({}), json!({"htu": htu}))],
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unbound_token_works_as_bearer_but_not_with_the_dpop_scheme() {
    let app = spawn_with_pem().await;
    let key = ClientKey::es256();
    let token = good_token(json!({}));

    let bearer = app.get("/api/me", Some(&token)).await;
    let dpop = call(
        &app,
        "/api/me",
        &token,
        &[&proof(&app, &key, &token, json!({}), json!({}))],
    )
    .await;

    assert_eq!(bearer.status(), StatusCode::OK);
    let description = assert_refused(dpop, "invalid_token").await;
    assert!(description.contains("not bound"), "{description}");
}

#[tokio::test]
async fn an_invalid_token_with_the_dpop_scheme_gets_a_dpop_challenge() {
    let app = spawn_with_pem().await;
    let key = ClientKey::es256();
    let token = good_token(json!({"cnf": {"jkt": key.jkt()}, "exp": now() - 60}));

    let response = call(
        &app,
        "/api/me",
        &token,
        &[&proof(&app, &key, &token, json!({}), json!({}))],
    )
    .await;

    assert_eq!(
        assert_refused(response, "invalid_token").await,
        "the token has expired"
    );
}

#[tokio::test]
async fn no_credentials_get_a_bearer_and_a_dpop_challenge() {
    let app = spawn_with_pem().await;

    let response = app.get("/api/me", None).await;

    let challenges: Vec<&str> = response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        challenges,
        [
            r#"Bearer realm="resource-service""#,
            r#"DPoP realm="resource-service", algs="ES256 EdDSA""#
        ]
    );
}

#[tokio::test]
async fn a_bound_token_without_the_admin_role_gets_a_dpop_403() {
    let app = spawn_with_pem().await;
    let key = ClientKey::eddsa();
    let token = bound_token(&key);
    let me_proof = proof(&app, &key, &token, json!({}), json!({}));
    let admin_proof = proof(
        &app,
        &key,
        &token,
        json!({}),
        json!({"htu": format!("{}/api/admin", app.address)}),
    );

    let response = call(&app, "/api/admin", &token, &[&admin_proof]).await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(r#"DPoP realm="resource-service", error="insufficient_scope""#),
        "{challenge}"
    );
    assert_eq!(
        call(&app, "/api/me", &token, &[&me_proof]).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn with_a_public_url_proofs_name_it_and_forwarded_headers_change_nothing() {
    let app =
        spawn_with_pem_and(|s| s.server.public_url = "https://api.example/prefix/".into()).await;
    let key = ClientKey::es256();
    let token = bound_token(&key);
    let public = json!({"htu": "https://api.example/prefix/api/me"});

    let as_public = call(
        &app,
        "/api/me",
        &token,
        &[&proof(&app, &key, &token, json!({}), public)],
    )
    .await;
    let as_seen = proof(&app, &key, &token, json!({}), json!({}));

    assert_eq!(as_public.status(), StatusCode::OK);
    assert_eq!(
        refused_proof(&app, &token, &as_seen).await,
        "the DPoP proof was made for another URL"
    );

    // Without a public URL, a client cannot talk the service into another origin.
    let plain = spawn_with_pem().await;
    let forwarded = proof(
        &plain,
        &key,
        &token,
        json!({}),
        json!({"htu": "https://api.example/api/me"}),
    );
    let response = plain
        .client
        .get(format!("{}/api/me", plain.address))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", forwarded)
        .header("X-Forwarded-Host", "api.example")
        .header("X-Forwarded-Proto", "https")
        .header("Forwarded", "host=api.example;proto=https")
        .send()
        .await
        .unwrap();
    assert_refused(response, "invalid_dpop_proof").await;
}
