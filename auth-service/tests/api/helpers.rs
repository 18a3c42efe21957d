//! `spawn_app`: one isolated auth-service per test, and a client that speaks its API.

use std::time::Duration;

use auth_service::configuration::Settings;
use auth_service::testing::TestAuthService;
use reqwest::{Response, StatusCode};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use uuid::Uuid;

/// A running auth-service with its own database, Redis prefix and key directory.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub settings: Settings,
    /// The service's clock: move it forward instead of sleeping.
    pub clock: std::sync::Arc<shared_claims::protocol::TestClock>,
    _service: TestAuthService,
}

/// Settings isolated for one test, for tests that need to know URLs before spawning.
pub fn test_settings() -> (Settings, auth_service::testing::TestResources) {
    auth_service::testing::isolated_settings()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app after letting the test adjust its settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let service = TestAuthService::spawn(adjust).await;
    TestApp {
        address: service.address.clone(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        settings: service.settings.clone(),
        clock: service.clock.clone(),
        _service: service,
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
