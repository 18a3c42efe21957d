//! The client library: every command's HTTP exchange. The refresh strategy (when to
//! rotate, how a lost answer is retried) is in [`refresh`]; what answers mean, in
//! `answers`.
//!
//! Credentials are bound to the auth-service that issued them: a refresh token is never
//! sent anywhere else.

mod answers;
pub mod refresh;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value;
use shared_claims::protocol::{
    LoginRequest, RefreshTokenRequest, RegisterRequest, SharedClock, SystemClock, TokenResponse,
    TokenType, paths,
};

use self::answers::{api_error, expect_ok, is_invalid_token, parse, reason_of, to_api_response};
use crate::credentials::{CredentialStore, Credentials, StoreLock};
use crate::dpop::DpopKey;
use crate::error::CliError;

/// How long the best-effort revocation of a replaced session may take.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the services are and where credentials live.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL of the auth-service.
    pub auth_url: String,
    /// Base URL of the resource-service.
    pub resource_url: String,
    /// The credentials file.
    pub credentials_path: PathBuf,
    /// Bind new sessions to a DPoP key made at login (RFC 9449); `--no-dpop` turns it off.
    pub dpop: bool,
}

/// Which service a request goes to, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Logins, refreshes, sessions.
    Auth,
    /// The protected API.
    Resource,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Self::Auth => "auth-service",
            Self::Resource => "resource-service",
        }
    }
}

/// The answer to an authenticated call.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// The body, as JSON when it is JSON, else as a string.
    pub body: Value,
}

/// A client of both services with a credentials store.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    auth_url: String,
    resource_url: String,
    store: CredentialStore,
    dpop: bool,
    /// When tokens expire and proofs are made (the system's; tests move a test clock).
    clock: SharedClock,
}

/// `url` as a base URL, or a usage error: without `http://` or `https://` a host name
/// would be taken for a scheme (`localhost:8080`) and every call would fail obscurely.
fn base_url(service: Service, url: &str) -> Result<String, CliError> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(CliError::Usage(format!(
            "the {} URL ({}) must start with http:// or https://, e.g. {}; not {url:?}",
            service.name(),
            match service {
                Service::Auth => "--auth-url or AUTH_URL",
                Service::Resource => "--resource-url or RESOURCE_URL",
            },
            match service {
                Service::Auth => "http://localhost:8080",
                Service::Resource => "http://localhost:8081",
            }
        ))),
    }
}

