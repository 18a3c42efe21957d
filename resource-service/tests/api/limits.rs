//! The `server.*` limits and the graceful shutdown, shared with the auth-service, hold
//! here too: a dribbling client is dropped, zero limits are refused, and SIGTERM ends the
//! real binary cleanly even with a kept-alive client connected.

use std::process::Stdio;
use std::time::{Duration, Instant};

use auth_service::testing::RawConnection;
use reqwest::StatusCode;
use resource_service::startup::Application;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

use crate::helpers::{pem_settings, spawn_with_pem_and, trusted_key};

#[tokio::test]
async fn a_client_dribbling_its_request_head_gets_408_and_is_dropped() {
    let service = spawn_with_pem_and(|s| s.server.request_header_timeout_ms = 1000).await;
    let mut connection = RawConnection::open(&service.address).await;
    let mut head = b"GET /api/me HTTP/1.1\r\nHost: test\r\nX-Slow: ".to_vec();
    head.extend(std::iter::repeat_n(b'a', 4096));

    let closed = connection
        .dribble(&head, Duration::from_millis(100), Duration::from_secs(5))
        .await;

    let closed = closed.expect("the dribbling client was never dropped");
    assert!(
        closed < Duration::from_millis(2500),
        "dropped after {closed:?}"
    );
    assert!(connection.answer().starts_with("HTTP/1.1 408"));
    assert_eq!(
        service.get("/api/public", None).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn zero_limits_are_refused_at_start() {
    let (settings, _dir) = pem_settings(|s| {
        s.server.shutdown_grace_secs = 0;
        s.server.body_read_timeout_ms = 0;
    });

    let error = Application::build(settings)
        .await
        .expect_err("the service started with zero limits")
        .to_string();

    assert!(error.contains("server.shutdown_grace_secs"), "{error}");
    assert!(error.contains("server.body_read_timeout_ms"), "{error}");
}

#[tokio::test]
async fn sigterm_stops_the_binary_cleanly_with_a_kept_alive_client_connected() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("public.pem");
    std::fs::write(&pem, trusted_key().public.to_spki_pem().unwrap()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_resource-service"))
        .current_dir(dir.path())
        .env_remove("APP_ENV")
        .env("RESOURCE__SERVER__HOST", "127.0.0.1")
        .env("RESOURCE__SERVER__PORT", "0")
        .env("RESOURCE__KEYS__PUBLIC_KEY_PATH", &pem)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut logs = Vec::new();
    let port = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the service did not start")
            .unwrap()
            .expect("the service exited before listening");
        let event: Value = serde_json::from_str(&line).unwrap_or_default();
        logs.push(line);
        if event["message"] == "resource-service listening" {
            break event["port"].as_u64().unwrap();
        }
    };
    let address = format!("127.0.0.1:{port}");
    // A client that keeps its connection open after a request.
    let client = reqwest::Client::new();
    let public = client
        .get(format!("http://{address}/api/public"))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::OK);

    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let terminated = Instant::now();

    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the process outlived its grace period")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    // The idle kept-alive connection did not hold it up for the grace period.
    assert!(
        terminated.elapsed() < Duration::from_secs(3),
        "{:?}",
        terminated.elapsed()
    );
    assert!(tokio::net::TcpStream::connect(&address).await.is_err());
    while let Ok(Some(line)) = lines.next_line().await {
        logs.push(line);
    }
    assert!(
        logs.iter().any(|l| l.contains("resource-service stopped")),
        "{logs:?}"
    );
}
