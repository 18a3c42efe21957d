//! A refresh whose answer is lost or refused for a moment is retried promptly with the
//! same refresh token, so the auth-service sees a retry, not a thief.

use std::time::{Duration, Instant};

use client_cli::client::refresh::{REFRESH_ATTEMPTS, RETRY_AFTER_CAP};
use client_cli::error::CliError;

use crate::helpers::Stack;
use crate::proxy::{Fault, Proxy};

#[tokio::test]
async fn a_refresh_answered_503_is_retried_after_retry_after_with_the_same_token() {
    let stack = Stack::start(|_| {}).await;
    let proxy = Proxy::start(
        &stack.auth.address,
        Fault::Unavailable {
            retry_after_secs: 1,
        },
        1,
    )
    .await;
    let (client, _) = stack.logged_in_via(&proxy.url).await;
    let before = client.stored().unwrap();
    let started = Instant::now();

    let refreshed = client.refresh().await.unwrap();

    let elapsed = started.elapsed();
    assert_eq!(
        proxy.refresh_tokens(),
        vec![before.refresh_token.clone(), before.refresh_token.clone()],
        "the same token, twice"
    );
    assert!(
        elapsed >= Duration::from_secs(1),
        "Retry-After honoured: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(4), "promptly: {elapsed:?}");
    assert_eq!(refreshed.refresh_token, proxy.issued()[0]);
    assert_eq!(client.stored().unwrap(), refreshed);
}

#[tokio::test]
async fn a_long_retry_after_is_honoured_only_up_to_the_cap() {
    let stack = Stack::start(|_| {}).await;
    let proxy = Proxy::start(
        &stack.auth.address,
        Fault::Unavailable {
            retry_after_secs: 3600,
        },
        1,
    )
    .await;
    let (client, _) = stack.logged_in_via(&proxy.url).await;
    let started = Instant::now();

    client.refresh().await.unwrap();

    assert!(
        started.elapsed() < RETRY_AFTER_CAP + Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_lost_refresh_answer_is_retried_with_the_same_token_and_the_session_survives() {
    // The auth-service rotates, the answer never arrives: the client holds the
    // predecessor of the live token. Its prompt retry is inside the grace window.
    let stack = Stack::start(|_| {}).await;
    let proxy = Proxy::start(&stack.auth.address, Fault::LoseReply, 1).await;
    let (client, _) = stack.logged_in_via(&proxy.url).await;
    let before = client.stored().unwrap();

    let refreshed = client.refresh().await.unwrap();

    assert_eq!(
        proxy.refresh_tokens(),
        vec![before.refresh_token.clone(), before.refresh_token.clone()]
    );
    let issued = proxy.issued();
    assert_eq!(issued.len(), 2);
    assert_eq!(issued[0], issued[1], "the retry got the same successor");
    assert_eq!(refreshed.refresh_token, issued[0]);
    // Not taken for reuse: the session lives on.
    client.refresh().await.unwrap();
    client.me().await.unwrap();
}

#[tokio::test]
async fn a_refresh_that_keeps_failing_gives_up_after_a_few_tries_and_keeps_the_credentials() {
    let stack = Stack::start(|_| {}).await;
    let proxy = Proxy::start(
        &stack.auth.address,
        Fault::Unavailable {
            retry_after_secs: 0,
        },
        usize::MAX,
    )
    .await;
    let (client, _) = stack.logged_in_via(&proxy.url).await;
    let before = client.stored().unwrap();

    let error = client.refresh().await.unwrap_err();

    assert!(matches!(error, CliError::Unavailable { .. }), "{error:?}");
    assert_eq!(
        proxy.refresh_tokens(),
        vec![before.refresh_token.clone(); REFRESH_ATTEMPTS]
    );
    assert_eq!(
        client.stored().unwrap(),
        before,
        "nothing was lost or deleted"
    );
}
