//! Both services in-process, and clients pointed at them.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use auth_service::configuration::Settings as AuthSettings;
use auth_service::testing::TestAuthService;
use client_cli::client::{Client, ClientConfig};
use resource_service::configuration::LayeredSettings as _;

pub const AUDIENCE: &str = "resource-service";
/// A password no strength check can call guessable: random, mixed, 28 characters.
pub static PASSWORD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "cli-{}-Quasar7",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
});

pub struct Stack {
    pub auth: TestAuthService,
    pub resource_url: String,
    pub dir: tempfile::TempDir,
}

impl Stack {
    /// Both services; the resource-service has no leeway so expiry shows at once.
    pub async fn start(adjust: impl FnOnce(&mut AuthSettings)) -> Self {
        let auth = TestAuthService::spawn(|s| {
            s.jwt.audience = AUDIENCE.into();
            adjust(s);
        })
        .await;
        let mut settings =
            resource_service::configuration::Settings::load_with_env(std::env::vars().collect())
                .unwrap();
        settings.server.host = "127.0.0.1".into();
        settings.server.port = 0;
        // The issuer is the auth-service's own address: DPoP proofs name it.
        settings.jwt.issuer = auth.settings.jwt.issuer.clone();
        settings.jwt.audience = AUDIENCE.into();
        settings.jwt.leeway_secs = 0;
        settings.keys.public_key_path = PathBuf::new();
        settings.jwks.url = format!("{}/.well-known/jwks.json", auth.address);
        // One clock for both services and the clients: tests move it instead of sleeping.
        let resource =
            resource_service::startup::Application::build_with_clock(settings, auth.clock.clone())
                .await
                .unwrap();
        let resource_url = format!("http://127.0.0.1:{}", resource.port());
        tokio::spawn(resource.run_until_stopped());
        let deadline = Instant::now() + Duration::from_secs(10);
        while reqwest::get(format!("{resource_url}/readyz"))
            .await
            .unwrap()
            .status()
            != 200
        {
            assert!(
                Instant::now() < deadline,
                "resource-service never became ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            auth,
            resource_url,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.dir.path().join("client").join("credentials.json")
    }

    /// A client as a separate process would have: its own HTTP client, the shared file.
    pub fn client(&self) -> Client {
        self.client_via(&self.auth.address)
    }

    /// Such a client that reaches the auth-service at `auth_url` (a proxy). Through a
    /// proxy the client names the proxy's URL, not the auth-service's public one, which
    /// DPoP proofs must name: such clients keep bearer sessions.
    pub fn client_via(&self, auth_url: &str) -> Client {
        Client::new(ClientConfig {
            auth_url: auth_url.to_owned(),
            resource_url: self.resource_url.clone(),
            credentials_path: self.credentials_path(),
            dpop: auth_url == self.auth.address,
        })
        .unwrap()
        .with_clock(self.auth.clock.clone())
    }

    /// Registers and logs in a fresh user through the library.
    pub async fn logged_in(&self) -> (Client, String) {
        self.logged_in_via(&self.auth.address).await
    }

    /// The same through a client that reaches the auth-service at `auth_url`.
    pub async fn logged_in_via(&self, auth_url: &str) -> (Client, String) {
        let client = self.client_via(auth_url);
        let username = format!("cli_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        client
            .register(&username, &PASSWORD.clone().into())
            .await
            .unwrap();
        client
            .login(&username, &PASSWORD.clone().into())
            .await
            .unwrap();
        (client, username)
    }
}
