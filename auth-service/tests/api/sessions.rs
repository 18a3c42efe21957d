//! Session management: list, end one, end all, the per-user cap.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, TestApp, assert_error, jwt_part, spawn_app, spawn_app_with, unique_username,
};

async fn login_as(app: &TestApp, username: &str, agent: &str) -> Value {
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("User-Agent", agent)
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn list(app: &TestApp, access_token: &str) -> Vec<Value> {
    let response = app
        .client
        .get(app.url("/auth/sessions"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn delete(app: &TestApp, access_token: &str, id: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/auth/sessions/{id}")))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

fn access(body: &Value) -> &str {
    body["access_token"].as_str().unwrap()
}

fn refresh(body: &Value) -> &str {
    body["refresh_token"].as_str().unwrap()
}

fn sid(body: &Value) -> String {
    jwt_part(access(body), 1)["sid"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn user_with_three_sessions(app: &TestApp) -> (String, Vec<Value>) {
    let username = unique_username();
    app.register(&username, PASSWORD).await;
    let mut logins = Vec::new();
    for agent in ["laptop", "phone", "tablet"] {
        logins.push(login_as(app, &username, agent).await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (username, logins)
}

#[tokio::test]
async fn three_logins_are_three_sessions_newest_first_with_one_current() {
    let app = spawn_app().await;
    let (_, logins) = user_with_three_sessions(&app).await;

    let sessions = list(&app, access(&logins[1])).await;

    assert_eq!(sessions.len(), 3);
    let agents: Vec<_> = sessions
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["tablet", "phone", "laptop"]);
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], sid(&logins[1]).as_str());
    for s in &sessions {
        for field in ["created_at", "last_used_at", "expires_at"] {
            assert!(s[field].as_str().is_some_and(|t| t.contains('T')), "{s}");
        }
    }
}

#[tokio::test]
async fn deleting_a_session_kills_only_its_refresh_token() {
    let app = spawn_app().await;
    let (_, logins) = user_with_three_sessions(&app).await;

    let response = delete(&app, access(&logins[2]), &sid(&logins[0])).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.refresh(refresh(&logins[0])).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.refresh(refresh(&logins[1])).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.refresh(refresh(&logins[2])).await.status(),
        StatusCode::OK
    );
    assert_eq!(list(&app, access(&logins[2])).await.len(), 2);
}

#[tokio::test]
async fn deleting_someone_elses_or_a_missing_session_is_404() {
    let app = spawn_app().await;
    let (_, victim) = app.registered_session().await;
    let (_, attacker) = app.registered_session().await;

    let others = delete(&app, access(&attacker), &sid(&victim)).await;
    let missing = delete(&app, access(&attacker), &uuid::Uuid::new_v4().to_string()).await;
    let garbage = delete(&app, access(&attacker), "not-a-session").await;

    let a = assert_error(others, StatusCode::NOT_FOUND, "not_found").await;
    let b = assert_error(missing, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(a, b, "the two cases must look the same");
    assert_error(garbage, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.refresh(refresh(&victim)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_all_kills_every_session() {
    let app = spawn_app().await;
    let (_, logins) = user_with_three_sessions(&app).await;

    let response = app
        .client
        .post(app.url("/auth/logout-all"))
        .bearer_auth(access(&logins[0]))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for login in &logins {
        assert_error(
            app.refresh(refresh(login)).await,
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
        )
        .await;
    }
    // The access token itself stays valid for resource servers until it expires
    // (stateless by design), but it can no longer manage sessions: its session is over.
    let listing = app
        .client
        .get(app.url("/auth/sessions"))
        .bearer_auth(access(&logins[0]))
        .send()
        .await
        .unwrap();
    assert_error(listing, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn logging_in_beyond_the_cap_evicts_the_least_recently_used_session() {
    let app = spawn_app_with(|s| s.jwt.max_sessions_per_user = 2).await;
    let username = unique_username();
    app.register(&username, PASSWORD).await;
    let first = login_as(&app, &username, "first").await;
    let second = login_as(&app, &username, "second").await;

    let third = login_as(&app, &username, "third").await;

    assert_error(
        app.refresh(refresh(&first)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    let sessions = list(&app, access(&third)).await;
    let agents: Vec<_> = sessions
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["third", "second"]);
    assert_eq!(app.refresh(refresh(&second)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_refresh_counts_as_use_for_the_cap() {
    let app = spawn_app_with(|s| s.jwt.max_sessions_per_user = 2).await;
    let username = unique_username();
    app.register(&username, PASSWORD).await;
    let first = login_as(&app, &username, "first").await;
    let second = login_as(&app, &username, "second").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let first = app
        .refresh(refresh(&first))
        .await
        .json::<Value>()
        .await
        .unwrap();

    login_as(&app, &username, "third").await;

    assert_eq!(app.refresh(refresh(&first)).await.status(), StatusCode::OK);
    assert_error(
        app.refresh(refresh(&second)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn the_listing_after_expiry_is_empty() {
    let app = spawn_app_with(|s| {
        s.jwt.refresh_ttl_secs = 1;
        s.jwt.access_ttl_secs = 60;
    })
    .await;
    let (username, logins) = user_with_three_sessions(&app).await;

    tokio::time::sleep(Duration::from_millis(1300)).await;

    // The expired sessions' own tokens can no longer list anything.
    let expired = app
        .client
        .get(app.url("/auth/sessions"))
        .bearer_auth(access(&logins[0]))
        .send()
        .await
        .unwrap();
    assert_error(expired, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // A new session sees only itself, and the index itself was pruned, not only filtered.
    let fresh = login_as(&app, &username, "desktop").await;
    let sessions = list(&app, access(&fresh)).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["id"], sid(&fresh).as_str());
    let dump = app.redis_dump().await;
    let index = dump
        .iter()
        .find(|(key, _)| key.contains(":sessions"))
        .map(|(_, members)| members.clone())
        .unwrap_or_default();
    for login in &logins {
        assert!(!index.contains(&sid(login)), "{index}");
    }
}

#[tokio::test]
async fn session_endpoints_demand_a_valid_bearer_token() {
    let app = spawn_app().await;

    let none = app.get("/auth/sessions").await;
    let challenge = none.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(challenge, r#"Bearer realm="auth-service""#);
    assert_error(none, StatusCode::UNAUTHORIZED, "missing_token").await;

    let garbage = app
        .client
        .get(app.url("/auth/sessions"))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    let challenge = garbage.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert_error(garbage, StatusCode::UNAUTHORIZED, "invalid_token").await;

    let logout_all = app
        .client
        .post(app.url("/auth/logout-all"))
        .send()
        .await
        .unwrap();
    assert_error(logout_all, StatusCode::UNAUTHORIZED, "missing_token").await;
}

#[tokio::test]
async fn session_calls_with_the_token_of_an_ended_session_are_invalid_token() {
    let app = spawn_app().await;
    let (_, logins) = user_with_three_sessions(&app).await;
    app.logout(refresh(&logins[0])).await;

    let listing = app
        .client
        .get(app.url("/auth/sessions"))
        .bearer_auth(access(&logins[0]))
        .send()
        .await
        .unwrap();
    let challenge = listing.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert_error(listing, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // It cannot end the other sessions either…
    let response = delete(&app, access(&logins[0]), &sid(&logins[1])).await;
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let logout_all = app
        .client
        .post(app.url("/auth/logout-all"))
        .bearer_auth(access(&logins[0]))
        .send()
        .await
        .unwrap();
    assert_error(logout_all, StatusCode::UNAUTHORIZED, "invalid_token").await;
    // …which are untouched.
    assert_eq!(list(&app, access(&logins[1])).await.len(), 2);
}

#[tokio::test]
async fn listing_needs_the_read_scope_and_ending_sessions_the_write_scope() {
    let app = spawn_app().await;
    let username = unique_username();
    app.register(&username, PASSWORD).await;
    let login = |scope: &'static str| {
        let app = &app;
        let username = username.clone();
        async move {
            app.post_json(
                "/auth/login",
                &json!({"username": username, "password": PASSWORD, "scope": scope}),
            )
            .await
            .json::<Value>()
            .await
            .unwrap()
        }
    };
    let reader = login("read").await;
    let writer = login("write").await;

    assert_eq!(list(&app, access(&reader)).await.len(), 2);
    let denied = delete(&app, access(&reader), &sid(&writer)).await;
    let challenge = denied.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(challenge.contains(r#"scope="write""#), "{challenge}");
    assert_error(denied, StatusCode::FORBIDDEN, "insufficient_scope").await;
    let listing = app
        .client
        .get(app.url("/auth/sessions"))
        .bearer_auth(access(&writer))
        .send()
        .await
        .unwrap();
    assert_error(listing, StatusCode::FORBIDDEN, "insufficient_scope").await;
    assert_eq!(
        delete(&app, access(&writer), &sid(&reader)).await.status(),
        StatusCode::NO_CONTENT
    );
}
