//! End to end with a real auth-service: the resource-service keeps verifying the tokens
//! it issued after the auth-service (and with it Redis and Postgres access) is gone.

use std::time::Duration;

use auth_service::testing::TestAuthService;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_with_jwks;

#[tokio::test]
async fn the_resource_service_verifies_tokens_while_the_auth_service_is_down() {
    let auth = TestAuthService::spawn(|s| {
        s.jwt.issuer = crate::helpers::ISSUER.into();
        s.jwt.audience = crate::helpers::AUDIENCE.into();
    })
    .await;
    let resource =
        spawn_with_jwks(&format!("{}/.well-known/jwks.json", auth.address), |_| {}).await;
    let http = reqwest::Client::new();
    let username = format!("e2e_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let credentials = json!({"username": username, "password": "a long enough password"});
    let registered = http
        .post(format!("{}/auth/register", auth.address))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let tokens: Value = http
        .post(format!("{}/auth/login", auth.address))
        .json(&credentials)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while resource.get("/readyz", None).await.status() != StatusCode::OK {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        resource.get("/api/me", Some(access)).await.status(),
        StatusCode::OK
    );

    auth.stop().await;
    let refresh = http
        .post(format!("{}/auth/refresh", auth.address))
        .json(&json!({"refresh_token": tokens["refresh_token"]}))
        .send()
        .await;
    assert!(refresh.is_err(), "the auth-service is really gone");

    let response = resource.get("/api/me", Some(access)).await;

    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["username"], username.as_str());
    assert_eq!(resource.get("/readyz", None).await.status(), StatusCode::OK);
}
