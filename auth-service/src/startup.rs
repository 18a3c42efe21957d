//! Builds the application from settings: database, keys, Redis, bootstrap admin, and the
//! HTTP server on an already-bound listener (port 0 in tests); stops it gracefully and
//! closes the stores.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::error::{JsonPayloadError, UrlencodedError};
use actix_web::web;
use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};
use shared_claims::dpop::{DpopVerifier, PublicUrl, ReplayCache};
use shared_claims::metrics::Metrics;
use shared_claims::protocol::{SharedClock, SystemClock};
use shared_claims::server::connections::is_body_timeout;
use shared_claims::server::{self, Served};
use shared_claims::{BearerAuth, KeySet, Verifier, VerifierSettings};
use sqlx::migrate::MigrateDatabase as _;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres};

use crate::client_address::ClientAddresses;
use crate::configuration::{
    BootstrapSettings, DEVELOPMENT_ADMIN_PASSWORD, LayeredSettings as _, Settings,
};
use crate::dpop::DpopProofs;
use crate::error::ApiError;
use crate::flows::AuthFlows;
use crate::held_connections;
use crate::keys;
use crate::metrics::AuthMetrics;
use crate::rate_limit::RateLimiter;
use crate::redis_conn::{MINIMUM_REDIS, RedisConn};
use crate::routes::{self, PublishedKeys};
use crate::sessions::{RefreshTokens, SessionRules, SessionStore};
use crate::tokens::AccessTokenIssuer;
use crate::users::{Password, Passwords, UserStore, Username};

/// Request bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Proofs remembered by this service's own extractor (session endpoints called with a
/// DPoP-bound access token); the token endpoints use Redis instead.
const DPOP_REPLAY_ENTRIES: u64 = 100_000;

/// A built, bound, not yet running auth-service.
pub struct Application {
    served: Served,
    /// What the start found out about the refresh secret.
    secret_status: SecretStatus,
    /// The stores' connections, closed once the servers have stopped.
    users: UserStore,
    redis: Arc<RedisConn>,
    /// The task that keeps the user cache confirmed, ended with the application.
    _user_changes: EndOnDrop,
}

