use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, assert_error, jwt_part, spawn_app, spawn_app_with, unique_username,
};

#[tokio::test]
async fn login_returns_a_token_response_that_is_not_cached() {
    let app = spawn_app().await;
    let username = unique_username();
    app.register(&username, PASSWORD).await;

    let response = app.login(&username.to_uppercase(), PASSWORD).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["refresh_expires_in"], 86400);
    assert_eq!(body["scope"], "read write");
    let refresh = body["refresh_token"].as_str().unwrap();
    assert!(refresh.len() >= 43, "at least 256 bits: {refresh}");
    assert_eq!(
        refresh.split('.').count(),
        1,
        "a refresh token is never a JWT"
    );
    let claims = jwt_part(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["preferred_username"], username.as_str());
    assert_eq!(claims["client_id"], "client-cli");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_identical_401_bodies() {
    let app = spawn_app().await;
    let username = unique_username();
    app.register(&username, PASSWORD).await;

    let wrong_password = app.login(&username, "not the password").await;
    let unknown_user = app.login(&unique_username(), PASSWORD).await;

    let a = assert_error(
        wrong_password,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let b = assert_error(
        unknown_user,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(a, b);
}

#[tokio::test]
async fn login_honours_client_id_and_narrows_scope() {
    let app = spawn_app().await;
    let username = unique_username();
    app.register(&username, PASSWORD).await;

    let response = app
        .post_json(
            "/auth/login",
            &json!({"username": username, "password": PASSWORD, "client_id": "web-app", "scope": "read admin"}),
        )
        .await;

    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "read");
    let claims = jwt_part(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["client_id"], "web-app");
    assert_eq!(claims["scope"], "read");
}

#[tokio::test]
async fn too_many_attempts_for_one_username_are_429_with_retry_after() {
    let app = spawn_app_with(|s| s.rate_limit.attempts_per_username = 3).await;
    let username = unique_username();
    app.register(&username, PASSWORD).await;

    for _ in 0..3 {
        assert_eq!(
            app.login(&username, "wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let response = app.login(&username, PASSWORD).await;

    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another user is not affected.
    let other = unique_username();
    app.register(&other, PASSWORD).await;
    assert_eq!(app.login(&other, PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_bootstrap_admin_can_log_in_with_the_admin_role() {
    let app = spawn_app_with(|s| {
        s.bootstrap.admin_username = "root_admin".into();
        s.bootstrap.admin_password = "bootstrap password".to_owned().into();
    })
    .await;

    let response = app.login("root_admin", "bootstrap password").await;

    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let claims = jwt_part(body["access_token"].as_str().unwrap(), 1);
    let roles = claims["roles"].as_array().unwrap();
    assert!(roles.contains(&json!("admin")), "{claims}");
}

#[tokio::test]
async fn logout_is_idempotent_and_ends_the_session() {
    let app = spawn_app().await;
    let (_, tokens) = app.registered_session().await;
    let refresh = tokens["refresh_token"].as_str().unwrap();

    assert_eq!(app.logout(refresh).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.logout(refresh).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.logout("garbage").await.status(), StatusCode::NO_CONTENT);

    assert_error(
        app.refresh(refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn promoting_an_existing_user_to_bootstrap_admin_ends_their_sessions() {
    let app = spawn_app().await;
    let username = unique_username();
    app.register(&username, PASSWORD).await;
    let before: Value = app.login(&username, PASSWORD).await.json().await.unwrap();

    // The operator restarts with this name as the bootstrap admin.
    let mut settings = app.settings.clone();
    settings.bootstrap.admin_username = username.clone();
    settings.bootstrap.admin_password = "the operator's password".to_owned().into();
    let restarted = auth_service::startup::Application::build(settings)
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", restarted.port());
    tokio::spawn(restarted.run_until_stopped());

    let response = app
        .client
        .post(format!("{address}/auth/refresh"))
        .json(&json!({"refresh_token": before["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    // The old password is gone too; the configured one works and carries the role.
    let old = app
        .client
        .post(format!("{address}/auth/login"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new: Value = app
        .client
        .post(format!("{address}/auth/login"))
        .json(&json!({"username": username, "password": "the operator's password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwt_part(new["access_token"].as_str().unwrap(), 1)["roles"]
            .as_array()
            .unwrap()
            .contains(&json!("admin"))
    );
}
