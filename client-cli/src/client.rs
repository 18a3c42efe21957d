//! The client library: every command's HTTP exchange, and the refresh strategy.
//!
//! * Before a call, the access token is refreshed if it has under
//!   [`REFRESH_MARGIN_SECS`] left.
//! * A 401 with `error="invalid_token"` triggers one refresh and one retry.
//! * Read-refresh-write happens under an exclusive lock on the credentials file, and the
//!   file is re-read once the lock is held: when two processes race, the second finds
//!   the tokens the first stored and uses them instead of replaying a retired refresh
//!   token (which the auth-service would treat as reuse).
//! * A refresh refused with `invalid_grant` deletes the credentials and ends with
//!   [`CliError::SessionExpired`].

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::credentials::{CredentialStore, Credentials, StoreLock};
use crate::error::CliError;
use crate::jwt;

/// Refresh when the access token has less than this left.
pub const REFRESH_MARGIN_SECS: i64 = 30;

/// Where the services are and where credentials live.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL of the auth-service.
    pub auth_url: String,
    /// Base URL of the resource-service.
    pub resource_url: String,
    /// The credentials file.
    pub credentials_path: PathBuf,
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

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: i64,
    refresh_token: String,
    refresh_expires_in: i64,
    scope: String,
}

/// A client of both services with a credentials store.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    auth_url: String,
    resource_url: String,
    store: CredentialStore,
}

impl Client {
    /// A client for `config`.
    pub fn new(config: ClientConfig) -> Result<Self, CliError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("client-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Unexpected(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            auth_url: config.auth_url.trim_end_matches('/').to_owned(),
            resource_url: config.resource_url.trim_end_matches('/').to_owned(),
            store: CredentialStore::new(config.credentials_path),
        })
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

    async fn send(&self, service: Service, request: RequestBuilder) -> Result<Response, CliError> {
        request.send().await.map_err(|e| CliError::Unreachable {
            service: service.name(),
            url: self.base(service).to_owned(),
            reason: reason_of(&e),
        })
    }

    /// Creates an account; returns the server's user record.
    pub async fn register(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Value, CliError> {
        let request = self
            .request(Service::Auth, Method::POST, "/auth/register")
            .json(&json!({"username": username, "password": password.expose_secret()}));
        let response = self.send(Service::Auth, request).await?;
        if response.status() == StatusCode::CREATED {
            return json_body(response).await;
        }
        Err(match api_error(Service::Auth, response).await {
            CliError::Rejected { status: 409, .. } => CliError::UsernameTaken(username.to_owned()),
            other => other,
        })
    }

    /// Logs in and stores the credentials.
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Credentials, CliError> {
        let request = self
            .request(Service::Auth, Method::POST, "/auth/login")
            .json(&json!({"username": username, "password": password.expose_secret()}));
        let response = self.send(Service::Auth, request).await?;
        if response.status() != StatusCode::OK {
            return Err(api_error(Service::Auth, response).await);
        }
        let tokens: TokenResponse = parse(response).await?;
        let credentials = self.credentials_from(username, tokens);
        let _lock = self.lock().await?;
        self.store.save(&credentials)?;
        Ok(credentials)
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

    /// Refreshes now, whatever the access token's remaining life.
    pub async fn refresh(&self) -> Result<Credentials, CliError> {
        let _lock = self.lock().await?;
        let credentials = self.stored()?;
        self.refresh_locked(credentials).await
    }

    /// `GET` a resource-service path with the stored credentials.
    pub async fn get(&self, path: &str) -> Result<ApiResponse, CliError> {
        if !path.starts_with('/') {
            return Err(CliError::Input(format!(
                "the path must start with '/': {path:?}"
            )));
        }
        self.authorized(Service::Resource, Method::GET, path).await
    }

    /// `GET /api/me`: who the resource-service thinks we are.
    pub async fn me(&self) -> Result<Value, CliError> {
        let response = self.get("/api/me").await?;
        expect_ok(Service::Resource, response)
    }

    /// `GET /auth/sessions`: where we are logged in.
    pub async fn sessions(&self) -> Result<Value, CliError> {
        let response = self
            .authorized(Service::Auth, Method::GET, "/auth/sessions")
            .await?;
        expect_ok(Service::Auth, response)
    }

    /// Ends this session (or, with `all`, every session of the user) and deletes the
    /// credentials. With nothing stored there is nothing to do.
    pub async fn logout(&self, all: bool) -> Result<(), CliError> {
        if all {
            let response = self
                .authorized(Service::Auth, Method::POST, "/auth/logout-all")
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
        let request = self
            .request(Service::Auth, Method::POST, "/auth/logout")
            .json(&json!({"refresh_token": credentials.refresh_token}));
        let response = self.send(Service::Auth, request).await?;
        if response.status() != StatusCode::NO_CONTENT {
            return Err(api_error(Service::Auth, response).await);
        }
        self.store.delete()
    }

    /// An authenticated call with the refresh strategy of this module.
    pub async fn authorized(
        &self,
        service: Service,
        method: Method,
        path: &str,
    ) -> Result<ApiResponse, CliError> {
        let credentials = self.fresh_credentials().await?;
        let response = self
            .call(service, method.clone(), path, &credentials.access_token)
            .await?;
        if !is_invalid_token(&response) {
            return to_api_response(response).await;
        }
        let credentials = self
            .refresh_after_rejection(&credentials.access_token)
            .await?;
        let response = self
            .call(service, method, path, &credentials.access_token)
            .await?;
        to_api_response(response).await
    }

    async fn call(
        &self,
        service: Service,
        method: Method,
        path: &str,
        access_token: &str,
    ) -> Result<Response, CliError> {
        let request = self
            .request(service, method, path)
            .bearer_auth(access_token);
        self.send(service, request).await
    }

    /// Stored credentials whose access token has at least the margin left.
    async fn fresh_credentials(&self) -> Result<Credentials, CliError> {
        let credentials = self.stored()?;
        if credentials.access_expires_at - jwt::now() >= REFRESH_MARGIN_SECS {
            return Ok(credentials);
        }
        let _lock = self.lock().await?;
        // Another process may have refreshed while we waited for the lock.
        let credentials = self.stored()?;
        if credentials.access_expires_at - jwt::now() >= REFRESH_MARGIN_SECS {
            return Ok(credentials);
        }
        self.refresh_locked(credentials).await
    }

    /// After a server refused `used_access_token`: refresh, unless another process
    /// already replaced it.
    async fn refresh_after_rejection(
        &self,
        used_access_token: &str,
    ) -> Result<Credentials, CliError> {
        let _lock = self.lock().await?;
        let credentials = self.stored()?;
        if credentials.access_token != used_access_token {
            return Ok(credentials);
        }
        self.refresh_locked(credentials).await
    }

    /// Rotates the refresh token; the caller holds the lock.
    async fn refresh_locked(&self, credentials: Credentials) -> Result<Credentials, CliError> {
        let request = self
            .request(Service::Auth, Method::POST, "/auth/refresh")
            .json(&json!({"refresh_token": credentials.refresh_token}));
        let response = self.send(Service::Auth, request).await?;
        if response.status() == StatusCode::OK {
            let tokens: TokenResponse = parse(response).await?;
            let refreshed = self.credentials_from(&credentials.username, tokens);
            self.store.save(&refreshed)?;
            return Ok(refreshed);
        }
        match api_error(Service::Auth, response).await {
            CliError::Rejected { code, .. } if code == "invalid_grant" => {
                self.store.delete()?;
                Err(CliError::SessionExpired)
            }
            other => Err(other),
        }
    }

    async fn lock(&self) -> Result<StoreLock, CliError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.lock())
            .await
            .map_err(|e| CliError::Unexpected(format!("lock task failed: {e}")))?
    }

    fn credentials_from(&self, username: &str, tokens: TokenResponse) -> Credentials {
        let now = jwt::now();
        Credentials {
            username: username.to_owned(),
            auth_url: self.auth_url.clone(),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            access_expires_at: now + tokens.expires_in,
            refresh_expires_at: now + tokens.refresh_expires_in,
            scope: tokens.scope,
        }
    }
}

