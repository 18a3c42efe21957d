//! What the auth-service writes to its log over a whole flow: request ids on every line
//! of a request, structured audit events with user and session ids, and never a token, a
//! password or a secret. The real binary runs as a process with JSON logs at debug level,
//! so what is checked is exactly what an operator would collect.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use auth_service::testing::isolated_settings;
use reqwest::StatusCode;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, unique_username};

/// The test's settings as the environment of a service process on `port`.
fn environment(
    port: u16,
) -> (
    HashMap<String, String>,
    auth_service::testing::TestResources,
) {
    let (settings, resources) = isolated_settings();
    let env = HashMap::from([
        ("AUTH__SERVER__PORT".to_owned(), port.to_string()),
        (
            "AUTH__DATABASE__URL".to_owned(),
            settings.database.url.expose_secret().to_owned(),
        ),
        (
            "AUTH__REDIS__URL".to_owned(),
            settings.redis.url.expose_secret().to_owned(),
        ),
        (
            "AUTH__REDIS__KEY_PREFIX".to_owned(),
            settings.redis.key_prefix.clone(),
        ),
        (
            "AUTH__KEYS__DIR".to_owned(),
            settings.keys.dir.display().to_string(),
        ),
        (
            "AUTH__JWT__ISSUER".to_owned(),
            format!("http://127.0.0.1:{port}"),
        ),
        (
            "AUTH__BOOTSTRAP__ADMIN_USERNAME".to_owned(),
            "root_admin".to_owned(),
        ),
        (
            "AUTH__BOOTSTRAP__ADMIN_PASSWORD".to_owned(),
            "quartz lantern meadow 81".to_owned(),
        ),
        ("LOG_FORMAT".to_owned(), "json".to_owned()),
        ("RUST_LOG".to_owned(), "debug".to_owned()),
    ]);
    (env, resources)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_full_flow_logs_request_ids_and_audit_events_but_no_secret() {
    let port = free_port();
    let (env, _resources) = environment(port);
    let log_path = std::env::temp_dir().join(format!("auth-log-{}.jsonl", uuid::Uuid::new_v4()));
    let mut service = tokio::process::Command::new(env!("CARGO_BIN_EXE_auth-service"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&env)
        .stdout(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map(|r| r.status())
        .ok()
        != Some(StatusCode::OK)
    {
        assert!(Instant::now() < deadline, "the service never became ready");
        assert!(service.try_wait().unwrap().is_none(), "the service exited");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let post = |path: &str, body: Value, request_id: &str| {
        http.post(format!("{base}{path}"))
            .header("X-Request-Id", request_id)
            .json(&body)
            .send()
    };

    // Every step that carries a secret, and one that fails.
    let username = unique_username();
    let mut secrets = vec![
        PASSWORD.to_owned(),
        env["AUTH__BOOTSTRAP__ADMIN_PASSWORD"].clone(),
    ];
    let credentials = json!({"username": username, "password": PASSWORD});
    post("/auth/register", credentials.clone(), "flow-register")
        .await
        .unwrap();
    let login = post("/auth/login", credentials.clone(), "flow-login")
        .await
        .unwrap();
    assert_eq!(login.headers()["x-request-id"], "flow-login");
    let login: Value = login.json().await.unwrap();
    let first = login["refresh_token"].as_str().unwrap().to_owned();
    secrets.push(first.clone());
    secrets.push(login["access_token"].as_str().unwrap().to_owned());
    let refreshed: Value = post(
        "/auth/refresh",
        json!({"refresh_token": first}),
        "flow-refresh",
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let second = refreshed["refresh_token"].as_str().unwrap().to_owned();
    secrets.push(second.clone());
    secrets.push(refreshed["access_token"].as_str().unwrap().to_owned());
    post(
        "/auth/refresh",
        json!({"refresh_token": second}),
        "flow-refresh-2",
    )
    .await
    .unwrap();
    // The first token again, two generations old: reuse.
    post(
        "/auth/refresh",
        json!({"refresh_token": first}),
        "flow-reuse",
    )
    .await
    .unwrap();
    let wrong = json!({"username": username, "password": "not my password at all"});
    secrets.push("not my password at all".to_owned());
    post("/auth/login", wrong, "flow-wrong").await.unwrap();
    let again: Value = post("/auth/login", credentials, "flow-again")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = again["refresh_token"].as_str().unwrap().to_owned();
    secrets.push(last.clone());
    secrets.push(again["access_token"].as_str().unwrap().to_owned());
    post(
        "/auth/logout",
        json!({"refresh_token": last}),
        "flow-logout",
    )
    .await
    .unwrap();
    service.kill().await.unwrap();

    let log = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret is in the log: …{}",
            &secret[secret.len() - 6..]
        );
    }
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert!(!lines.is_empty(), "no JSON log lines:\n{log}");
    // Colour codes only ever go to a terminal.
    assert!(!log.contains('\u{1b}'), "ANSI escape codes in a log file");
    // Each request's lines carry its id.
    let of_request = |id: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|line| {
                line.to_string()
                    .contains(&format!("\"request_id\":\"{id}\""))
            })
            .collect()
    };
    assert!(of_request("flow-login").len() >= 2, "{log}");
    // Audit events, structured, with the ids an auditor needs.
    let audit = |event: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|line| line["target"] == "audit" && line["event"] == event)
            .collect()
    };
    for event in [
        "user_registered",
        "login_succeeded",
        "login_failed",
        "refresh_token_reuse",
        "logout",
        "role_changed",
    ] {
        assert!(
            !audit(event).is_empty(),
            "no {event} audit event in:\n{log}"
        );
    }
    let succeeded = audit("login_succeeded");
    assert!(
        succeeded[0]["user_id"].is_string() && succeeded[0]["sid"].is_string(),
        "{}",
        succeeded[0]
    );
    let reuse = audit("refresh_token_reuse");
    assert!(reuse[0].to_string().contains("flow-reuse"), "{}", reuse[0]);
}