/// Ends a background task when its owner is dropped.
#[derive(Debug)]
struct EndOnDrop(tokio::task::AbortHandle);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whether the refresh-token secret is the one the stored sessions were issued with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretStatus {
    /// The same as at the last start.
    Unchanged,
    /// A first start: no sessions were issued with another secret.
    New,
    /// Another secret than the stored sessions': every refresh token issued before is now
    /// invalid (logged as an error).
    ChangedUnderLiveSessions,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("served", &self.served)
            .field("secret_status", &self.secret_status)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Checks the settings, connects, migrates, loads keys, ensures the admin, checks
    /// Redis and binds the listeners.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = server::bind(&settings.server.host, settings.server.port)?;
        Self::build_on(settings, listener).await
    }

    /// The same on a listener bound already: tests bind port 0 first, to name the service
    /// by its real address in `jwt.issuer` (which DPoP proofs must name too).
    pub async fn build_on(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, listener, SystemClock::shared()).await
    }

    /// The same with time read from `clock` (tests move a [`TestClock`] forward instead of
    /// sleeping).
    ///
    /// [`TestClock`]: shared_claims::protocol::TestClock
    pub async fn build_with_clock(
        settings: Settings,
        listener: TcpListener,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        settings
            .validate()
            .map_err(|problems| anyhow::anyhow!("invalid configuration: {problems}"))?;
        let trusted_proxies = settings
            .server
            .trusted_proxy_nets()
            .map_err(|problem| anyhow::anyhow!(problem))?;
        // First, so a bad passwords.* setting stops the start before anything is touched.
        let passwords = Passwords::new(&settings.passwords).await?;
        let rate_limits = &settings.rate_limit;
        if rate_limits.delay_after_failures_per_username <= rate_limits.attempts_per_username {
            tracing::warn!(
                "rate_limit.delay_after_failures_per_username is not above \
                 rate_limit.attempts_per_username: one address alone can slow a username \
                 down for everyone"
            );
        }
        let limits = settings.server.limits();
        let pool = connect_database(&settings.database.url).await?;
        let key_settings = settings.keys.clone();
        let keys = tokio::task::spawn_blocking(move || keys::load_or_generate(&key_settings))
            .await
            .context("key loading task failed")??;
        let dpop_verifier = Arc::new(
            DpopVerifier::new(&settings.dpop.verifier_settings())
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        let public_url = PublicUrl::parse(&settings.jwt.issuer)
            .map_err(|e| anyhow::anyhow!("jwt.issuer: {e}"))?;
        let published = PublishedKeys::new(
            &keys.jwks(),
            &settings.jwt.issuer,
            dpop_verifier.algorithms(),
        )?;
        // This service checks its own access tokens (session endpoints) by the same rules
        // as every other verifier.
        let verifier = Verifier::new(
            &VerifierSettings {
                issuer: settings.jwt.issuer.clone(),
                audience: settings.jwt.audience.clone(),
                leeway_secs: settings.jwt.leeway_secs,
            },
            KeySet::from_public_keys(&keys.public_keys),
        )
        .with_clock(Arc::clone(&clock));
        let (metrics, auth_metrics) = Metrics::new("auth-service", AuthMetrics::register);
        let metrics = Arc::new(metrics);
        let bearer = BearerAuth::new(Arc::new(verifier), "auth-service")
            .with_dpop(
                Arc::clone(&dpop_verifier),
                ReplayCache::new(DPOP_REPLAY_ENTRIES),
                Some(public_url.clone()),
            )
            .with_metrics(auth_metrics.verification.clone());

        let redis = Arc::new(
            RedisConn::new(settings.redis.url.expose_secret())
                .context("redis.url is not a valid Redis URL")?,
        );
        let jwt = &settings.jwt;
        let secs_to_ms = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        let refresh_tokens = RefreshTokens::new(&keys.refresh_secret);
        let secret_fingerprint = refresh_tokens.fingerprint();
        let users = UserStore::new(pool);
        let user_changes = EndOnDrop(tokio::spawn(users.follow_changes()).abort_handle());
        let flows = AuthFlows {
            users: users.clone(),
            passwords,
            sessions: Arc::new(SessionStore::new(
                Arc::clone(&redis),
                &settings.redis.key_prefix,
                SessionRules {
                    idle_ms: secs_to_ms(jwt.refresh_ttl_secs),
                    absolute_ms: secs_to_ms(jwt.session_max_ttl_secs),
                    grace_ms: secs_to_ms(jwt.refresh_reuse_grace_secs),
                    grace_count: jwt.refresh_reuse_grace_count,
                    max_per_user: jwt.max_sessions_per_user,
                },
                Arc::clone(&clock),
            )),
            refresh_tokens,
            issuer: AccessTokenIssuer::new(
                keys.signing,
                &jwt.issuer,
                &jwt.audience,
                jwt.access_ttl_secs,
            ),
            limiter: RateLimiter::new(
                Arc::clone(&redis),
                &settings.redis.key_prefix,
                settings.rate_limit.clone(),
                auth_metrics.clone(),
            ),
            dpop: DpopProofs::new(
                dpop_verifier,
                public_url,
                Arc::clone(&redis),
                &settings.redis.key_prefix,
                settings.dpop.required,
            ),
            metrics: auth_metrics,
            clock,
        };
        // Postgres alone decides who is admin (the session epoch ends older sessions), so
        // this comes before, and does not depend on, Redis.
        ensure_bootstrap_admin(&flows, &settings.bootstrap).await?;
        check_redis_version(&redis).await?;
        let secret_status = check_refresh_secret(
            &redis,
            &settings.redis.key_prefix,
            &secret_fingerprint,
            keys.refresh_secret_generated,
        )
        .await?;

        let endpoints = Endpoints {
            flows: web::Data::new(flows),
            published: web::Data::new(published),
            bearer: web::Data::new(bearer),
            addresses: web::Data::new(ClientAddresses::new(
                trusted_proxies,
                settings.server.forwarded_header,
            )),
        };
        let served = Served::start(
            "auth-service",
            listener,
            &limits,
            metrics,
            &settings.metrics.bind,
            move |cfg, with_metrics| endpoints.configure(cfg, with_metrics),
        )?;
        Ok(Self {
            served,
            secret_status,
            users,
            redis,
            _user_changes: user_changes,
        })
    }

    /// What the start found out about the refresh secret.
    pub fn secret_status(&self) -> SecretStatus {
        self.secret_status
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.served.port()
    }

    /// The port of the separate `/metrics` listener, when `metrics.bind` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.served.metrics_port()
    }

    /// A handle to stop the server (tests, embedding).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.served.handle()
    }

    /// Makes SIGTERM and SIGINT stop the service gracefully (see
    /// [`shared_claims::server::shutdown`]). For the binary; tests stop through
    /// [`Self::handle`].
    pub fn stop_on_signals(&self) -> std::io::Result<()> {
        self.served.stop_on_signals()
    }

    /// Serves until stopped, then closes the connections to Postgres and Redis, so both
    /// see a clean goodbye rather than a dropped socket (all but the one that listens for
    /// user changes, which ends with the application).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.served.run_until_stopped().await;
        self.redis.close();
        if tokio::time::timeout(Duration::from_secs(2), self.users.close())
            .await
            .is_err()
        {
            tracing::warn!("postgres connections did not close within 2 s");
        }
        served
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
    // A connection that sat idle for a while is pinged before it is handed out, so one
    // that Postgres closed meanwhile (a restart, a fail-over, an idle timeout) is replaced
    // by a fresh one instead of failing a request. One in steady use is not: a ping is a
    // round trip, and under load it would double the database's round trips per refresh.
    // What a hot connection cannot notice (a restart within its last use) the reads
    // recover from by retrying once (`crate::users`).
    let pool = PgPoolOptions::new()
        .max_connections(crate::users::POOLED_CONNECTIONS)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= held_connections::PING_IF_IDLE_FOR {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
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
    if raw_password.expose_secret() == DEVELOPMENT_ADMIN_PASSWORD {
        tracing::warn!(
            username = username.as_str(),
            "the bootstrap admin has the development default password; set \
             bootstrap.admin_password (ADMIN_PASSWORD in docker-compose.yml) for anything \
             reachable by others"
        );
        ensure_admin_row(flows, username, raw_password, password).await
    } else {
        let password = password
            .checked_for_strength(&username)
            .await
            .context("password strength task failed")?
            .map_err(|e| anyhow::anyhow!("bootstrap.admin_password: {e}"))?;
        ensure_admin_row(flows, username, raw_password, password).await
    }
}