/// What a network error means to a person.
fn reason_of(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "no answer (timed out)".into();
    }
    if error.is_connect() {
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            if let Some(io) = inner.downcast_ref::<std::io::Error>() {
                return match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => {
                        "connection refused (is it running?)".into()
                    }
                    _ => io.to_string(),
                };
            }
            source = inner.source();
        }
        return "cannot connect".into();
    }
    if error.is_builder() {
        return "the URL is not valid".into();
    }
    "the connection failed".into()
}

fn is_invalid_token(response: &Response) -> bool {
    response.status() == StatusCode::UNAUTHORIZED
        && response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.contains(r#"error="invalid_token""#))
            })
}

async fn to_api_response(response: Response) -> Result<ApiResponse, CliError> {
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| CliError::Unexpected(format!("cannot read the response: {e}")))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(ApiResponse { status, body })
}

async fn json_body(response: Response) -> Result<Value, CliError> {
    parse(response).await
}

async fn parse<T: serde::de::DeserializeOwned>(response: Response) -> Result<T, CliError> {
    response
        .json()
        .await
        .map_err(|e| CliError::Unexpected(format!("unexpected response: {e}")))
}

/// Turns a non-success answer into the error a person understands.
async fn api_error(service: Service, response: Response) -> CliError {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    from_error_body(service, status, &body, retry_after)
}

fn from_error_body(
    service: Service,
    status: u16,
    body: &Value,
    retry_after: Option<u64>,
) -> CliError {
    let code = body["error"].as_str().unwrap_or("unknown_error").to_owned();
    let description = body["error_description"].as_str().map_or_else(
        || format!("{} answered {status}", service.name()),
        str::to_owned,
    );
    match (status, code.as_str()) {
        (401, "invalid_credentials") => CliError::InvalidCredentials,
        (429, _) => CliError::RateLimited(retry_after.unwrap_or(60)),
        (503, _) => CliError::Unavailable {
            service: service.name(),
            description,
        },
        _ => CliError::Rejected {
            status,
            code,
            description,
        },
    }
}

fn expect_ok(service: Service, response: ApiResponse) -> Result<Value, CliError> {
    if (200..300).contains(&response.status) {
        Ok(response.body)
    } else {
        Err(from_error_body(
            service,
            response.status,
            &response.body,
            None,
        ))
    }
}
