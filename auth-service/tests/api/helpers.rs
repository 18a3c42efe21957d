//! `spawn_app`: one isolated auth-service per test, and a client that speaks its API.

use std::sync::OnceLock;
use std::time::Duration;

use auth_service::configuration::Settings;
use auth_service::startup::Application;
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};
use uuid::Uuid;

/// A running auth-service with its own database, Redis prefix and key directory.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    _resources: TestResources,
}

/// What one test owns outside the process, released when it ends. The URLs are the real
/// servers' even when the test routes the app through a proxy.
pub struct TestResources {
    _keys_dir: tempfile::TempDir,
    database_url: String,
    db_name: String,
    redis_url: String,
    key_prefix: String,
}

/// One RSA key per test binary: generating one per test would only cost time.
fn test_key_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        use rsa::pkcs8::EncodePrivateKey as _;
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
        key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string()
    })
}

/// Settings as the service would load them, isolated for one test.
pub fn test_settings() -> (Settings, TestResources) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::var("TEST_LOG").is_ok() {
        shared_claims::telemetry::init("debug");
    }
    let mut settings = Settings::load().expect("settings load");
    let db_name = format!("auth_test_{}", Uuid::new_v4().simple());
    let base = settings.database.url.expose_secret().to_owned();
    let (server, _) = base
        .rsplit_once('/')
        .expect("database.url has a database name");
    settings.database.url = SecretString::from(format!("{server}/{db_name}"));
    settings.redis.key_prefix = format!("test:{}:", Uuid::new_v4().simple());
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    let keys_dir = tempfile::tempdir().unwrap();
    std::fs::write(keys_dir.path().join("test-key.pem"), test_key_pem()).unwrap();
    settings.keys.dir = keys_dir.path().to_owned();
    settings.keys.generate_if_missing = true;
    settings.bootstrap.admin_username = String::new();
    let resources = TestResources {
        _keys_dir: keys_dir,
        database_url: settings.database.url.expose_secret().to_owned(),
        db_name,
        redis_url: settings.redis.url.expose_secret().to_owned(),
        key_prefix: settings.redis.key_prefix.clone(),
    };
    (settings, resources)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app after letting the test adjust its settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let (mut settings, resources) = test_settings();
    adjust(&mut settings);
    let app = Application::build(settings.clone())
        .await
        .expect("app builds");
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        settings,
        _resources: resources,
    }
}

/// A fresh valid username.
pub fn unique_username() -> String {
    format!("user_{}", &Uuid::new_v4().simple().to_string()[..12])
}

pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/auth/register",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/auth/login",
            &json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json("/auth/refresh", &json!({"refresh_token": refresh_token}))
            .await
    }

    pub async fn logout(&self, refresh_token: &str) -> Response {
        self.post_json("/auth/logout", &json!({"refresh_token": refresh_token}))
            .await
    }

    /// Registers a fresh user and logs in; returns the username and the token response.
    pub async fn registered_session(&self) -> (String, Value) {
        let username = unique_username();
        assert_eq!(
            self.register(&username, PASSWORD).await.status(),
            StatusCode::CREATED
        );
        let response = self.login(&username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::OK);
        (username, response.json().await.unwrap())
    }

    /// Every key under this test's Redis prefix with its contents, for inspection.
    pub async fn redis_dump(&self) -> Vec<(String, String)> {
        let client = redis::Client::open(self.settings.redis.url.expose_secret()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.settings.redis.key_prefix))
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut dump = Vec::new();
        for key in keys {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            let contents = match kind.as_str() {
                "hash" => {
                    let map: Vec<String> = redis::cmd("HGETALL")
                        .arg(&key)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    map.join(" ")
                }
                "zset" => {
                    let members: Vec<String> = redis::cmd("ZRANGE")
                        .arg(&key)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    members.join(" ")
                }
                _ => redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<String>>(&mut conn)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            };
            dump.push((key, contents));
        }
        dump
    }
}

impl Drop for TestResources {
    /// Drops the test's database and Redis keys on a thread of its own: the test's runtime
    /// may be the one this drop blocks.
    fn drop(&mut self) {
        let admin_url = format!("{}/postgres", self.database_url.rsplit_once('/').unwrap().0);
        let db_name = self.db_name.clone();
        let redis_url = self.redis_url.clone();
        let prefix = self.key_prefix.clone();
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
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

/// Decodes a JWT segment without verifying anything, for assertions on its contents.
pub fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine as _;
    let segment = token.split('.').nth(index).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Asserts a response is an error with our JSON body and `code`; returns the body.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}
