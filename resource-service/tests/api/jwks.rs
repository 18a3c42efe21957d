//! Keys from a JWKS: readiness waits for them, a rotated-in key is picked up without a
//! restart, and unknown `kid`s cannot make the service hammer the JWKS endpoint.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    JwksServer, Sign, TestKey, assert_invalid_token, claims, good_token, header, mint, other_key,
    spawn_with_jwks, trusted_key,
};

async fn wait_until_ready(app: &crate::helpers::TestResource) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get("/readyz", None).await.status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn readiness_waits_for_the_jwks_and_then_tokens_verify() {
    let jwks = JwksServer::start(TestKey::jwks(&[trusted_key()]), false).await;
    let app = spawn_with_jwks(&jwks.url, |_| {}).await;

    let not_ready = app.get("/readyz", None).await;
    assert_eq!(not_ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        not_ready.json::<serde_json::Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );

    // Let the first fetch fail before the JWKS comes up, so what follows is a retry.
    let deadline = Instant::now() + Duration::from_secs(10);
    while jwks.hits() == 0 {
        assert!(Instant::now() < deadline, "never tried the JWKS");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    jwks.set_up(true);
    wait_until_ready(&app).await;

    assert_eq!(
        app.get("/api/me", Some(&good_token(json!({}))))
            .await
            .status(),
        StatusCode::OK
    );
    assert!(jwks.hits() >= 2, "it retried: {}", jwks.hits());
}

#[tokio::test]
async fn a_key_rotated_in_is_used_without_restart_and_refetches_are_rate_limited() {
    let jwks = JwksServer::start(TestKey::jwks(&[trusted_key()]), true).await;
    let app = spawn_with_jwks(&jwks.url, |_| {}).await;
    wait_until_ready(&app).await;
    let after_start = jwks.hits();
    assert_eq!(after_start, 1);

    // The auth side starts publishing a second key and signs with it.
    jwks.publish(TestKey::jwks(&[other_key(), trusted_key()]));
    let rotated = mint(
        &header(other_key(), json!({})),
        &claims(json!({})),
        Sign::Rs256(other_key()),
    );

    assert_eq!(
        app.get("/api/me", Some(&rotated)).await.status(),
        StatusCode::OK
    );
    assert_eq!(jwks.hits(), after_start + 1);
    // The old key still works for tokens it signed.
    assert_eq!(
        app.get("/api/me", Some(&good_token(json!({}))))
            .await
            .status(),
        StatusCode::OK
    );

    // A burst of made-up kids inside the interval triggers no further fetch.
    let burst = (0..50).map(|i| {
        let token = mint(
            &header(trusted_key(), json!({"kid": format!("made-up-{i}")})),
            &claims(json!({})),
            Sign::Rs256(trusted_key()),
        );
        let app = &app;
        async move {
            let response = app.get("/api/me", Some(&token)).await;
            assert_invalid_token(response, &token).await
        }
    });
    let reasons = futures_util::future::join_all(burst).await;
    assert!(
        reasons
            .iter()
            .all(|r| r == "the token was signed with an unknown key")
    );
    assert_eq!(
        jwks.hits(),
        after_start + 1,
        "refetches must stay within the rate limit"
    );
}

#[tokio::test]
async fn after_the_interval_an_unknown_kid_may_refetch_again() {
    let jwks = JwksServer::start(TestKey::jwks(&[trusted_key()]), true).await;
    let app = spawn_with_jwks(&jwks.url, |s| s.jwks.min_refetch_interval_secs = 1).await;
    wait_until_ready(&app).await;
    let unknown = mint(
        &header(other_key(), json!({})),
        &claims(json!({})),
        Sign::Rs256(other_key()),
    );

    assert_eq!(
        app.get("/api/me", Some(&unknown)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/me", Some(&unknown)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(jwks.hits(), 2);

    jwks.publish(TestKey::jwks(&[other_key()]));
    tokio::time::sleep(Duration::from_millis(1100)).await;

    assert_eq!(
        app.get("/api/me", Some(&unknown)).await.status(),
        StatusCode::OK
    );
    assert_eq!(jwks.hits(), 3);
}

#[tokio::test]
async fn a_jwks_outage_keeps_the_keys_already_loaded() {
    let jwks = JwksServer::start(TestKey::jwks(&[trusted_key()]), true).await;
    let app = spawn_with_jwks(&jwks.url, |_| {}).await;
    wait_until_ready(&app).await;

    jwks.set_up(false);
    let unknown = mint(
        &header(other_key(), json!({})),
        &claims(json!({})),
        Sign::Rs256(other_key()),
    );
    assert_eq!(
        app.get("/api/me", Some(&unknown)).await.status(),
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        app.get("/api/me", Some(&good_token(json!({}))))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
}
