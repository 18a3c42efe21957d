use reqwest::StatusCode;
use serde_json::Value;
use shared_claims::{JwkSet, KeySet, Verifier, VerifierSettings};

use crate::helpers::{jwt_part, spawn_app};

#[tokio::test]
async fn the_access_token_verifies_with_shared_claims_against_the_served_jwks() {
    let app = spawn_app().await;
    let (username, login) = app.registered_session().await;
    let jwks: JwkSet = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let (keys, skipped) = KeySet::from_jwks(&jwks);
    assert_eq!(skipped, 0);
    let verifier = Verifier::new(
        &VerifierSettings {
            issuer: app.settings.jwt.issuer.clone(),
            audience: app.settings.jwt.audience.clone(),
            leeway_secs: 5,
        },
        keys,
    );

    let claims = verifier
        .verify(login["access_token"].as_str().unwrap())
        .unwrap();

    assert_eq!(claims.preferred_username, username);
    assert_eq!(
        claims.exp - claims.iat,
        login["expires_in"].as_i64().unwrap()
    );
    assert_eq!(claims.nbf, claims.iat);
    assert_eq!(claims.roles, vec!["user".to_owned()]);
    assert_eq!(claims.iss, app.settings.jwt.issuer);
    assert_eq!(claims.aud, app.settings.jwt.audience);
}

#[tokio::test]
async fn the_token_header_names_the_key_by_its_rfc7638_thumbprint() {
    let app = spawn_app().await;
    let (_, login) = app.registered_session().await;
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];

    let header = jwt_part(login["access_token"].as_str().unwrap(), 0);

    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["kid"], key["kid"]);
    assert_eq!(
        key["kid"].as_str().unwrap(),
        shared_claims::rfc7638_thumbprint(key["e"].as_str().unwrap(), key["n"].as_str().unwrap())
    );
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["kty"], "RSA");
    assert!(
        key.get("d").is_none() && key.get("p").is_none(),
        "no private parts: {key}"
    );
}

#[tokio::test]
async fn metadata_urls_are_absolute_and_built_from_the_issuer() {
    let app = spawn_app().await;

    let response = app.get("/.well-known/oauth-authorization-server").await;

    assert_eq!(response.status(), StatusCode::OK);
    let metadata: Value = response.json().await.unwrap();
    let issuer = app.settings.jwt.issuer.trim_end_matches('/');
    assert_eq!(metadata["issuer"], app.settings.jwt.issuer.as_str());
    assert_eq!(
        metadata["jwks_uri"],
        format!("{issuer}/.well-known/jwks.json")
    );
    assert_eq!(metadata["token_endpoint"], format!("{issuer}/oauth/token"));
    assert_eq!(
        metadata["revocation_endpoint"],
        format!("{issuer}/oauth/revoke")
    );
}

#[tokio::test]
async fn health_and_readiness_answer_when_dependencies_are_up() {
    let app = spawn_app().await;

    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["postgres"], "up");
    assert_eq!(body["redis"], "up");
}
