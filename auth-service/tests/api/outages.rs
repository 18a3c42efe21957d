//! When Redis or Postgres goes away the service answers 503 quickly, and it recovers by
//! itself when they return.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use crate::chaos::ChaosProxy;
use crate::helpers::{PASSWORD, assert_error, spawn_app_with, unique_username};

pub fn socket_of(url: &str) -> SocketAddr {
    let rest = url.split("://").nth(1).unwrap();
    let host_port = rest.split('/').next().unwrap();
    let host_port = host_port.rsplit('@').next().unwrap();
    host_port.to_socket_addrs().unwrap().next().unwrap()
}

pub fn via_proxy(url: &str, proxy: SocketAddr) -> String {
    let upstream = socket_of(url);
    let original = url
        .split("://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .rsplit('@')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        original.contains(&upstream.port().to_string()),
        "URLs need an explicit port: {url}"
    );
    url.replacen(&original, &proxy.to_string(), 1)
}

/// Asserts the request is a 503 `temporarily_unavailable` within 2 seconds.
pub async fn assert_quick_503(response: impl Future<Output = reqwest::Response>) {
    let started = Instant::now();
    let response = response.await;
    let elapsed = started.elapsed();
    assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    )
    .await;
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

async fn eventually_ok(what: impl AsyncFn() -> StatusCode) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = what().await;
        if status.is_success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "did not recover: last status {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn redis_down_gives_quick_503s_and_the_service_recovers() {
    let (settings, _keys) = crate::helpers::test_settings();
    let mut proxy = ChaosProxy::start(socket_of(settings.redis.url.expose_secret())).await;
    let redis_url = via_proxy(settings.redis.url.expose_secret(), proxy.addr);
    let app = spawn_app_with(|s| s.redis.url = SecretString::from(redis_url)).await;
    let (username, login) = app.registered_session().await;
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();

    proxy.cut();

    assert_quick_503(app.login(&username, PASSWORD)).await;
    assert_quick_503(app.refresh(&refresh)).await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("redis"),
        "{body}"
    );
    assert!(
        !body["error_description"]
            .as_str()
            .unwrap()
            .contains("postgres"),
        "{body}"
    );

    proxy.restore().await;

    eventually_ok(async || app.get("/readyz").await.status()).await;
    // The session survived the outage.
    assert_eq!(app.refresh(&refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn postgres_down_gives_quick_503s_and_the_service_recovers() {
    let (settings, _keys) = crate::helpers::test_settings();
    let mut proxy = ChaosProxy::start(socket_of(settings.database.url.expose_secret())).await;
    let database_url = via_proxy(settings.database.url.expose_secret(), proxy.addr);
    let app = spawn_app_with(|s| s.database.url = SecretString::from(database_url)).await;
    let (username, login) = app.registered_session().await;

    proxy.cut();

    assert_quick_503(app.login(&username, PASSWORD)).await;
    assert_quick_503(app.register(&unique_username(), PASSWORD)).await;
    assert_quick_503(app.refresh(login["refresh_token"].as_str().unwrap())).await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("postgres"),
        "{body}"
    );

    proxy.restore().await;

    eventually_ok(async || app.login(&username, PASSWORD).await.status()).await;
}

#[tokio::test]
async fn a_refresh_refused_during_an_outage_can_be_retried_after_the_grace_window() {
    let (settings, _keys) = crate::helpers::test_settings();
    let mut proxy = ChaosProxy::start(socket_of(settings.database.url.expose_secret())).await;
    let database_url = via_proxy(settings.database.url.expose_secret(), proxy.addr);
    let app = spawn_app_with(|s| {
        s.database.url = SecretString::from(database_url);
        s.jwt.refresh_reuse_grace_secs = 1;
    })
    .await;
    let (_, login) = app.registered_session().await;
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();

    proxy.cut();
    assert_quick_503(app.refresh(&refresh)).await;
    proxy.restore().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // The failed attempt retired nothing: the same token still refreshes.
    eventually_ok(async || app.refresh(&refresh).await.status()).await;
}
