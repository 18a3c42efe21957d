//! A refresh whose reply was lost is not theft, and neither is state Redis lost.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;

use crate::chaos::ChaosProxy;
use crate::helpers::{assert_error, spawn_app, spawn_app_with, test_settings};
use crate::outages::{socket_of, via_proxy};

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_retry_after_a_lost_rotation_reply_gets_the_same_successor_even_after_the_window() {
    let (settings, _keys) = test_settings();
    let proxy = ChaosProxy::start(socket_of(settings.redis.url.expose_secret())).await;
    let redis_url = via_proxy(settings.redis.url.expose_secret(), proxy.addr);
    let app = spawn_app_with(|s| {
        s.redis.url = SecretString::from(redis_url);
        s.jwt.refresh_reuse_grace_secs = 1;
    })
    .await;
    let (_, login) = app.registered_session().await;
    // One refresh first, so the rotation script is loaded and the next call is EVALSHA.
    let first: Value = app
        .refresh(login["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let token = first["refresh_token"].as_str().unwrap().to_owned();

    // The rotation runs in Redis, but its reply never comes back: the client sees a 503.
    proxy.lose_replies_after_next_script();
    let lost = app.refresh(&token).await;
    assert_eq!(lost.status(), StatusCode::SERVICE_UNAVAILABLE);
    proxy.deliver_replies();
    // The client comes back well after the grace window.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let retried = loop {
        let response = app.refresh(&token).await;
        if response.status() != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(retried.status(), StatusCode::OK);
    let retried: Value = retried.json().await.unwrap();
    let successor = retried["refresh_token"].as_str().unwrap().to_owned();
    // The session lives on, and the successor is the one rotation made.
    assert_eq!(app.refresh(&successor).await.status(), StatusCode::OK);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        counter(
            &metrics,
            "auth_refreshes_total{service=\"auth-service\",outcome=\"reuse\"}"
        ),
        0,
        "{metrics}"
    );
    assert_eq!(
        counter(
            &metrics,
            "auth_refreshes_total{service=\"auth-service\",outcome=\"recovered\"}"
        ),
        1,
        "{metrics}"
    );
}

#[tokio::test]
async fn a_token_newer_than_the_stored_session_is_state_loss_not_reuse() {
    let app = spawn_app().await;
    let (_, login) = app.registered_session().await;
    let newer: Value = app
        .refresh(login["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    // Redis loses the last write (a fail-over to a replica that had not seen it).
    let client = redis::Client::open(app.settings.redis.url.expose_secret()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let sessions: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}session:*", app.settings.redis.key_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    let () = redis::cmd("HSET")
        .arg(&sessions[0])
        .arg("gen")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();

    let response = app.refresh(newer["refresh_token"].as_str().unwrap()).await;

    let body = assert_error(response, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    assert!(
        body["error_description"].as_str().unwrap().contains("lost"),
        "{body}"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        counter(
            &metrics,
            "auth_refreshes_total{service=\"auth-service\",outcome=\"reuse\"}"
        ),
        0,
        "{metrics}"
    );
    assert_eq!(
        counter(
            &metrics,
            "auth_refreshes_total{service=\"auth-service\",outcome=\"state_lost\"}"
        ),
        1,
        "{metrics}"
    );
    // Whoever holds the stored generation's token cannot continue the session either.
    assert_error(
        app.refresh(login["refresh_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}
