//! A dependency that restarts costs no request: the connection it closed is noticed by the
//! next command, which is retried once on a fresh connection inside the service. A
//! dependency that stays down still gets its quick 503.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use crate::chaos::ChaosProxy;
use crate::helpers::{PASSWORD, TestApp, jwt_part, spawn_app_with, test_settings, unique_username};
use crate::lost_replies::counter;
use crate::outages::{assert_quick_503, socket_of, via_proxy};
use crate::own_servers::{OwnPostgres, OwnRedis};

fn refresh_token(body: &Value) -> &str {
    body["refresh_token"].as_str().unwrap()
}

fn access_token(body: &Value) -> &str {
    body["access_token"].as_str().unwrap()
}

fn sid(body: &Value) -> String {
    jwt_part(access_token(body), 1)["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Asserts the response has `expected` (the body is shown otherwise) and returns its JSON
/// body, if any.
async fn expect(response: reqwest::Response, expected: StatusCode, what: &str) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, expected, "{what}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn app_on_redis(url: String) -> TestApp {
    spawn_app_with(|s| s.redis.url = SecretString::from(url)).await
}

#[tokio::test]
async fn every_kind_of_request_right_after_a_redis_restart_succeeds() {
    let mut redis = OwnRedis::start().await;
    let app = app_on_redis(redis.url()).await;
    let (username, login) = app.registered_session().await;

    redis.restart().await;
    let refreshed = expect(
        app.refresh(refresh_token(&login)).await,
        StatusCode::OK,
        "refresh (rotation script)",
    )
    .await;

    redis.restart().await;
    let listed = expect(
        app.client
            .get(app.url("/auth/sessions"))
            .bearer_auth(access_token(&refreshed))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
        "session list (reads)",
    )
    .await;
    assert_eq!(listed[0]["id"], sid(&login).as_str());

    redis.restart().await;
    let second = expect(
        app.login(&username, PASSWORD).await,
        StatusCode::OK,
        "login (rate-limit counters, session creation)",
    )
    .await;

    redis.restart().await;
    expect(
        app.client
            .delete(app.url(&format!("/auth/sessions/{}", sid(&second))))
            .bearer_auth(access_token(&refreshed))
            .send()
            .await
            .unwrap(),
        StatusCode::NO_CONTENT,
        "session deletion",
    )
    .await;

    redis.restart().await;
    expect(
        app.register(&unique_username(), PASSWORD).await,
        StatusCode::CREATED,
        "registration (rate-limit counter)",
    )
    .await;

    redis.restart().await;
    expect(app.get("/readyz").await, StatusCode::OK, "readiness").await;

    redis.restart().await;
    expect(
        app.logout(refresh_token(&refreshed)).await,
        StatusCode::NO_CONTENT,
        "logout",
    )
    .await;
    // The sessions really changed: the one logged out and the one deleted are gone.
    expect(
        app.refresh(refresh_token(&refreshed)).await,
        StatusCode::UNAUTHORIZED,
        "refresh after logout",
    )
    .await;
    expect(
        app.refresh(refresh_token(&second)).await,
        StatusCode::UNAUTHORIZED,
        "refresh of the deleted session",
    )
    .await;
}

#[tokio::test]
async fn a_rotation_whose_connection_closed_after_the_script_ran_returns_its_successor() {
    // Grace window 0: a blind second run of the rotation would be taken for reuse and
    // revoke the session. The service's retry must be recognised as its own.
    let (settings, _keys) = test_settings();
    let proxy = ChaosProxy::start(socket_of(settings.redis.url.expose_secret())).await;
    let redis_url = via_proxy(settings.redis.url.expose_secret(), proxy.addr);
    let app = spawn_app_with(|s| {
        s.redis.url = SecretString::from(redis_url);
        s.jwt.refresh_reuse_grace_secs = 0;
    })
    .await;
    let (_, login) = app.registered_session().await;
    // One refresh first, so the rotation script is loaded and the next call is EVALSHA.
    let first = expect(
        app.refresh(refresh_token(&login)).await,
        StatusCode::OK,
        "first refresh",
    )
    .await;

    proxy.close_after_next_script();
    let retried = expect(
        app.refresh(refresh_token(&first)).await,
        StatusCode::OK,
        "refresh whose connection closed after the script ran",
    )
    .await;

    // The successor handed out is the session's current token, and nothing was revoked.
    expect(
        app.refresh(refresh_token(&retried)).await,
        StatusCode::OK,
        "refresh with the successor",
    )
    .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let refreshes = |outcome: &str| {
        counter(
            &metrics,
            &format!(r#"auth_refreshes_total{{service="auth-service",outcome="{outcome}"}}"#),
        )
    };
    assert_eq!(refreshes("reuse"), 0);
    assert_eq!(refreshes("rotated") + refreshes("recovered"), 3);
}

#[tokio::test]
async fn a_redis_that_stays_down_still_gets_a_quick_503_and_is_used_again_at_once() {
    let mut redis = OwnRedis::start().await;
    let app = app_on_redis(redis.url()).await;
    let (username, login) = app.registered_session().await;

    redis.stop();
    assert_quick_503(app.login(&username, PASSWORD)).await;
    assert_quick_503(app.refresh(refresh_token(&login))).await;
    redis.start_again().await;

    // No request is lost to the reconnection either.
    let started = Instant::now();
    expect(
        app.refresh(refresh_token(&login)).await,
        StatusCode::OK,
        "refresh after Redis returned",
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_postgres_restart_between_two_requests_costs_no_request() {
    let postgres = match OwnPostgres::start() {
        Ok(postgres) => postgres,
        Err(reason) => {
            eprintln!("SKIPPED: cannot run a private PostgreSQL here: {reason}");
            return;
        }
    };
    let database_url = postgres.url("auth");
    let app = spawn_app_with(|s| s.database.url = SecretString::from(database_url)).await;
    let (username, login) = app.registered_session().await;
    // Fill the pool with several connections, all of which the restart will kill.
    let logins = (0..4).map(|_| app.login(&username, PASSWORD));
    for response in futures_util::future::join_all(logins).await {
        assert_eq!(response.status(), StatusCode::OK);
    }

    postgres.restart();

    expect(
        app.login(&username, PASSWORD).await,
        StatusCode::OK,
        "login (user lookup)",
    )
    .await;
    expect(
        app.refresh(refresh_token(&login)).await,
        StatusCode::OK,
        "refresh (user lookup by id)",
    )
    .await;
    expect(
        app.register(&unique_username(), PASSWORD).await,
        StatusCode::CREATED,
        "registration (insert)",
    )
    .await;
}