/// Creates the admin, or gives the existing user the role and the configured password.
async fn ensure_admin_row(
    flows: &AuthFlows,
    username: Username,
    raw_password: SecretString,
    password: Password,
) -> anyhow::Result<()> {
    let existing = flows
        .users
        .find_by_username(username.as_str())
        .await
        .context("the bootstrap admin could not be ensured")?;
    match existing {
        None => {
            let hash = flows.passwords.hash(password).await?;
            flows
                .users
                .insert(&username, &hash, &["user", "admin"])
                .await
                .context("the bootstrap admin could not be ensured")?;
            tracing::info!(
                target: "audit",
                event = "role_changed",
                username = username.as_str(),
                role = "admin",
                "bootstrap admin created"
            );
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
                .context("the bootstrap admin could not be ensured")?;
            if promoted || !current {
                // The change moved the user's `sessions_valid_after` in the same statement,
                // so sessions opened by whoever held this name or password before can no
                // longer refresh. Deleting them now only tidies the session list.
                let ended = flows.sessions.revoke_all(&user.id).await;
                if let Err(e) = &ended {
                    tracing::warn!(error = %e, "earlier sessions of the bootstrap admin not deleted yet; they can no longer refresh");
                }
                tracing::warn!(
                    target: "audit",
                    event = "role_changed",
                    user_id = %user.id,
                    username = username.as_str(),
                    promoted,
                    password_updated = !current,
                    sessions_ended = ended.unwrap_or(0),
                    "bootstrap admin changed; its earlier sessions were ended"
                );
            } else {
                tracing::info!(username = username.as_str(), "bootstrap admin ensured");
            }
        }
    }
    Ok(())
}

