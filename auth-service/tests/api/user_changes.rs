//! Refreshes take their user (roles, name, epoch) from memory while Postgres announces
//! every change to users; a change made anywhere, even by an operator's SQL, still ends
//! the user's old sessions, and without Postgres the cached users stop refreshing too.

use std::time::{Duration, Instant};

use auth_service::user_cache::CONFIRMED_FOR;
use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::chaos::ChaosProxy;
use crate::helpers::{TestApp, assert_error, jwt_part, spawn_app, spawn_app_with};
use crate::outages::{socket_of, via_proxy};

/// Long enough for the service's listener to connect and confirm its first heartbeat.
const LISTENER_STARTUP: Duration = Duration::from_secs(1);

async fn database(app: &TestApp) -> PgPool {
    PgPool::connect(app.settings.database.url.expose_secret())
        .await
        .unwrap()
}

fn refresh_token(response: &Value) -> String {
    response["refresh_token"].as_str().unwrap().to_owned()
}

fn roles(response: &Value) -> Value {
    jwt_part(response["access_token"].as_str().unwrap(), 1)["roles"].clone()
}

/// A registered user with a session that has refreshed once (so the service holds the
/// user in memory: `…_black_holed` shows that it does); the user's id and the latest
/// token response.
async fn cached_session(app: &TestApp) -> (Uuid, Value) {
    let (_, login) = app.registered_session().await;
    tokio::time::sleep(LISTENER_STARTUP).await;
    let response = app.refresh(&refresh_token(&login)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let refreshed: Value = response.json().await.unwrap();
    let id = jwt_part(refreshed["access_token"].as_str().unwrap(), 1)["sub"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (id, refreshed)
}

/// Runs `statement` with the user id `id` as `$1`.
async fn change(db: &PgPool, statement: &'static str, id: Uuid) {
    sqlx::query(statement).bind(id).execute(db).await.unwrap();
}

/// Refreshes the session along its chain until one is refused, which must happen within
/// `CONFIRMED_FOR`, with `invalid_grant` and a description that contains `why`.
async fn refused_within_the_bound(app: &TestApp, mut latest: Value, why: &str) {
    let started = Instant::now();
    let refusal = loop {
        let response = app.refresh(&refresh_token(&latest)).await;
        match response.status() {
            StatusCode::OK => latest = response.json().await.unwrap(),
            StatusCode::SERVICE_UNAVAILABLE => {}
            _ => break response,
        }
        assert!(
            started.elapsed() < CONFIRMED_FOR,
            "still refreshing {:?} after the change",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let body = assert_error(refusal, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    assert!(
        body["error_description"].as_str().unwrap().contains(why),
        "{body}"
    );
}

/// Refreshes the session along its chain, `started` being when Postgres became
/// unreachable: no refresh sent `CONFIRMED_FOR` or later into the outage may succeed, and
/// a 503 must come within `within`. Returns the latest token response.
async fn served_from_memory_for_at_most_the_bound(
    app: &TestApp,
    mut latest: Value,
    started: Instant,
    within: Duration,
) -> Value {
    let unavailable = loop {
        let sent = started.elapsed();
        let response = app.refresh(&refresh_token(&latest)).await;
        if response.status() != StatusCode::OK {
            break response;
        }
        assert!(
            sent < CONFIRMED_FOR,
            "served from memory {sent:?} into the outage"
        );
        latest = response.json().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_error(
        unavailable,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    )
    .await;
    assert!(started.elapsed() < within, "{:?}", started.elapsed());
    latest
}

/// Refreshes with `latest` (a refused attempt may have rotated the session: its retry
/// gets the same successor) until one succeeds, within `within`.
async fn refreshes_again_within(app: &TestApp, latest: &Value, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let response = app.refresh(&refresh_token(latest)).await;
        if response.status() == StatusCode::OK {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_change_made_in_sql_ends_the_sessions_of_a_user_held_in_memory() {
    let app = spawn_app().await;
    let db = database(&app).await;
    let (id, refreshed) = cached_session(&app).await;

    // A password change (the epoch moves) made by an operator, not by this instance.
    change(
        &db,
        "UPDATE users SET sessions_valid_after = clock_timestamp() WHERE id = $1",
        id,
    )
    .await;

    refused_within_the_bound(&app, refreshed, "roles or password changed").await;
}

#[tokio::test]
async fn with_the_announcing_trigger_disabled_nothing_is_served_from_memory() {
    let app = spawn_app().await;
    let db = database(&app).await;
    let (id, latest) = cached_session(&app).await;

    // Changes are no longer announced: a role given now must still show within the bound.
    sqlx::query("ALTER TABLE users DISABLE TRIGGER users_changed")
        .execute(&db)
        .await
        .unwrap();
    change(
        &db,
        "UPDATE users SET roles = array_append(roles, 'auditor') WHERE id = $1",
        id,
    )
    .await;
    roles_shown_within_the_bound(&app, latest, serde_json::json!(["user", "auditor"])).await;
}

#[tokio::test]
async fn a_user_deleted_in_sql_cannot_refresh_from_memory() {
    let app = spawn_app().await;
    let db = database(&app).await;
    let (id, refreshed) = cached_session(&app).await;

    change(&db, "DELETE FROM users WHERE id = $1", id).await;

    refused_within_the_bound(&app, refreshed, "no longer exists").await;
}

#[tokio::test]
async fn without_postgres_users_in_memory_stop_refreshing_and_resume_after() {
    let (settings, _keys) = crate::helpers::test_settings();
    let mut proxy = ChaosProxy::start(socket_of(settings.database.url.expose_secret())).await;
    let database_url = via_proxy(settings.database.url.expose_secret(), proxy.addr);
    let app = spawn_app_with(|s| s.database.url = SecretString::from(database_url)).await;
    let (_, refreshed) = cached_session(&app).await;

    proxy.cut();

    // Served from memory for at most `CONFIRMED_FOR`, then a database read, which fails.
    let latest = served_from_memory_for_at_most_the_bound(
        &app,
        refreshed,
        Instant::now(),
        Duration::from_secs(3),
    )
    .await;

    proxy.restore().await;
    refreshes_again_within(&app, &latest, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn with_postgres_black_holed_users_in_memory_refresh_for_at_most_the_bound() {
    let (settings, _keys) = crate::helpers::test_settings();
    let proxy = ChaosProxy::start(socket_of(settings.database.url.expose_secret())).await;
    let database_url = via_proxy(settings.database.url.expose_secret(), proxy.addr);
    let app = spawn_app_with(|s| s.database.url = SecretString::from(database_url)).await;
    let (_, refreshed) = cached_session(&app).await;

    proxy.black_hole();
    let started = Instant::now();

    // Nothing reaches Postgres, yet the next refresh succeeds: its user came from memory.
    let response = app.refresh(&refresh_token(&refreshed)).await;
    assert_eq!(response.status(), StatusCode::OK, "not served from memory");
    // Once no heartbeat has come back for the bound, refreshes need Postgres: 503.
    let latest: Value = response.json().await.unwrap();
    let latest =
        served_from_memory_for_at_most_the_bound(&app, latest, started, Duration::from_secs(4))
            .await;

    proxy.end_black_hole();
    refreshes_again_within(&app, &latest, Duration::from_secs(15)).await;
}

/// Refreshes along the chain until the access token carries `expected` roles, which must
/// happen within `CONFIRMED_FOR` of the call.
async fn roles_shown_within_the_bound(app: &TestApp, mut latest: Value, expected: Value) {
    let started = Instant::now();
    loop {
        let response = app.refresh(&refresh_token(&latest)).await;
        assert_eq!(response.status(), StatusCode::OK);
        latest = response.json().await.unwrap();
        if roles(&latest) == expected {
            return;
        }
        assert!(
            started.elapsed() < CONFIRMED_FOR,
            "old roles served {:?} after the change",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_change_made_with_the_trigger_switched_off_and_on_again_is_not_missed() {
    let app = spawn_app().await;
    let db = database(&app).await;
    let (_, latest) = cached_session(&app).await;

    // The bulk-update pattern: no announcement is made, and the trigger looks the same
    // before and after.
    let mut change = db.begin().await.unwrap();
    for statement in [
        "ALTER TABLE users DISABLE TRIGGER users_changed",
        "UPDATE users SET roles = array_append(roles, 'auditor')",
        "ALTER TABLE users ENABLE ALWAYS TRIGGER users_changed",
    ] {
        sqlx::query(statement).execute(&mut *change).await.unwrap();
    }
    change.commit().await.unwrap();

    roles_shown_within_the_bound(&app, latest, serde_json::json!(["user", "auditor"])).await;
}

#[tokio::test]
async fn changes_in_replica_mode_and_truncation_are_announced_too() {
    let app = spawn_app().await;
    let db = database(&app).await;
    let (id, latest) = cached_session(&app).await;

    let mut replica = db.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *replica)
        .await
        .unwrap();
    sqlx::query("UPDATE users SET roles = array_append(roles, 'auditor') WHERE id = $1")
        .bind(id)
        .execute(&mut *replica)
        .await
        .unwrap();
    drop(replica);
    roles_shown_within_the_bound(&app, latest.clone(), serde_json::json!(["user", "auditor"]))
        .await;

    let (_, latest) = cached_session(&app).await;
    sqlx::query("TRUNCATE users").execute(&db).await.unwrap();
    refused_within_the_bound(&app, latest, "no longer exists").await;
}
