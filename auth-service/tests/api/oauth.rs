//! The RFC 6749 token endpoint, RFC 7009 revocation, and `/metrics`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, assert_error, spawn_app, unique_username};

async fn form(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let body = serde_urlencoded::to_string(fields).unwrap();
    app.client
        .post(app.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn password_and_refresh_grants_issue_rotating_tokens() {
    let app = spawn_app().await;
    let username = unique_username();
    app.register(&username, PASSWORD).await;

    let response = form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("username", &username),
            ("password", PASSWORD),
            ("client_id", "cli-2"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    let first = tokens["refresh_token"].as_str().unwrap();

    let response = form(
        &app,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", first)],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: Value = response.json().await.unwrap();
    assert_ne!(rotated["refresh_token"], tokens["refresh_token"]);
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc6749_section_5_2() {
    let app = spawn_app().await;
    let username = unique_username();
    app.register(&username, PASSWORD).await;

    let wrong = form(
        &app,
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("username", &username),
            ("password", "nope nope"),
        ],
    )
    .await;
    assert_error(wrong, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let bad_refresh = form(
        &app,
        "/oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_error(bad_refresh, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let unsupported = form(
        &app,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_error(
        unsupported,
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
    )
    .await;
    let missing = form(
        &app,
        "/oauth/token",
        &[("grant_type", "password"), ("username", &username)],
    )
    .await;
    assert_error(missing, StatusCode::BAD_REQUEST, "invalid_request").await;
    let no_grant = form(&app, "/oauth/token", &[]).await;
    assert_error(no_grant, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test]
async fn revocation_ends_the_session_and_is_200_for_unknown_tokens() {
    let app = spawn_app().await;
    let (_, tokens) = app.registered_session().await;
    let refresh = tokens["refresh_token"].as_str().unwrap();

    assert_eq!(
        form(
            &app,
            "/oauth/revoke",
            &[("token", refresh), ("token_type_hint", "refresh_token")]
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        form(&app, "/oauth/revoke", &[("token", "unknown")])
            .await
            .status(),
        StatusCode::OK
    );
    assert_error(
        form(&app, "/oauth/revoke", &[]).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;

    assert_error(
        app.refresh(refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn metrics_count_logins_refreshes_and_reuse() {
    let app = spawn_app().await;
    let (username, tokens) = app.registered_session().await;
    app.login(&username, "wrong password").await;
    let old = tokens["refresh_token"].as_str().unwrap();
    let rotated: Value = app.refresh(old).await.json().await.unwrap();
    app.refresh(rotated["refresh_token"].as_str().unwrap())
        .await;
    app.refresh(old).await; // two generations old: reuse

    let response = app.get("/metrics").await;

    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    for line in [
        r#"auth_logins_total{service="auth-service",outcome="success"} 1"#,
        r#"auth_logins_total{service="auth-service",outcome="invalid_credentials"} 1"#,
        r#"auth_refreshes_total{service="auth-service",outcome="rotated"} 2"#,
        r#"auth_refreshes_total{service="auth-service",outcome="reuse"} 1"#,
        r#"http_requests_total{service="auth-service",route="/auth/login",method="POST",status="200"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(!text.contains(old), "no token in metrics");
}
