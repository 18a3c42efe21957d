//! The auth-service's settings, read in layers by [`shared_claims::settings::load`] with
//! the prefix `AUTH` (`AUTH__JWT__ACCESS_TTL_SECS=60`).

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
pub use shared_claims::settings::LayeredSettings;
use shared_claims::settings::comma_separated;
pub use shared_claims::settings::{MetricsSettings, ServerSettings};

/// The bootstrap admin password of `docker-compose.yml` and `scripts/run-local` when
/// `ADMIN_PASSWORD` is not set: fine on a laptop, a warning anywhere else.
pub const DEVELOPMENT_ADMIN_PASSWORD: &str = "admin-dev-password";

/// Everything the auth-service can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where to listen, and which peers may say who the client is.
    pub server: AuthServerSettings,
    /// Where `/metrics` is served.
    pub metrics: MetricsSettings,
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
    /// Sender-constrained tokens (RFC 9449).
    pub dpop: DpopSection,
    /// Bounds on Argon2 work: its memory and its queue.
    pub passwords: PasswordSettings,
}

/// DPoP (RFC 9449): sessions and access tokens bound to a key the client holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpopSection {
    /// Refuse logins (and refreshes of unbound sessions) that bring no proof.
    pub required: bool,
    /// How far a proof's `iat` may be from now, either way.
    pub proof_max_age_secs: u64,
    /// Accepted proof algorithms: `ES256`, `EdDSA` (comma-separated in the environment).
    #[serde(deserialize_with = "comma_separated")]
    pub algorithms: Vec<String>,
}

impl DpopSection {
    /// The rules for the shared verifier, which refuses unusable values at start.
    pub fn verifier_settings(&self) -> shared_claims::dpop::DpopSettings {
        shared_claims::dpop::DpopSettings {
            algorithms: self.algorithms.clone(),
            proof_max_age_secs: self.proof_max_age_secs,
        }
    }
}

shared_claims::server_settings! {
    /// Where the auth-service listens, and the proxies it believes about client addresses.
    pub struct AuthServerSettings {
        /// CIDRs of reverse proxies whose `Forwarded` / `X-Forwarded-For` headers name the
        /// client; from any other peer those headers are ignored (any client can send them).
        #[serde(deserialize_with = "comma_separated")]
        pub trusted_proxies: Vec<String>,
        /// The one header those proxies write the client's address into:
        /// `x-forwarded-for` or `forwarded` (RFC 7239).
        pub forwarded_header: crate::client_address::ForwardedHeader,
    }
}

impl AuthServerSettings {
    /// The parsed `trusted_proxies`; an entry that is not a CIDR or an address is an error.
    pub fn trusted_proxy_nets(&self) -> Result<Vec<IpNet>, String> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "server.trusted_proxies: {entry:?} is not a CIDR such as 10.0.0.0/8"
                        )
                    })
            })
            .collect()
    }
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

/// Token and session rules (`docs/ARCHITECTURE.md` § Tokens, § Sessions).
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

/// The key directory (`docs/ARCHITECTURE.md` § Keys).
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
///
/// Refusals are per client address, so that nobody can lock someone else out; across all
/// addresses a username is only slowed down, never refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Length of the counting window.
    pub window_secs: u64,
    /// Password attempts (login and register, all usernames) per client address per
    /// window.
    pub attempts_per_ip: u32,
    /// Failed logins for one username from one client address per window; a successful
    /// login clears the count.
    pub attempts_per_username: u32,
    /// Failed logins for one username from all addresses per window before each further
    /// attempt at it is delayed; set it above `attempts_per_username` so that one address
    /// alone cannot reach it.
    pub delay_after_failures_per_username: u32,
    /// The longest such delay.
    pub max_delay_ms: u64,
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

impl LayeredSettings for Settings {
    /// Shipped in the binary, so that it runs from any working directory.
    const DEFAULTS: &'static str = include_str!("../config/default.toml");
    const ENV_PREFIX: &'static str = "AUTH";

    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut positive = |name: &str, value: u64| {
            if value == 0 {
                problems.push(format!("{name} must be at least 1"));
            }
        };
        positive("jwt.access_ttl_secs", self.jwt.access_ttl_secs);
        positive("jwt.refresh_ttl_secs", self.jwt.refresh_ttl_secs);
        positive("jwt.session_max_ttl_secs", self.jwt.session_max_ttl_secs);
        positive(
            "jwt.max_sessions_per_user",
            u64::from(self.jwt.max_sessions_per_user),
        );
        positive("rate_limit.window_secs", self.rate_limit.window_secs);
        positive(
            "rate_limit.attempts_per_ip",
            u64::from(self.rate_limit.attempts_per_ip),
        );
        positive(
            "rate_limit.attempts_per_username",
            u64::from(self.rate_limit.attempts_per_username),
        );
        if let Err(problem) = shared_claims::dpop::DpopVerifier::new(&self.dpop.verifier_settings())
        {
            problems.push(problem.to_string());
        }
        if shared_claims::dpop::PublicUrl::parse(&self.jwt.issuer).is_err() {
            problems.push(
                "jwt.issuer must be the absolute http(s) URL clients use to reach this service"
                    .into(),
            );
        }
        if let Err(problem) = self.server.trusted_proxy_nets() {
            problems.push(problem);
        }
        problems.extend(self.server.limits().problems());
        if self.bootstrap.admin_username.is_empty()
            != self.bootstrap.admin_password.expose_secret().is_empty()
        {
            problems.push(
                "bootstrap.admin_username and bootstrap.admin_password must be set together".into(),
            );
        }
        problems
    }
}

impl JwtSettings {
    /// The access-token lifetime.
    pub fn access_ttl(&self) -> Duration {
        Duration::from_secs(self.access_ttl_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Settings {
        Settings::load_with_env(shared_claims::settings::variables(vars)).unwrap()
    }

    #[test]
    fn string_settings_keep_their_exact_text_from_the_environment() {
        let settings = load(&[
            ("AUTH__BOOTSTRAP__ADMIN_USERNAME", "007"),
            ("AUTH__BOOTSTRAP__ADMIN_PASSWORD", "0123456789"),
            ("AUTH__JWT__AUDIENCE", "00042"),
            ("AUTH__SERVER__PORT", "08080"),
            ("AUTH__SERVER__TRUSTED_PROXIES", "10.0.0.0/8,192.168.1.1"),
        ]);
        assert_eq!(settings.bootstrap.admin_username, "007");
        assert_eq!(
            settings.bootstrap.admin_password.expose_secret(),
            "0123456789"
        );
        assert_eq!(settings.jwt.audience, "00042");
        assert_eq!(settings.server.port, 8080);
        assert_eq!(settings.server.trusted_proxy_nets().unwrap().len(), 2);
    }

    #[test]
    fn the_defaults_are_valid_and_out_of_range_values_are_named() {
        assert_eq!(load(&[]).validate(), Ok(()));
        let problems = load(&[
            ("AUTH__JWT__ACCESS_TTL_SECS", "0"),
            ("AUTH__BOOTSTRAP__ADMIN_USERNAME", "admin"),
            ("AUTH__SERVER__SHUTDOWN_GRACE_SECS", "0"),
        ])
        .validate()
        .unwrap_err();
        assert!(
            problems.contains("server.shutdown_grace_secs"),
            "{problems}"
        );
        assert!(problems.contains("jwt.access_ttl_secs"), "{problems}");
        assert!(problems.contains("set together"), "{problems}");
    }
}
