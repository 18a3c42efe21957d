//! Builds the application from settings: database, keys, Redis, bootstrap admin, and the
//! HTTP server on an already-bound listener (port 0 in tests).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::error::{JsonPayloadError, UrlencodedError};
use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};
use shared_claims::metrics::Metrics;
use shared_claims::{BearerAuth, KeySet, Verifier, VerifierSettings};
use sqlx::migrate::MigrateDatabase as _;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};

use crate::configuration::{BootstrapSettings, Settings};
use crate::error::ApiError;
use crate::flows::AuthFlows;
use crate::keys;
use crate::rate_limit::RateLimiter;
use crate::redis_conn::RedisConn;
use crate::routes::{self, PublishedKeys};
use crate::sessions::{RefreshTokens, SessionRules, SessionStore};
use crate::tokens::AccessTokenIssuer;
use crate::users::{Password, Passwords, UserStore, Username};
use shared_claims::telemetry;

/// Request bodies above this are refused with 413 (`DESIGN.md`).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A built, bound, not yet running auth-service.
pub struct Application {
    port: u16,
    server: Server,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish()
    }
}

impl Application {
    /// Connects, migrates, loads keys, ensures the admin and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // First, so a bad passwords.* setting stops the start before anything is touched.
        let passwords = Passwords::new(&settings.passwords).await?;
        let pool = connect_database(&settings.database.url).await?;
        let key_settings = settings.keys.clone();
        let keys = tokio::task::spawn_blocking(move || keys::load_or_generate(&key_settings))
            .await
            .context("key loading task failed")??;
        let published = PublishedKeys::new(&keys.jwks(), &settings.jwt.issuer)?;
        // This service checks its own access tokens (session endpoints) by the same rules
        // as every other verifier.
        let verifier = Verifier::new(
            &VerifierSettings {
                issuer: settings.jwt.issuer.clone(),
                audience: settings.jwt.audience.clone(),
                leeway_secs: settings.jwt.leeway_secs,
            },
            KeySet::from_public_keys(&keys.public_keys),
        );
        let bearer = BearerAuth::new(Arc::new(verifier), "auth-service");
        let metrics = Arc::new(Metrics::new("auth-service", &crate::flows::COUNTERS));

