//! The verified-token cache seen from outside: a token accepted once is still refused
//! the moment it expires, and the moment its key leaves the JWKS.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    JwksServer, Sign, TestKey, assert_invalid_token, claims, good_token, header, mint, now,
    other_key, spawn_with_jwks, spawn_with_pem_and, trusted_key,
};

#[tokio::test]
async fn an_accepted_token_is_refused_once_it_expires() {
    let app = spawn_with_pem_and(|s| s.jwt.leeway_secs = 0).await;
    let token = good_token(json!({"exp": now() + 2}));
    for _ in 0..3 {
        assert_eq!(
            app.get("/api/me", Some(&token)).await.status(),
            StatusCode::OK
        );
    }

    tokio::time::sleep(Duration::from_millis(3_100)).await;

    let reason = assert_invalid_token(app.get("/api/me", Some(&token)).await, &token).await;
    assert_eq!(reason, "the token has expired");
}

#[tokio::test]
async fn a_token_signed_by_a_withdrawn_key_is_refused_after_the_jwks_refetch() {
    let jwks = JwksServer::start(TestKey::jwks(&[other_key(), trusted_key()]), true).await;
    let app = spawn_with_jwks(&jwks.url, |s| s.jwks.refresh_interval_secs = 1).await;
    let by_withdrawn_key = mint(
        &header(other_key(), json!({})),
        &claims(json!({})),
        Sign::Rs256(other_key()),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get("/api/me", Some(&by_withdrawn_key)).await.status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "the JWKS never loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Twice more: the second verification stores the token, the third is a cache hit.
    for _ in 0..2 {
        assert_eq!(
            app.get("/api/me", Some(&by_withdrawn_key)).await.status(),
            StatusCode::OK,
            "accepted again"
        );
    }

    jwks.publish(TestKey::jwks(&[trusted_key()]));
    let fetched = jwks.hits();
    while jwks.hits() < fetched + 1 {
        assert!(Instant::now() < deadline, "no periodic refetch");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The refetch has been answered; give the service a moment to install the keys.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let reason = assert_invalid_token(
        app.get("/api/me", Some(&by_withdrawn_key)).await,
        &by_withdrawn_key,
    )
    .await;
    assert_eq!(reason, "the token was signed with an unknown key");
    assert_eq!(
        app.get("/api/me", Some(&good_token(json!({}))))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn with_the_cache_off_tokens_are_still_accepted_and_refused_as_before() {
    let app = spawn_with_pem_and(|s| s.cache.max_entries = 0).await;
    let token = good_token(json!({}));

    for _ in 0..2 {
        assert_eq!(
            app.get("/api/me", Some(&token)).await.status(),
            StatusCode::OK
        );
    }
    let expired = good_token(json!({"exp": now() - 60}));
    let reason = assert_invalid_token(app.get("/api/me", Some(&expired)).await, &expired).await;
    assert_eq!(reason, "the token has expired");
}
