//! Slow and abusive clients: a head or a body dribbled byte by byte, idle connections,
//! more connections than allowed. Each is dropped within its limit, and none of them
//! keeps the service from answering everyone else.

use std::time::{Duration, Instant};

use auth_service::testing::RawConnection;
use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_app_with};

/// A request head that never ends: one more header byte at a time.
fn endless_head(path: &str) -> Vec<u8> {
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: test\r\nX-Slow: ").into_bytes();
    head.extend(std::iter::repeat_n(b'a', 4096));
    head
}

async fn healthz_answers_quickly(app: &TestApp) {
    let started = Instant::now();
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn clients_dribbling_a_request_head_get_408_and_are_dropped_without_holding_anyone_up() {
    let app = spawn_app_with(|s| s.server.request_header_timeout_ms = 1000).await;
    // More dribblers than worker threads: none of them holds a worker.
    let dribblers = (0..8).map(|_| async {
        let mut connection = RawConnection::open(&app.address).await;
        let closed = connection
            .dribble(
                &endless_head("/auth/login"),
                Duration::from_millis(100),
                Duration::from_secs(5),
            )
            .await;
        (closed, connection.answer())
    });
    let others = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        for _ in 0..3 {
            healthz_answers_quickly(&app).await;
        }
    };

    let (dribbled, ()) = tokio::join!(futures_util::future::join_all(dribblers), others);

    for (closed, answer) in dribbled {
        let closed = closed.expect("a dribbling client was never dropped");
        assert!(
            closed < Duration::from_millis(2500),
            "dropped after {closed:?}"
        );
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
}

#[tokio::test]
async fn a_client_dribbling_its_second_request_on_a_kept_alive_connection_is_dropped() {
    // actix times the head of the first request of a connection only; the watchdog
    // covers the next ones: keep-alive + header timeout + 1 s of slack.
    let app = spawn_app_with(|s| {
        s.server.request_header_timeout_ms = 1000;
        s.server.keep_alive_secs = 1;
    })
    .await;
    let mut connection = RawConnection::open(&app.address).await;
    connection
        .send(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await;
    assert_eq!(
        connection.closed_within(Duration::from_millis(300)).await,
        None
    );
    assert!(connection.answer().starts_with("HTTP/1.1 200"));

    let closed = connection
        .dribble(
            &endless_head("/auth/login"),
            Duration::from_millis(100),
            Duration::from_secs(8),
        )
        .await;

    let closed = closed.expect("the dribbling client was never dropped");
    assert!(
        closed < Duration::from_millis(4500),
        "dropped after {closed:?}"
    );
    healthz_answers_quickly(&app).await;
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_a_408_and_the_connection_is_closed() {
    let app = spawn_app_with(|s| s.server.body_read_timeout_ms = 1000).await;
    let mut connection = RawConnection::open(&app.address).await;
    let started = Instant::now();
    connection
        .send(
            b"POST /auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"username\":",
        )
        .await;

    let closed = connection.closed_within(Duration::from_secs(4)).await;

    assert!(closed.is_some(), "the connection stayed open");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    let answer = connection.answer();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"request_timeout""#), "{answer}");
    healthz_answers_quickly(&app).await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_keep_alive_time() {
    let app = spawn_app_with(|s| s.server.keep_alive_secs = 1).await;
    let mut connection = RawConnection::open(&app.address).await;
    connection
        .send(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await;

    let closed = connection.closed_within(Duration::from_secs(4)).await;

    assert!(connection.answer().starts_with("HTTP/1.1 200"));
    let closed = closed.expect("the idle connection stayed open");
    assert!(closed >= Duration::from_millis(900), "{closed:?}");
    assert!(closed < Duration::from_millis(2500), "{closed:?}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let app = spawn_app_with(|s| s.server.max_connections = 2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(RawConnection::open(&app.address).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let waiting = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/healthz");
        async move { client.get(url).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!waiting.is_finished(), "a third connection was served");

    held.pop();
    let status = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("the waiting client was not served after a connection closed")
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn zero_limits_are_refused_at_start() {
    let (mut settings, _resources) = crate::helpers::test_settings();
    settings.server.request_header_timeout_ms = 0;
    settings.server.max_connections = 0;

    let error = auth_service::startup::Application::build(settings)
        .await
        .expect_err("the service started with zero limits")
        .to_string();

    assert!(
        error.contains("server.request_header_timeout_ms"),
        "{error}"
    );
    assert!(error.contains("server.max_connections"), "{error}");
}
