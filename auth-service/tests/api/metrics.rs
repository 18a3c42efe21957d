//! `/metrics`: requests by route pattern, method and status with a label set a URL scan
//! cannot grow, process and build figures, and every domain counter moving when its
//! event happens.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, jwt_part, spawn_app_with, unique_username};

async fn metrics(app: &TestApp) -> String {
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// The value of the series named exactly `series` (name and labels), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0.0)
}

fn series(name: &str, labels: &str) -> String {
    format!("{name}{{service=\"auth-service\",{labels}}} ")
}

#[tokio::test]
async fn every_domain_counter_moves_with_its_event() {
    let app = spawn_app_with(|s| {
        s.rate_limit.attempts_per_username = 2;
        s.jwt.refresh_reuse_grace_secs = 5;
    })
    .await;
    let (username, login) = app.registered_session().await;
    let first = login["refresh_token"].as_str().unwrap().to_owned();

    // Refreshes: rotated, a grace retry, reuse, invalid.
    let second: Value = app.refresh(&first).await.json().await.unwrap();
    app.refresh(&first).await;
    let second = second["refresh_token"].as_str().unwrap().to_owned();
    app.refresh(&second).await;
    app.refresh(&first).await; // two generations old: reuse, the session is revoked
    app.refresh("not a refresh token").await;
    // Logins: failures, then the rate limit for this (username, address).
    for _ in 0..3 {
        app.login(&username, "wrong password").await;
    }
    // Sessions ended by logout, by their owner, by logout-all.
    let other = unique_username();
    app.register(&other, PASSWORD).await;
    let a: Value = app.login(&other, PASSWORD).await.json().await.unwrap();
    let b: Value = app.login(&other, PASSWORD).await.json().await.unwrap();
    let c: Value = app.login(&other, PASSWORD).await.json().await.unwrap();
    app.logout(a["refresh_token"].as_str().unwrap()).await;
    let sid_b = jwt_part(b["access_token"].as_str().unwrap(), 1)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let access_c = c["access_token"].as_str().unwrap();
    app.client
        .delete(app.url(&format!("/auth/sessions/{sid_b}")))
        .bearer_auth(access_c)
        .send()
        .await
        .unwrap();
    app.client
        .post(app.url("/auth/logout-all"))
        .bearer_auth(access_c)
        .send()
        .await
        .unwrap();
    // A refused access token at the session endpoints.
    app.client
        .get(app.url("/auth/sessions"))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();

    let text = metrics(&app).await;

    for (name, labels, expected) in [
        ("auth_registrations_total", None, 2.0),
        ("auth_logins_total", Some(r#"outcome="success""#), 4.0),
        (
            "auth_logins_total",
            Some(r#"outcome="invalid_credentials""#),
            2.0,
        ),
        (
            "auth_rate_limited_total",
            Some(r#"limit="username_address""#),
            1.0,
        ),
        ("auth_refreshes_total", Some(r#"outcome="rotated""#), 2.0),
        (
            "auth_refreshes_total",
            Some(r#"outcome="grace_retry""#),
            1.0,
        ),
        ("auth_refreshes_total", Some(r#"outcome="reuse""#), 1.0),
        ("auth_refreshes_total", Some(r#"outcome="invalid""#), 1.0),
        ("auth_sessions_revoked_total", Some(r#"cause="reuse""#), 1.0),
        (
            "auth_sessions_revoked_total",
            Some(r#"cause="logout""#),
            1.0,
        ),
        ("auth_sessions_revoked_total", Some(r#"cause="owner""#), 1.0),
        (
            "auth_sessions_revoked_total",
            Some(r#"cause="logout_all""#),
            1.0,
        ),
        ("tokens_refused_total", Some(r#"reason="malformed""#), 1.0),
    ] {
        let series = match labels {
            Some(labels) => series(name, labels),
            None => format!("{name}{{service=\"auth-service\"}} "),
        };
        assert_eq!(value(&text, &series), expected, "{series}in\n{text}");
    }
}

#[tokio::test]
async fn requests_are_labelled_by_route_pattern_and_a_url_scan_adds_no_series() {
    let app = spawn_app_with(|_| {}).await;
    let scan = |rounds: usize| {
        let app = &app;
        async move {
            for n in 0..rounds {
                app.get(&format!("/scan/{n}/{}", uuid::Uuid::new_v4()))
                    .await;
                app.client
                    .delete(app.url(&format!("/auth/sessions/{}", uuid::Uuid::new_v4())))
                    .send()
                    .await
                    .unwrap();
            }
        }
    };
    let series = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();
    scan(5).await;
    metrics(&app).await; // so that `/metrics` itself is counted in both snapshots
    let before = metrics(&app).await;

    scan(50).await;
    let after = metrics(&app).await;

    // Fifty more random URLs: more requests counted, not one series more.
    assert_eq!(series(&after), series(&before), "{before}\n---\n{after}");
    assert!(
        value(
            &after,
            r#"http_requests_total{service="auth-service",route="unmatched",method="GET",status="404"} "#
        ) >= 55.0,
        "{after}"
    );
    assert!(
        after.contains(r#"route="/auth/sessions/{id}",method="DELETE",status="401""#),
        "{after}"
    );
    assert!(!after.contains("/scan/"), "a raw path became a label");
    // Process and build figures are there too.
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "build_info{",
    ] {
        assert!(after.contains(name), "{name} missing in\n{after}");
    }
}