impl Client {
    /// A client for `config`; [`CliError::Usage`] if a URL is not an `http(s)://` URL.
    pub fn new(config: ClientConfig) -> Result<Self, CliError> {
        let auth_url = base_url(Service::Auth, &config.auth_url)?;
        let resource_url = base_url(Service::Resource, &config.resource_url)?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("client-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Unexpected(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            auth_url,
            resource_url,
            store: CredentialStore::new(config.credentials_path),
            dpop: config.dpop,
            clock: SystemClock::shared(),
        })
    }

    /// The same client reading the time from `clock` (tests).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The credentials store.
    pub fn store(&self) -> &CredentialStore {
        &self.store
    }

    /// The auth-service base URL.
    pub fn auth_url(&self) -> &str {
        &self.auth_url
    }

    /// The resource-service base URL.
    pub fn resource_url(&self) -> &str {
        &self.resource_url
    }

    fn base(&self, service: Service) -> &str {
        match service {
            Service::Auth => &self.auth_url,
            Service::Resource => &self.resource_url,
        }
    }

    fn request(&self, service: Service, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base(service)))
    }

    fn unreachable(&self, service: Service, error: &reqwest::Error) -> CliError {
        CliError::Unreachable {
            service: service.name(),
            url: self.base(service).to_owned(),
            reason: reason_of(error),
        }
    }

    async fn send(&self, service: Service, request: RequestBuilder) -> Result<Response, CliError> {
        request
            .send()
            .await
            .map_err(|e| self.unreachable(service, &e))
    }

    /// Creates an account; returns the server's user record.
    pub async fn register(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Value, CliError> {
        let request = self
            .request(Service::Auth, Method::POST, paths::REGISTER)
            .json(&RegisterRequest {
                username: username.to_owned(),
                password: password.clone(),
            });
        let response = self.send(Service::Auth, request).await?;
        if response.status() == StatusCode::CREATED {
            return parse(response).await;
        }
        Err(match api_error(Service::Auth, response).await {
            CliError::Rejected { status: 409, .. } => CliError::UsernameTaken(username.to_owned()),
            other => other,
        })
    }

    /// Logs in and stores the credentials. The session they replace (stored for the same
    /// auth-service) is then revoked, best effort: it would otherwise live on, unused, for
    /// a day. A failed login changes nothing, so it never logs anyone out.
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Credentials, CliError> {
        let mut request = self
            .request(Service::Auth, Method::POST, paths::LOGIN)
            .json(&LoginRequest {
                username: username.to_owned(),
                password: password.clone(),
                client_id: None,
                scope: None,
            });
        let key = if self.dpop {
            let (key, stored) = DpopKey::generate()?;
            request = request.header(
                "DPoP",
                key.proof(
                    "POST",
                    &self.url(Service::Auth, paths::LOGIN),
                    None,
                    self.clock.now_secs(),
                )?,
            );
            Some(stored)
        } else {
            None
        };
        let response = self.send(Service::Auth, request).await?;
        if response.status() != StatusCode::OK {
            return Err(api_error(Service::Auth, response).await);
        }
        let tokens: TokenResponse = parse(response).await?;
        if key.is_some() && tokens.token_type != TokenType::Dpop {
            return Err(CliError::Unexpected(
                "the auth-service ignored the DPoP proof; use --no-dpop with it".into(),
            ));
        }
        let key = key.map(|k| k.expose_secret().to_owned());
        let credentials = self.credentials_from(username, tokens, key);
        let replaced = {
            let _lock = self.lock().await?;
            // Unreadable or unsafe credentials are simply replaced.
            let replaced = self
                .store
                .load()
                .ok()
                .flatten()
                .filter(|old| old.auth_url == self.auth_url);
            if let Err(e) = self.store.save(&credentials) {
                // Nobody can use the new session: end it rather than leave it behind.
                self.revoke_quietly(&credentials).await;
                return Err(e);
            }
            replaced
        };
        // Its refresh token left the file above, so no other process can rotate it now.
        if let Some(old) = replaced {
            self.revoke_quietly(&old).await;
        }
        Ok(credentials)
    }

    /// `POST /auth/logout` with the refresh token of `credentials` (and a proof of its key
    /// for a bound session), ignoring any failure.
    async fn revoke_quietly(&self, credentials: &Credentials) {
        if let Ok(request) = self.logout_request(credentials) {
            let _ = request.timeout(REVOKE_TIMEOUT).send().await;
        }
    }

    /// `POST /auth/logout` for `credentials`: a bound session is ended only with a proof
    /// of its key, so a copied refresh token cannot log its owner out.
    fn logout_request(&self, credentials: &Credentials) -> Result<RequestBuilder, CliError> {
        let mut request = self
            .request(Service::Auth, Method::POST, paths::LOGOUT)
            .json(&RefreshTokenRequest {
                refresh_token: credentials.refresh_token.clone(),
            });
        if let Some(key) = dpop_key(credentials)? {
            request = request.header(
                "DPoP",
                key.proof(
                    "POST",
                    &self.url(Service::Auth, paths::LOGOUT),
                    None,
                    self.clock.now_secs(),
                )?,
            );
        }
        Ok(request)
    }

    /// The stored credentials, or [`CliError::NotLoggedIn`]. Credentials issued by
    /// another auth-service than the configured one are refused: their refresh token
    /// must never be sent anywhere but to its issuer.
    pub fn stored(&self) -> Result<Credentials, CliError> {
        let credentials = self.store.load()?.ok_or(CliError::NotLoggedIn)?;
        if credentials.auth_url != self.auth_url {
            return Err(CliError::Credentials {
                path: self.store.path().display().to_string(),
                problem: format!(
                    "they were issued by {}, not by {}; pass --auth-url {} or log in again",
                    credentials.auth_url, self.auth_url, credentials.auth_url
                ),
            });
        }
        Ok(credentials)
    }

    /// `GET` a resource-service path, with the stored credentials if there are any.
    /// Logged out, the request goes without a token, so public routes work; a 401 then
    /// means the route needs a login and ends in [`CliError::NotLoggedIn`].
    pub async fn get(&self, path: &str) -> Result<ApiResponse, CliError> {
        if !path.starts_with('/') {
            return Err(CliError::Usage(format!(
                "the path must start with '/': {path:?}"
            )));
        }
        if self.store.load()?.is_some() {
            return self.authorized(Service::Resource, Method::GET, path).await;
        }
        let request = self.request(Service::Resource, Method::GET, path);
        let response = to_api_response(self.send(Service::Resource, request).await?).await?;
        if response.status == 401 {
            return Err(CliError::NotLoggedIn);
        }
        Ok(response)
    }

    /// `GET /api/me`: who the resource-service thinks we are.
    pub async fn me(&self) -> Result<Value, CliError> {
        let response = self
            .authorized(Service::Resource, Method::GET, paths::API_ME)
            .await?;
        expect_ok(Service::Resource, response)
    }

    /// `GET /auth/sessions`: where we are logged in.
    pub async fn sessions(&self) -> Result<Value, CliError> {
        let response = self
            .authorized(Service::Auth, Method::GET, paths::SESSIONS)
            .await?;
        expect_ok(Service::Auth, response)
    }

    /// Ends this session (or, with `all`, every session of the user) and deletes the
    /// credentials. With nothing stored there is nothing to do.
    pub async fn logout(&self, all: bool) -> Result<(), CliError> {
        if all {
            let response = self
                .authorized(Service::Auth, Method::POST, paths::LOGOUT_ALL)
                .await?;
            if response.status != 204 {
                return expect_ok(Service::Auth, response).map(|_| ());
            }
            let _lock = self.lock().await?;
            return self.store.delete();
        }
        // Under the lock throughout: a login in another process cannot slip in between
        // and have its fresh credentials deleted.
        let _lock = self.lock().await?;
        if self.store.load()?.is_none() {
            return Ok(());
        }
        let credentials = self.stored()?;
        let request = self.logout_request(&credentials)?;
        let response = self.send(Service::Auth, request).await?;
        if response.status() != StatusCode::NO_CONTENT {
            return Err(api_error(Service::Auth, response).await);
        }
        self.store.delete()
    }

    /// An authenticated call with the refresh strategy of [`refresh`].
    pub async fn authorized(
        &self,
        service: Service,
        method: Method,
        path: &str,
    ) -> Result<ApiResponse, CliError> {
        let credentials = self.fresh_credentials().await?;
        let response = self
            .call(service, method.clone(), path, &credentials)
            .await?;
        if !is_invalid_token(&response) {
            return to_api_response(response).await;
        }
        let credentials = self
            .refresh_after_rejection(&credentials.access_token)
            .await?;
        let response = self.call(service, method, path, &credentials).await?;
        to_api_response(response).await
    }

    /// One call with the access token of `credentials`: as `Bearer`, or for a bound
    /// session as `DPoP` with a fresh proof (RFC 9449 §7.1).
    async fn call(
        &self,
        service: Service,
        method: Method,
        path: &str,
        credentials: &Credentials,
    ) -> Result<Response, CliError> {
        let token = &credentials.access_token;
        let request = match dpop_key(credentials)? {
            Some(key) => {
                let proof = key.proof(
                    method.as_str(),
                    &self.url(service, path),
                    Some(token),
                    self.clock.now_secs(),
                )?;
                self.request(service, method, path)
                    .header("Authorization", format!("DPoP {token}"))
                    .header("DPoP", proof)
            }
            None => self.request(service, method, path).bearer_auth(token),
        };
        self.send(service, request).await
    }

    /// The absolute URL of `path` on `service`.
    fn url(&self, service: Service, path: &str) -> String {
        format!("{}{path}", self.base(service))
    }

    async fn lock(&self) -> Result<StoreLock, CliError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.lock())
            .await
            .map_err(|e| CliError::Unexpected(format!("lock task failed: {e}")))?
    }

    fn credentials_from(
        &self,
        username: &str,
        tokens: TokenResponse,
        dpop_key: Option<String>,
    ) -> Credentials {
        let now = self.clock.now_secs();
        Credentials {
            username: username.to_owned(),
            auth_url: self.auth_url.clone(),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            access_expires_at: now + tokens.expires_in,
            refresh_expires_at: now + tokens.refresh_expires_in,
            scope: tokens.scope,
            dpop_key,
        }
    }
}

/// The DPoP key of `credentials`, if their session is bound to one.
fn dpop_key(credentials: &Credentials) -> Result<Option<DpopKey>, CliError> {
    credentials
        .dpop_key
        .as_ref()
        .map(|stored| DpopKey::from_stored(&SecretString::from(stored.clone())))
        .transpose()
}
