//! The auth-service's settings, read in layers by [`shared_claims::settings::load`] with
//! the prefix `AUTH` (`AUTH__JWT__ACCESS_TTL_SECS=60`).

use std::path::PathBuf;
use std::time::Duration;

use config::ConfigError;
use secrecy::SecretString;
use serde::Deserialize;
pub use shared_claims::settings::ServerSettings;

/// The defaults shipped in the binary, so it runs from any working directory.
const DEFAULTS: &str = include_str!("../config/default.toml");

/// Everything the auth-service can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where to listen.
    pub server: ServerSettings,
    /// The user store.
    pub database: DatabaseSettings,
    /// The session store.
    pub redis: RedisSettings,
    /// Token lifetimes and session rules.
    pub jwt: JwtSettings,
    /// The signing keys.
    pub keys: KeySettings,
    /// The admin user ensured at start.
    pub bootstrap: BootstrapSettings,
    /// Limits on password guessing.
    pub rate_limit: RateLimitSettings,
    /// Bounds on Argon2 work: its memory and its queue.
    pub passwords: PasswordSettings,
}

/// The Postgres holding users.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Connection URL; secret because it may carry a password.
    pub url: SecretString,
}

/// The Redis holding refresh sessions and rate-limit counters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// Connection URL; secret because it may carry a password.
    pub url: SecretString,
    /// Prepended to every key.
    pub key_prefix: String,
}

/// Token and session rules (`DESIGN.md` § Tokens).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// `iss` of every token and base of the metadata URLs.
    pub issuer: String,
    /// `aud` of every token.
    pub audience: String,
    /// Access-token lifetime.
    pub access_ttl_secs: u64,
    /// Refresh-session inactivity limit.
    pub refresh_ttl_secs: u64,
    /// Refresh-session absolute limit.
    pub session_max_ttl_secs: u64,
    /// How long after a rotation the previous token still yields the same successor.
    pub refresh_reuse_grace_secs: u64,
    /// How many times it may do so.
    pub refresh_reuse_grace_count: u32,
    /// Live sessions per user before the least recently used is evicted.
    pub max_sessions_per_user: u32,
    /// Clock skew tolerated when this service verifies access tokens itself.
    pub leeway_secs: u64,
}

/// The key directory (`DESIGN.md` § Keys).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// Holds `*.pem` keys and `refresh-token.secret`.
    pub dir: PathBuf,
    /// Create a key and a secret when the directory has none.
    pub generate_if_missing: bool,
}

/// The bootstrap admin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSettings {
    /// Username of the admin to ensure; empty for none.
    pub admin_username: String,
    /// Its password.
    pub admin_password: SecretString,
}

/// Limits on password attempts, counted in Redis so they hold across replicas.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Length of the counting window.
    pub window_secs: u64,
    /// Attempts per client address per window.
    pub attempts_per_ip: u32,
    /// Attempts per username per window.
    pub attempts_per_username: u32,
}

/// How much Argon2 work may run and wait at once. Each running hash holds one 19 MiB
/// block allocated at start, so `max_concurrent_hashes` fixes the memory hashing needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSettings {
    /// Hashes running at once (one memory block each); unset means one per CPU core.
    /// Zero is refused at start.
    #[serde(default)]
    pub max_concurrent_hashes: Option<usize>,
    /// Logins and registrations that may wait for a hash; beyond it they get 503 at once.
    pub max_waiting: usize,
}

impl Settings {
    /// Reads all layers (see [`shared_claims::settings`]).
    pub fn load() -> Result<Self, ConfigError> {
        shared_claims::settings::load(DEFAULTS, "AUTH")
    }

    /// The built-in defaults with `env` on top, ignoring files and the process
    /// environment. An unknown key is an error (every section refuses unknown fields), so
    /// this tells whether a deployment's variables all mean something to the service.
    pub fn load_with_env(
        env: std::collections::HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        shared_claims::settings::load_with_env(DEFAULTS, "AUTH", env)
    }
}

impl JwtSettings {
    /// The access-token lifetime.
    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.access_ttl_secs)
    }
}
