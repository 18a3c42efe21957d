//! The resource-service's settings, read in layers by [`shared_claims::settings::load`]
//! with the prefix `RESOURCE` (`RESOURCE__JWKS__URL=…`).

use std::path::PathBuf;

use serde::Deserialize;
use shared_claims::VerifierSettings;
use shared_claims::dpop::{DpopConfigError, DpopSettings, PublicUrl};
pub use shared_claims::settings::LayeredSettings;
pub use shared_claims::settings::MetricsSettings;

/// Everything the resource-service can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where to listen.
    pub server: ServerSettings,
    /// Where `/metrics` is served.
    pub metrics: MetricsSettings,
    /// What tokens must say.
    pub jwt: JwtSettings,
    /// Where keys come from when no PEM is configured.
    pub jwks: JwksSettings,
    /// A fixed PEM key instead of the JWKS.
    pub keys: KeySettings,
    /// How DPoP proofs are checked.
    pub dpop: DpopSection,
    /// The verified-token cache.
    pub cache: CacheSettings,
}

/// Tokens remembered after a full verification, so that a client sending the same token
/// again and again costs a hash and a lookup instead of an RSA check (from the token's
/// third request on: the second verification is the one that stores it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// At most this many tokens are remembered; 0 verifies every request in full.
    pub max_entries: u64,
}

shared_claims::server_settings! {
    /// Where the service listens and how clients address it.
    pub struct ServerSettings {
        /// The URL clients use to reach this service, e.g. `https://api.example.com` behind
        /// a TLS proxy; DPoP proofs must name it followed by the request path. Empty: proofs
        /// must name `http://` + the request's `Host` header + path.
        #[serde(default)]
        pub public_url: String,
    }
}

/// DPoP-bound tokens (RFC 9449).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpopSection {
    /// Accepted proof algorithms: `ES256`, `EdDSA` (comma-separated in the environment).
    #[serde(deserialize_with = "shared_claims::settings::comma_separated")]
    pub algorithms: Vec<String>,
    /// How far a proof's `iat` may be from now, either way.
    pub proof_max_age_secs: u64,
    /// How many used proofs are remembered to refuse replays; more within the window
    /// forgets the oldest.
    pub replay_cache_entries: u64,
}

/// The claims every token must carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf`, `iat`.
    pub leeway_secs: u64,
}

/// The auth-service's JWKS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksSettings {
    /// Its URL.
    pub url: String,
    /// Refetches triggered by unknown `kid`s happen at most this often.
    pub min_refetch_interval_secs: u64,
    /// Background refetch period.
    pub refresh_interval_secs: u64,
}

/// A fixed verification key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// PEM `PUBLIC KEY` file; empty to use the JWKS.
    pub public_key_path: PathBuf,
}

impl LayeredSettings for Settings {
    const DEFAULTS: &'static str = include_str!("../config/default.toml");
    const ENV_PREFIX: &'static str = "RESOURCE";

    fn problems(&self) -> Vec<String> {
        // The DPoP rules and `server.public_url` are checked where they are parsed, at
        // start.
        let mut problems = self.server.limits().problems();
        if self.dpop.replay_cache_entries == 0 {
            problems.push("dpop.replay_cache_entries must be at least 1".into());
        }
        if self.jwks.min_refetch_interval_secs == 0 {
            problems.push("jwks.min_refetch_interval_secs must be at least 1".into());
        }
        if self.jwks.refresh_interval_secs == 0 {
            problems.push("jwks.refresh_interval_secs must be at least 1".into());
        }
        problems
    }
}

impl Settings {
    /// The DPoP rules these settings ask for, checked by `DpopVerifier::new`.
    pub fn dpop_settings(&self) -> DpopSettings {
        DpopSettings {
            algorithms: self.dpop.algorithms.clone(),
            proof_max_age_secs: self.dpop.proof_max_age_secs,
        }
    }

    /// `server.public_url`, if set.
    pub fn public_url(&self) -> Result<Option<PublicUrl>, DpopConfigError> {
        match self.server.public_url.trim() {
            "" => Ok(None),
            url => PublicUrl::parse(url).map(Some),
        }
    }

    /// The verification rules these settings ask for.
    pub fn verifier_settings(&self) -> VerifierSettings {
        VerifierSettings {
            issuer: self.jwt.issuer.clone(),
            audience: self.jwt.audience.clone(),
            leeway_secs: self.jwt.leeway_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Settings {
        Settings::load_with_env(shared_claims::settings::variables(vars)).unwrap()
    }

    #[test]
    fn the_defaults_are_valid_and_zero_limits_are_named() {
        assert_eq!(load(&[]).validate(), Ok(()));
        let problems = load(&[
            ("RESOURCE__SERVER__SHUTDOWN_GRACE_SECS", "0"),
            ("RESOURCE__SERVER__MAX_CONNECTIONS", "0"),
            ("RESOURCE__SERVER__KEEP_ALIVE_SECS", "0"),
            ("RESOURCE__DPOP__REPLAY_CACHE_ENTRIES", "0"),
        ])
        .validate()
        .unwrap_err();
        assert!(
            problems.contains("server.shutdown_grace_secs"),
            "{problems}"
        );
        assert!(problems.contains("server.max_connections"), "{problems}");
        assert!(problems.contains("dpop.replay_cache_entries"), "{problems}");
        // Keep-alive 0 turns keep-alive off; it is not a mistake.
        assert!(!problems.contains("keep_alive"), "{problems}");
    }
}
