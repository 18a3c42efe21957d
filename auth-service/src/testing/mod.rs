//! Test support (feature `testing`): an auth-service isolated for one test, with its own
//! database, Redis key prefix and key directory, all removed when it is dropped. Used by
//! the tests of this crate, of resource-service and of client-cli, so they do not copy
//! each other's set-up.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod dpop;

use std::sync::{Arc, OnceLock};

use actix_web::dev::ServerHandle;
use secrecy::{ExposeSecret as _, SecretString};
use uuid::Uuid;

use shared_claims::protocol::TestClock;

use crate::configuration::LayeredSettings as _;
use crate::configuration::Settings;
use crate::startup::Application;

/// A fresh 2048-bit RSA private key as PKCS#8 PEM.
pub fn generate_key_pem() -> String {
    shared_claims::generate_rsa_pkcs8_pem(2048)
        .expect("RSA key generation")
        .expose_secret()
        .to_owned()
}

/// One key per test process: generating one per test would only cost time.
pub fn shared_key_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(generate_key_pem)
}

/// What one test owns outside the process, released on drop. The URLs are the real
/// servers' even when a test routes the service through a proxy.
#[derive(Debug)]
pub struct TestResources {
    keys_dir: tempfile::TempDir,
    database_url: String,
    db_name: String,
    redis_url: String,
    key_prefix: String,
}

impl TestResources {
    /// The key directory of this test.
    pub fn keys_dir(&self) -> &std::path::Path {
        self.keys_dir.path()
    }
}

/// The built-in settings with the process's `AUTH__…` variables on top (so they still
/// point tests at the right Postgres and Redis; config files in the working directory,
/// which may be another crate's, are ignored), isolated for one test on port 0.
pub fn isolated_settings() -> (Settings, TestResources) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::var("TEST_LOG").is_ok() {
        shared_claims::telemetry::init("debug");
    }
    let mut settings = Settings::load_with_env(std::env::vars().collect()).expect("settings load");
    let db_name = format!("auth_test_{}", Uuid::new_v4().simple());
    let base = settings.database.url.expose_secret().to_owned();
    let (server, _) = base
        .rsplit_once('/')
        .expect("database.url has a database name");
    settings.database.url = SecretString::from(format!("{server}/{db_name}"));
    settings.redis.key_prefix = format!("test:{}:", Uuid::new_v4().simple());
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    let keys_dir = tempfile::tempdir().expect("temporary key directory");
    let key_path = keys_dir.path().join("test-key.pem");
    std::fs::write(&key_path, shared_key_pem()).expect("key written");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
            .expect("key made private");
    }
    settings.keys.dir = keys_dir.path().to_owned();
    settings.keys.generate_if_missing = true;
    settings.bootstrap.admin_username = String::new();
    let resources = TestResources {
        keys_dir,
        database_url: settings.database.url.expose_secret().to_owned(),
        db_name,
        redis_url: settings.redis.url.expose_secret().to_owned(),
        key_prefix: settings.redis.key_prefix.clone(),
    };
    (settings, resources)
}

/// A running, isolated auth-service.
#[derive(Debug)]
pub struct TestAuthService {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The settings it runs with.
    pub settings: Settings,
    /// Its database, prefix and key directory.
    pub resources: TestResources,
    /// Its clock: tests move it forward instead of sleeping.
    pub clock: Arc<TestClock>,
    handle: ServerHandle,
}

impl TestAuthService {
    /// Starts one after `adjust` has changed its settings; `jwt.issuer` is set to the
    /// bound address unless `adjust` set another.
    pub async fn spawn(adjust: impl FnOnce(&mut Settings)) -> Self {
        let (mut settings, resources) = isolated_settings();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let address = format!("http://{}", listener.local_addr().expect("bound"));
        settings.jwt.issuer = address.clone();
        adjust(&mut settings);
        let clock = TestClock::new();
        let app = Application::build_with_clock(settings.clone(), listener, clock.clone())
            .await
            .expect("auth-service builds");
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        Self {
            address,
            settings,
            resources,
            clock,
            handle,
        }
    }

    /// Stops the server, as if its process had gone away.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

impl Drop for TestResources {
    /// Drops the test's database and Redis keys on a thread of its own: the test's
    /// runtime may be the one this drop blocks.
    fn drop(&mut self) {
        let admin_url = format!(
            "{}/postgres",
            self.database_url
                .rsplit_once('/')
                .map_or("", |(server, _)| server)
        );
        let db_name = self.db_name.clone();
        let redis_url = self.redis_url.clone();
        let prefix = self.key_prefix.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                use sqlx::Connection as _;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let drop = format!(r#"DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)"#);
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                        .execute(&mut conn)
                        .await;
                }
                if let Ok(client) = redis::Client::open(redis_url)
                    && let Ok(mut conn) = client.get_multiplexed_async_connection().await
                {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{prefix}*"))
                        .query_async(&mut conn)
                        .await
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        let _: Result<(), _> =
                            redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A raw HTTP/1.1 connection for tests of slow and abusive clients: it sends bytes as
/// slowly as a test likes and notices when the server closes the connection.
#[derive(Debug)]
pub struct RawConnection {
    stream: tokio::net::TcpStream,
    answer: Vec<u8>,
    closed: bool,
}

impl RawConnection {
    /// Connects to `address` (`http://host:port`).
    pub async fn open(address: &str) -> Self {
        let authority = address.trim_start_matches("http://");
        Self {
            stream: tokio::net::TcpStream::connect(authority)
                .await
                .expect("test server accepts connections"),
            answer: Vec::new(),
            closed: false,
        }
    }

    /// Sends `bytes` at once.
    pub async fn send(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt as _;
        self.stream.write_all(bytes).await.expect("send");
    }

    /// Sends `bytes` one at a time, `pause` apart, reading whatever the server says in
    /// between, until the server closes the connection (returns how long that took) or
    /// `give_up_after` has passed (`None`: the server let it dribble).
    pub async fn dribble(
        &mut self,
        bytes: &[u8],
        pause: std::time::Duration,
        give_up_after: std::time::Duration,
    ) -> Option<std::time::Duration> {
        use tokio::io::AsyncWriteExt as _;
        let started = std::time::Instant::now();
        for byte in bytes.iter().cycle() {
            if started.elapsed() >= give_up_after {
                return None;
            }
            if self.stream.write_all(&[*byte]).await.is_err() {
                self.closed = true;
                return Some(started.elapsed());
            }
            if self.read_for(pause).await {
                return Some(started.elapsed());
            }
        }
        None
    }

    /// Waits up to `within` for the server to close the connection, keeping what it
    /// says; returns how long it took, or `None` if the connection stayed open.
    pub async fn closed_within(
        &mut self,
        within: std::time::Duration,
    ) -> Option<std::time::Duration> {
        let started = std::time::Instant::now();
        self.read_for(within).await.then(|| started.elapsed())
    }

    /// Reads for up to `wait`; true once the server has closed the connection.
    async fn read_for(&mut self, wait: std::time::Duration) -> bool {
        use tokio::io::AsyncReadExt as _;
        let deadline = tokio::time::Instant::now() + wait;
        let mut buffer = [0u8; 4096];
        while !self.closed {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buffer)).await {
                Ok(Ok(0) | Err(_)) => self.closed = true,
                Ok(Ok(n)) => self.answer.extend_from_slice(&buffer[..n]),
                Err(_elapsed) => return false,
            }
        }
        true
    }

    /// Everything the server has sent so far.
    pub fn answer(&self) -> String {
        String::from_utf8_lossy(&self.answer).into_owned()
    }
}
