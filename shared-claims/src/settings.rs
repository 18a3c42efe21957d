//! The layered configuration both services read (`DESIGN.md` § Configuration): defaults
//! compiled into the binary, then `config/default.toml` and `config/<APP_ENV>.toml` from
//! the working directory if present, then `<PREFIX>__SECTION__KEY` environment variables.

use std::collections::HashMap;

use config::{Config, ConfigError, Environment, File, FileFormat};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Where a service listens (`server.host`, `server.port`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Interface to bind (`0.0.0.0` in containers).
    pub host: String,
    /// Port; 0 picks a free one (tests).
    pub port: u16,
}

/// Loads settings of type `T` from `defaults` (TOML text) and the layers above.
pub fn load<T: DeserializeOwned>(defaults: &str, env_prefix: &str) -> Result<T, ConfigError> {
    let mut builder = Config::builder()
        .add_source(File::from_str(defaults, FileFormat::Toml))
        .add_source(File::with_name("config/default").required(false));
    if let Ok(app_env) = std::env::var("APP_ENV") {
        builder = builder.add_source(File::with_name(&format!("config/{app_env}")).required(false));
    }
    builder
        .add_source(environment(env_prefix, None))
        .build()?
        .try_deserialize()
}

/// Loads settings from `defaults` and the variables in `env` only: no files, no process
/// environment. Answers "what do these variables alone make of the service?" for
/// deployment checks and tests, whatever the working directory holds.
pub fn load_with_env<T: DeserializeOwned>(
    defaults: &str,
    env_prefix: &str,
    env: HashMap<String, String>,
) -> Result<T, ConfigError> {
    Config::builder()
        .add_source(File::from_str(defaults, FileFormat::Toml))
        .add_source(environment(env_prefix, Some(env)))
        .build()?
        .try_deserialize()
}

/// `<PREFIX>__SECTION__KEY` variables, from the process or from `source`. The keys in
/// [`LIST_KEYS`] take comma-separated lists (`<PREFIX>__DPOP__ALGORITHMS=ES256,EdDSA`).
fn environment(prefix: &str, source: Option<HashMap<String, String>>) -> Environment {
    LIST_KEYS
        .iter()
        .fold(Environment::with_prefix(prefix), |env, key| {
            env.with_list_parse_key(key)
        })
        .list_separator(",")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .source(source)
}

/// Settings of either service that are lists.
const LIST_KEYS: [&str; 1] = ["dpop.algorithms"];
