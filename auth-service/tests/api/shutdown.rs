//! Graceful shutdown of the real binary: on SIGTERM it stops accepting, lets requests in
//! flight finish within `server.shutdown_grace_secs`, closes its stores and exits 0.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auth_service::testing::TestResources;
use reqwest::StatusCode;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{PASSWORD, test_settings, unique_username};

/// The auth-service binary, started on a free port with the test's database, Redis
/// prefix and keys, logging JSON lines that the test keeps.
struct RunningService {
    child: Child,
    address: String,
    logs: Arc<Mutex<Vec<String>>>,
    _resources: TestResources,
    key_prefix: String,
    redis_url: String,
}

impl RunningService {
    async fn start(extra_env: &[(&str, &str)]) -> Self {
        let (settings, resources) = test_settings();
        let mut command = Command::new(env!("CARGO_BIN_EXE_auth-service"));
        command
            // No config/ directory there: the built-in defaults and these variables only.
            .current_dir(resources.keys_dir())
            .env_remove("APP_ENV")
            .env("AUTH__SERVER__HOST", "127.0.0.1")
            .env("AUTH__SERVER__PORT", "0")
            .env("AUTH__DATABASE__URL", settings.database.url.expose_secret())
            .env("AUTH__REDIS__URL", settings.redis.url.expose_secret())
            .env("AUTH__REDIS__KEY_PREFIX", &settings.redis.key_prefix)
            .env("AUTH__KEYS__DIR", resources.keys_dir())
            .env("AUTH__BOOTSTRAP__ADMIN_USERNAME", "")
            .env("AUTH__BOOTSTRAP__ADMIN_PASSWORD", "")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = tokio::sync::oneshot::channel();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn({
            let logs = Arc::clone(&logs);
            async move {
                let mut port_tx = Some(port_tx);
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(event) = serde_json::from_str::<Value>(&line)
                        && event["message"] == "auth-service listening"
                        && let Some(tx) = port_tx.take()
                    {
                        let _ = tx.send(event["port"].as_u64().unwrap());
                    }
                    logs.lock().unwrap().push(line);
                }
            }
        });
        let port = tokio::time::timeout(Duration::from_secs(60), port_rx)
            .await
            .expect("the service did not start within 60 s")
            .expect("the service exited before listening");
        Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            logs,
            _resources: resources,
            key_prefix: settings.redis.key_prefix.clone(),
            redis_url: settings.redis.url.expose_secret().to_owned(),
        }
    }

    fn terminate(&self) {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    fn logged(&self, message: &str) -> bool {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(message))
    }

    /// Registers a user whose logins the rate limiter slows down by its maximum delay
    /// (`rate_limit.max_delay_ms`), as after a flood of failures: a login that stays in
    /// flight for a known time.
    async fn slow_login_user(&self, client: &reqwest::Client) -> String {
        let username = unique_username();
        let registered = client
            .post(format!("{}/auth/register", self.address))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), StatusCode::CREATED);
        let redis = redis::Client::open(self.redis_url.as_str()).unwrap();
        let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
        let () = redis::cmd("SET")
            .arg(format!("{}ratelimit:user:{username}", self.key_prefix))
            .arg(100_000)
            .arg("PX")
            .arg(60_000)
            .query_async(&mut conn)
            .await
            .unwrap();
        username
    }
}

fn login(
    client: &reqwest::Client,
    address: &str,
    username: &str,
) -> tokio::task::JoinHandle<Result<(StatusCode, Value), reqwest::Error>> {
    let request = client
        .post(format!("{address}/auth/login"))
        .json(&json!({"username": username, "password": PASSWORD}));
    tokio::spawn(async move {
        let response = request.send().await?;
        let status = response.status();
        Ok((status, response.json().await?))
    })
}

#[tokio::test]
async fn a_login_in_flight_at_sigterm_completes_and_the_process_exits_0_within_the_grace() {
    let mut service = RunningService::start(&[("AUTH__RATE_LIMIT__MAX_DELAY_MS", "3000")]).await;
    let client = reqwest::Client::new();
    let username = service.slow_login_user(&client).await;
    let started = Instant::now();
    let in_flight = login(&client, &service.address, &username);
    tokio::time::sleep(Duration::from_millis(800)).await;

    service.terminate();
    let terminated = Instant::now();

    // New connections are refused at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused =
        tokio::net::TcpStream::connect(service.address.trim_start_matches("http://")).await;
    assert!(
        refused.is_err(),
        "a new connection was accepted after SIGTERM"
    );
    // The login in flight completes normally.
    let (status, body) = in_flight.await.unwrap().unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["refresh_token"].is_string());
    assert!(
        started.elapsed() >= Duration::from_millis(2900),
        "the login was not slowed"
    );
    // And the process ends cleanly within the default grace of 10 s.
    let exit = tokio::time::timeout(Duration::from_secs(10), service.child.wait())
        .await
        .expect("the process outlived its grace period")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(terminated.elapsed() < Duration::from_secs(10));
    assert!(service.logged("shutting down"));
    assert!(service.logged("auth-service stopped"));
}

#[tokio::test]
async fn a_request_still_running_when_the_grace_ends_is_cut_and_the_process_exits_0() {
    let mut service = RunningService::start(&[
        ("AUTH__RATE_LIMIT__MAX_DELAY_MS", "6000"),
        ("AUTH__SERVER__SHUTDOWN_GRACE_SECS", "1"),
    ])
    .await;
    let client = reqwest::Client::new();
    let username = service.slow_login_user(&client).await;
    let in_flight = login(&client, &service.address, &username);
    tokio::time::sleep(Duration::from_millis(500)).await;

    service.terminate();
    let terminated = Instant::now();

    let exit = tokio::time::timeout(Duration::from_secs(5), service.child.wait())
        .await
        .expect("the process outlived its grace period")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    // Grace 1 s, plus actix's once-a-second check on draining workers.
    assert!(
        terminated.elapsed() < Duration::from_secs(3),
        "{:?}",
        terminated.elapsed()
    );
    assert!(
        in_flight.await.unwrap().is_err(),
        "the slow login was not cut"
    );
}
