use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_app_with};

fn refresh_token(body: &Value) -> String {
    body["refresh_token"].as_str().unwrap().to_owned()
}

async fn refresh_ok(app: &TestApp, token: &str) -> Value {
    let response = app.refresh(token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

#[tokio::test]
async fn register_login_refresh_logout() {
    let app = spawn_app().await;
    let (_, login) = app.registered_session().await;

    let refreshed = refresh_ok(&app, &refresh_token(&login)).await;
    assert_ne!(refresh_token(&refreshed), refresh_token(&login));
    assert_ne!(refreshed["access_token"], login["access_token"]);

    assert_eq!(
        app.logout(&refresh_token(&refreshed)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.refresh(&refresh_token(&refreshed)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn refresh_keeps_the_session_id_and_mints_a_fresh_access_token() {
    let app = spawn_app().await;
    let (_, login) = app.registered_session().await;

    let refreshed = refresh_ok(&app, &refresh_token(&login)).await;

    let before = crate::helpers::jwt_part(login["access_token"].as_str().unwrap(), 1);
    let after = crate::helpers::jwt_part(refreshed["access_token"].as_str().unwrap(), 1);
    assert_eq!(before["sid"], after["sid"]);
    assert_eq!(before["sub"], after["sub"]);
    assert_ne!(before["jti"], after["jti"]);
}

#[tokio::test]
async fn without_a_grace_window_the_old_token_fails_and_replaying_it_revokes_the_session() {
    let app = spawn_app_with(|s| s.jwt.refresh_reuse_grace_secs = 0).await;
    let (_, login) = app.registered_session().await;
    let old = refresh_token(&login);
    let current = refresh_token(&refresh_ok(&app, &old).await);

    assert_error(
        app.refresh(&old).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;

    // The replay killed the whole session: the current token is dead too.
    assert_error(
        app.refresh(&current).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn a_retry_inside_the_grace_window_returns_the_identical_successor() {
    let app = spawn_app().await;
    let (_, login) = app.registered_session().await;
    let first = refresh_ok(&app, &refresh_token(&login)).await;

    let retry = refresh_ok(&app, &refresh_token(&login)).await;

    assert_eq!(refresh_token(&retry), refresh_token(&first));
    // And the session goes on from that successor.
    let next = refresh_ok(&app, &refresh_token(&retry)).await;
    assert_ne!(refresh_token(&next), refresh_token(&first));
}

#[tokio::test]
async fn a_token_two_generations_old_revokes_the_session_even_inside_the_window() {
    let app = spawn_app().await;
    let (_, login) = app.registered_session().await;
    let gen0 = refresh_token(&login);
    let gen1 = refresh_token(&refresh_ok(&app, &gen0).await);
    let gen2 = refresh_token(&refresh_ok(&app, &gen1).await);

    assert_error(
        app.refresh(&gen0).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;

    assert_error(
        app.refresh(&gen2).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn retries_beyond_the_grace_count_are_refused_without_revoking() {
    let app = spawn_app_with(|s| s.jwt.refresh_reuse_grace_count = 2).await;
    let (_, login) = app.registered_session().await;
    let old = refresh_token(&login);
    let successor = refresh_token(&refresh_ok(&app, &old).await);
    for _ in 0..2 {
        assert_eq!(refresh_token(&refresh_ok(&app, &old).await), successor);
    }

    assert_error(
        app.refresh(&old).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;

    refresh_ok(&app, &successor).await;
}

#[tokio::test]
async fn a_retry_after_the_grace_window_is_reuse() {
    let app = spawn_app_with(|s| s.jwt.refresh_reuse_grace_secs = 1).await;
    let (_, login) = app.registered_session().await;
    let old = refresh_token(&login);
    let successor = refresh_token(&refresh_ok(&app, &old).await);

    app.clock.advance(Duration::from_millis(1100));

    assert_error(
        app.refresh(&old).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    assert_error(
        app.refresh(&successor).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

/// Fires `n` refreshes of one token at once; returns (status, refresh token) pairs.
async fn concurrent_refreshes(
    app: &TestApp,
    token: &str,
    n: usize,
) -> Vec<(StatusCode, Option<String>)> {
    let attempts = (0..n).map(|_| async {
        let response = app.refresh(token).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (status, body["refresh_token"].as_str().map(str::to_owned))
    });
    futures_util::future::join_all(attempts).await
}

#[tokio::test]
async fn twenty_concurrent_refreshes_yield_one_successor_that_works() {
    let app = spawn_app().await;
    let (_, login) = app.registered_session().await;

    let results = concurrent_refreshes(&app, &refresh_token(&login), 20).await;

    assert!(
        results
            .iter()
            .all(|(s, _)| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED)
    );
    let successors: HashSet<_> = results.iter().filter_map(|(_, t)| t.clone()).collect();
    assert_eq!(successors.len(), 1, "{results:?}");
    let successes = results.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert!(
        (1..=4).contains(&successes),
        "one rotation plus at most 3 grace retries: {successes}"
    );
    let successor = successors.into_iter().next().unwrap();
    refresh_ok(&app, &successor).await;
}

#[tokio::test]
async fn twenty_concurrent_refreshes_without_grace_window_succeed_once_and_revoke() {
    let app = spawn_app_with(|s| s.jwt.refresh_reuse_grace_secs = 0).await;
    let (_, login) = app.registered_session().await;

    let results = concurrent_refreshes(&app, &refresh_token(&login), 20).await;

    let winners: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert_eq!(
        results
            .iter()
            .filter(|(s, _)| *s == StatusCode::UNAUTHORIZED)
            .count(),
        19
    );
    // The losers presented a retired token: reuse, so the winner's token is dead too.
    let successor = winners[0].1.clone().unwrap();
    assert_error(
        app.refresh(&successor).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn an_idle_session_expires_after_the_refresh_ttl() {
    let app = spawn_app_with(|s| s.jwt.refresh_ttl_secs = 1).await;
    let (_, login) = app.registered_session().await;
    assert_eq!(login["refresh_expires_in"], 1);

    tokio::time::sleep(Duration::from_millis(1300)).await;

    assert_error(
        app.refresh(&refresh_token(&login)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn an_active_session_still_ends_at_its_absolute_limit() {
    let app = spawn_app_with(|s| {
        s.jwt.refresh_ttl_secs = 60;
        s.jwt.session_max_ttl_secs = 2;
    })
    .await;
    let (_, login) = app.registered_session().await;
    assert!(login["refresh_expires_in"].as_i64().unwrap() <= 2);

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let refreshed = refresh_ok(&app, &refresh_token(&login)).await;
    // The rotated token does not outlive the session.
    assert!(
        refreshed["refresh_expires_in"].as_i64().unwrap() <= 1,
        "{refreshed}"
    );

    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_error(
        app.refresh(&refresh_token(&refreshed)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn redis_holds_no_usable_refresh_token_material() {
    let app = spawn_app().await;
    let (_, login) = app.registered_session().await;
    let refreshed = refresh_ok(&app, &refresh_token(&login)).await;

    let dump = app.redis_dump().await;

    assert!(!dump.is_empty());
    for token in [refresh_token(&login), refresh_token(&refreshed)] {
        for (key, contents) in &dump {
            // Neither the token nor any 16-character piece of it is stored.
            for window in token.as_bytes().windows(16) {
                let piece = std::str::from_utf8(window).unwrap();
                assert!(
                    !contents.contains(piece) && !key.contains(piece),
                    "{key}: {contents}"
                );
            }
        }
    }
}

#[tokio::test]
async fn tokens_from_another_deployment_are_invalid_grants() {
    let app = spawn_app().await;
    let other = spawn_app().await;
    let (_, login) = other.registered_session().await;

    assert_error(
        app.refresh(&refresh_token(&login)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}