        let redis = Arc::new(
            RedisConn::new(settings.redis.url.expose_secret())
                .context("redis.url is not a valid Redis URL")?,
        );
        let jwt = &settings.jwt;
        let secs_to_ms = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        let flows = AuthFlows {
            users: UserStore::new(pool),
            passwords,
            sessions: SessionStore::new(
                Arc::clone(&redis),
                &settings.redis.key_prefix,
                SessionRules {
                    idle_ms: secs_to_ms(jwt.refresh_ttl_secs),
                    absolute_ms: secs_to_ms(jwt.session_max_ttl_secs),
                    grace_ms: secs_to_ms(jwt.refresh_reuse_grace_secs),
                    grace_count: jwt.refresh_reuse_grace_count,
                    max_per_user: jwt.max_sessions_per_user.max(1),
                },
            ),
            refresh_tokens: RefreshTokens::new(&keys.refresh_secret),
            issuer: AccessTokenIssuer::new(
                keys.signing,
                &jwt.issuer,
                &jwt.audience,
                jwt.access_ttl_secs,
            ),
            limiter: RateLimiter::new(
                redis,
                &settings.redis.key_prefix,
                settings.rate_limit.window_secs,
                settings.rate_limit.attempts_per_ip,
                settings.rate_limit.attempts_per_username,
            ),
            metrics: Arc::clone(&metrics),
        };
        ensure_bootstrap_admin(&flows, &settings.bootstrap).await?;

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| {
                format!(
                    "cannot listen on {}:{}",
                    settings.server.host, settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let server = run(listener, flows, published, bearer, metrics)?;
        tracing::info!(port, "auth-service listening");
        Ok(Self { port, server })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server (tests, embedding).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the process is told to stop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Creates the database if it is missing, connects lazily and applies migrations.
async fn connect_database(url: &SecretString) -> anyhow::Result<PgPool> {
    let url = url.expose_secret();
    if !Postgres::database_exists(url)
        .await
        .context("cannot reach Postgres at database.url")?
    {
        tracing::info!("creating the database");
        Postgres::create_database(url)
            .await
            .context("cannot create the database")?;
    }
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_millis(1500))
        .connect_lazy(url)
        .context("database.url is not a valid Postgres URL")?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .context("database migrations failed")?;
    Ok(pool)
}

/// Makes sure the configured admin exists, has role `admin` and the configured password.
async fn ensure_bootstrap_admin(
    flows: &AuthFlows,
    bootstrap: &BootstrapSettings,
) -> anyhow::Result<()> {
    if bootstrap.admin_username.is_empty() {
        return Ok(());
    }
    let username = Username::parse(&bootstrap.admin_username)
        .map_err(|e| anyhow::anyhow!("bootstrap.admin_username: {e}"))?;
    let raw_password = bootstrap.admin_password.clone();
    let password = Password::parse(raw_password.clone())
        .map_err(|e| anyhow::anyhow!("bootstrap.admin_password: {e}"))?;
    let existing = flows
        .users
        .find_by_username(username.as_str())
        .await
        .map_err(api_to_anyhow)?;
    match existing {
        None => {
            let hash = flows.passwords.hash(password).await?;
            flows
                .users
                .insert(&username, &hash, &["user", "admin"])
                .await
                .map_err(api_to_anyhow)?;
            tracing::info!(username = username.as_str(), "bootstrap admin created");
        }
        Some(user) => {
            let current = flows
                .passwords
                .verify(raw_password, Some(&user.password_hash))
                .await?;
            let promoted = !user.roles.iter().any(|r| r == "admin");
            let new_hash = if current {
                None
            } else {
                Some(flows.passwords.hash(password).await?)
            };
            flows
                .users
                .grant_role(user.id, "admin", new_hash.as_deref())
                .await
                .map_err(api_to_anyhow)?;
            if promoted || !current {
                // Sessions opened by whoever held this name or password before must not
                // be refreshed into admin tokens.
                let ended = flows.sessions.revoke_all(&user.id).await.context(
                    "cannot end the existing sessions of the bootstrap admin (is Redis up?)",
                )?;
                tracing::warn!(
                    username = username.as_str(),
                    promoted,
                    password_updated = !current,
                    sessions_ended = ended,
                    "bootstrap admin changed; its earlier sessions were ended"
                );
            } else {
                tracing::info!(username = username.as_str(), "bootstrap admin ensured");
            }
        }
    }
    Ok(())
}

fn api_to_anyhow(e: ApiError) -> anyhow::Error {
    match e {
        ApiError::Unexpected(e) => e,
        other => anyhow::anyhow!("{other}"),
    }
}

fn run(
    listener: TcpListener,
    flows: AuthFlows,
    published: PublishedKeys,
    bearer: BearerAuth,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Server> {
    let flows = web::Data::new(flows);
    let published = web::Data::new(published);
    let bearer = web::Data::new(bearer);
    let metrics = web::Data::from(metrics);
    let server = HttpServer::new(move || {
        App::new()
            .wrap(middleware::from_fn(telemetry::request_span))
            .app_data(json_config())
            .app_data(form_config())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .app_data(flows.clone())
            .app_data(published.clone())
            .app_data(bearer.clone())
            .app_data(metrics.clone())
            .configure(routes::configure)
            .default_service(web::to(routes::not_found))
    })
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    Ok(server)
}

/// JSON bodies: 16 KiB at most, and every parse failure a 400/413 with our body.
fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req| {
            let api = match &err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => ApiError::PayloadTooLarge,
                JsonPayloadError::ContentType => ApiError::InvalidRequest(
                    "the body must be JSON (Content-Type: application/json)".into(),
                ),
                JsonPayloadError::Deserialize(e) => {
                    ApiError::InvalidRequest(describe_json_error(e))
                }
                _ => ApiError::InvalidRequest("the request body could not be read".into()),
            };
            api.into()
        })
}

/// Form bodies (`/oauth/*`): the same limits.
fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req| {
            let api = match &err {
                UrlencodedError::Overflow { .. } => ApiError::PayloadTooLarge,
                UrlencodedError::ContentType => ApiError::InvalidRequest(
                    "the body must be application/x-www-form-urlencoded".into(),
                ),
                _ => {
                    ApiError::InvalidRequest("the form body is malformed or misses a field".into())
                }
            };
            api.into()
        })
}

/// Says what is wrong with a JSON body without echoing its values (they may be secrets).
fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let message = e.to_string();
            if message.starts_with("missing field") || message.starts_with("unknown field") {
                message
            } else {
                format!(
                    "a field of the JSON body has the wrong type (line {}, column {})",
                    e.line(),
                    e.column()
                )
            }
        }
        Category::Syntax | Category::Eof => "the body is not valid JSON".into(),
        Category::Io => "the request body could not be read".into(),
    }
}
