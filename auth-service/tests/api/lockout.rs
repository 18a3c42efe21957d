//! Password guessing is limited per client address, so nobody can lock someone else out
//! (and forwarded client addresses are believed only from trusted proxies).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, assert_error, spawn_app_with, unique_username};

/// Logs in as if from `client`, through a proxy on 127.0.0.1.
async fn login_from(app: &TestApp, client: &str, username: &str, password: &str) -> StatusCode {
    app.client
        .post(app.url("/auth/login"))
        .header("X-Forwarded-For", client)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

async fn behind_a_trusted_proxy() -> TestApp {
    spawn_app_with(|s| s.server.trusted_proxies = vec!["127.0.0.1/32".into()]).await
}

#[tokio::test]
async fn fifty_wrong_passwords_from_one_address_do_not_lock_the_owner_out() {
    let app = behind_a_trusted_proxy().await;
    let victim = unique_username();
    app.register(&victim, PASSWORD).await;

    let mut refused = 0;
    for _ in 0..50 {
        let status = login_from(&app, "203.0.113.66", &victim, "not the password at all").await;
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
        refused += usize::from(status == StatusCode::TOO_MANY_REQUESTS);
    }

    // The attacker's address is stopped…
    assert!(refused >= 40, "only {refused} of 50 were rate limited");
    assert_eq!(
        login_from(&app, "203.0.113.66", &victim, PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // …and the owner, elsewhere, is not.
    assert_eq!(
        login_from(&app, "198.51.100.20", &victim, PASSWORD).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_successful_login_clears_the_count_of_its_address_and_username() {
    let app = spawn_app_with(|s| s.rate_limit.attempts_per_username = 3).await;
    let username = unique_username();
    app.register(&username, PASSWORD).await;

    for _ in 0..3 {
        for _ in 0..2 {
            assert_eq!(
                app.login(&username, "wrong password").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        // Without the reset, the third round would be the 7th attempt of a limit of 3.
        assert_eq!(
            app.login(&username, PASSWORD).await.status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn many_addresses_slow_a_username_down_but_never_refuse_the_right_password() {
    let app = spawn_app_with(|s| {
        s.server.trusted_proxies = vec!["127.0.0.1/32".into()];
        s.rate_limit.attempts_per_username = 2;
        s.rate_limit.delay_after_failures_per_username = 3;
        s.rate_limit.max_delay_ms = 400;
    })
    .await;
    let victim = unique_username();
    app.register(&victim, PASSWORD).await;
    for bot in 1..=6 {
        login_from(&app, &format!("192.0.2.{bot}"), &victim, "guess number one").await;
    }

    let started = std::time::Instant::now();
    let status = login_from(&app, "198.51.100.20", &victim, PASSWORD).await;

    assert_eq!(status, StatusCode::OK);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(150),
        "not slowed down: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn forwarded_addresses_from_an_untrusted_peer_do_not_escape_the_limit() {
    // No trusted proxies: the peer (127.0.0.1) is the client, whatever the headers say.
    let app = spawn_app_with(|s| s.rate_limit.attempts_per_ip = 5).await;
    let username = unique_username();

    for n in 0..5 {
        let spoofed = format!("10.9.8.{n}");
        assert_eq!(
            login_from(&app, &spoofed, &username, "wrong password").await,
            StatusCode::UNAUTHORIZED
        );
    }
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("X-Forwarded-For", "10.9.8.200")
        .header("Forwarded", "for=10.9.8.201")
        .json(&json!({"username": username, "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn a_successful_login_gives_its_attempt_back_on_a_redis_that_never_saw_the_script() {
    // A private Redis, fresh: no script of ours is cached in it yet.
    let redis = crate::own_servers::OwnRedis::start().await;
    let app = spawn_app_with(|s| {
        s.redis.url = secrecy::SecretString::from(redis.url());
        s.rate_limit.attempts_per_ip = 5;
    })
    .await;
    let username = unique_username();
    app.register(&username, PASSWORD).await;

    // Each round counts two attempts against the address and gives the successful one
    // back: 3 after three rounds. Without the give-back the sixth attempt would be 429.
    for round in 0..3 {
        assert_eq!(
            app.login(&username, "wrong password").await.status(),
            StatusCode::UNAUTHORIZED,
            "round {round}"
        );
        assert_eq!(
            app.login(&username, PASSWORD).await.status(),
            StatusCode::OK,
            "round {round}"
        );
    }
}