/// Refuses a Redis older than the commands need.
async fn check_redis_version(redis: &RedisConn) -> anyhow::Result<()> {
    let version = redis
        .server_version()
        .await
        .context("cannot reach Redis at redis.url")?;
    if version < MINIMUM_REDIS {
        anyhow::bail!(
            "Redis {version} is too old: the auth-service needs Redis {MINIMUM_REDIS} or newer"
        );
    }
    Ok(())
}

/// Notices a refresh secret that is not the one the stored sessions were issued with (a
/// lost key volume must not fail silently), by a fingerprint of it kept in Redis.
async fn check_refresh_secret(
    redis: &RedisConn,
    prefix: &str,
    secret_fingerprint: &str,
    secret_generated: bool,
) -> anyhow::Result<SecretStatus> {
    let key = format!("{prefix}refresh-secret");
    let fingerprint = secret_fingerprint.to_owned();
    // Not retried: after a lost reply, a second SET … GET would read back our own value
    // and hide a changed secret.
    let previous: Option<String> = redis
        .run_once(|mut conn| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(&fingerprint)
                .arg("GET")
                .query_async(&mut conn)
                .await
        })
        .await
        .context("cannot record the refresh secret's fingerprint in Redis")?;
    let status = match previous {
        Some(previous) if previous == secret_fingerprint => SecretStatus::Unchanged,
        Some(_) => SecretStatus::ChangedUnderLiveSessions,
        None if secret_generated && any_session(redis, prefix).await? => {
            SecretStatus::ChangedUnderLiveSessions
        }
        None => SecretStatus::New,
    };
    if status == SecretStatus::ChangedUnderLiveSessions {
        tracing::error!(
            "the refresh-token secret is not the one the stored sessions were issued with \
             (a new secret was generated, or keys.dir changed): every existing refresh \
             token is now invalid and its users must log in again. If the key directory \
             was lost, restore it from backup."
        );
    }
    Ok(status)
}

/// Whether Redis holds any session under `prefix` (a bounded scan of the keyspace).
async fn any_session(redis: &RedisConn, prefix: &str) -> anyhow::Result<bool> {
    let pattern = format!("{prefix}session:*");
    let (_, keys): (String, Vec<String>) = redis
        .run(|mut conn| async move {
            redis::cmd("SCAN")
                .arg(0)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut conn)
                .await
        })
        .await
        .context("cannot look for existing sessions in Redis")?;
    Ok(!keys.is_empty())
}

/// What the API server serves, shared by its worker threads.
#[derive(Clone)]
struct Endpoints {
    flows: web::Data<AuthFlows>,
    published: web::Data<PublishedKeys>,
    bearer: web::Data<BearerAuth>,
    addresses: web::Data<ClientAddresses>,
}

impl Endpoints {
    /// Mounts the routes and their app data; `/metrics` too when `with_metrics`.
    fn configure(&self, cfg: &mut web::ServiceConfig, with_metrics: bool) {
        cfg.app_data(json_config())
            .app_data(form_config())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .app_data(self.flows.clone())
            .app_data(self.published.clone())
            .app_data(self.bearer.clone())
            .app_data(self.addresses.clone());
        routes::configure(cfg, with_metrics);
        cfg.default_service(web::to(routes::not_found));
    }
}

/// JSON bodies: 16 KiB at most, and every parse failure a 400/413 with our body.
fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .error_handler(|err, _req| {
            let api = match &err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => ApiError::PayloadTooLarge,
                JsonPayloadError::Payload(e) if is_body_timeout(e) => ApiError::RequestTimeout,
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
                UrlencodedError::Payload(e) if is_body_timeout(e) => ApiError::RequestTimeout,
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
