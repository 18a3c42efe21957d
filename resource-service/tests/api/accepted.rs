use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{good_token, spawn_with_pem};

#[tokio::test]
async fn a_valid_token_gets_its_claims_back_from_api_me() {
    let app = spawn_with_pem().await;
    let token = good_token(json!({}));

    let response = app.get("/api/me", Some(&token)).await;

    assert_eq!(response.status(), StatusCode::OK);
    // Claims are personal: no cache along the way may keep them.
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["username"], "alice");
    assert_eq!(body["sub"], "6f1c2a3e-8d4b-4f5a-9c7e-1b2d3e4f5a6b");
    assert_eq!(body["sid"], "0b8e4c9a-1d2f-4e3a-8b7c-6d5e4f3a2b1c");
    assert_eq!(body["roles"], json!(["user"]));
    assert_eq!(body["scope"], "read write");
    assert!(body["exp"].as_i64().unwrap() > crate::helpers::now());
}

#[tokio::test]
async fn a_token_inside_the_leeway_is_still_accepted() {
    let app = spawn_with_pem().await;
    let now = crate::helpers::now();
    let token = good_token(json!({"exp": now - 2, "nbf": now + 2, "iat": now + 2}));

    assert_eq!(
        app.get("/api/me", Some(&token)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_public_endpoint_needs_no_token() {
    let app = spawn_with_pem().await;

    assert_eq!(app.get("/api/public", None).await.status(), StatusCode::OK);
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn admin_needs_the_admin_role() {
    let app = spawn_with_pem().await;

    let user = app.get("/api/admin", Some(&good_token(json!({})))).await;
    assert_eq!(user.status(), StatusCode::FORBIDDEN);
    let challenge = user.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    let body: Value = user.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    let admin = app
        .get(
            "/api/admin",
            Some(&good_token(json!({"roles": ["user", "admin"]}))),
        )
        .await;
    assert_eq!(admin.status(), StatusCode::OK);
}

#[tokio::test]
async fn missing_token_and_other_schemes_get_a_bare_challenge() {
    let app = spawn_with_pem().await;

    let none = app.get("/api/me", None).await;
    let basic = app
        .client
        .get(format!("{}/api/me", app.address))
        .header("Authorization", "Basic YWxpY2U6c2VjcmV0")
        .send()
        .await
        .unwrap();

    for response in [none, basic] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer realm="resource-service""#
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "missing_token");
    }
}

#[tokio::test]
async fn two_authorization_headers_are_a_bad_request() {
    let app = spawn_with_pem().await;
    let token = good_token(json!({}));

    let response = app
        .client
        .get(format!("{}/api/me", app.address))
        .header("Authorization", format!("Bearer {token}"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn unknown_paths_are_json_404s() {
    let app = spawn_with_pem().await;

    let response = app.get("/api/nothing-here", None).await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "not_found"
    );
}
