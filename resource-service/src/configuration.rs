//! The resource-service's settings, read in layers by [`shared_claims::settings::load`]
//! with the prefix `RESOURCE` (`RESOURCE__JWKS__URL=…`).

use std::path::PathBuf;

use config::ConfigError;
use serde::Deserialize;
use shared_claims::VerifierSettings;
pub use shared_claims::settings::{MetricsSettings, ServerSettings};

/// The defaults shipped in the binary.
const DEFAULTS: &str = include_str!("../config/default.toml");

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

impl Settings {
    /// Reads all layers.
    pub fn load() -> Result<Self, ConfigError> {
        shared_claims::settings::load(DEFAULTS, "RESOURCE")
    }

    /// The built-in defaults with `env` on top, ignoring files and the process
    /// environment. An unknown key is an error (every section refuses unknown fields), so
    /// this tells whether a deployment's variables all mean something to the service.
    pub fn load_with_env(
        env: std::collections::HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        shared_claims::settings::load_with_env(DEFAULTS, "RESOURCE", env)
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
