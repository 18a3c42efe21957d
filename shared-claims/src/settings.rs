//! The layered configuration both services read (README § Configuration): defaults
//! compiled into the binary, then `config/default.toml` and `config/<APP_ENV>.toml` from
//! the working directory if present, then `<PREFIX>__SECTION__KEY` environment variables.

use std::collections::HashMap;

use config::{Config, ConfigError, Environment, File, FileFormat};
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer};

/// Where a service listens (`server.host`, `server.port`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Interface to bind (`0.0.0.0` in containers).
    pub host: String,
    /// Port; 0 picks a free one (tests).
    pub port: u16,
}

/// Declares a service's `[server]` section: `host`, `port`, the service's own keys, then
/// the connection limits every service has (`shutdown_grace_secs`,
/// `request_header_timeout_ms`, `body_read_timeout_ms`, `keep_alive_secs`,
/// `max_connections`), with `listen()` ([`ServerSettings`]) and `limits()`
/// ([`ServerLimits`](crate::server::ServerLimits)).
///
/// A macro rather than a shared struct flattened into each service's: serde cannot combine
/// `flatten` with `deny_unknown_fields`, and a misspelt key must stay an error.
#[macro_export]
macro_rules! server_settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, ::serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Interface to bind (`0.0.0.0` in containers).
            pub host: String,
            /// Port; 0 picks a free one (tests).
            pub port: u16,
            $($(#[$field_meta])* pub $field: $ty,)*
            /// Seconds that requests in flight get to finish after SIGTERM.
            pub shutdown_grace_secs: u64,
            /// Milliseconds for a request's whole head to arrive (408 and closed beyond).
            pub request_header_timeout_ms: u64,
            /// Milliseconds for a request's whole body to arrive after its head (408 beyond).
            pub body_read_timeout_ms: u64,
            /// Seconds an idle connection is kept open for another request; 0 turns it off.
            pub keep_alive_secs: u64,
            /// Connections served at once; more wait for one to close.
            pub max_connections: usize,
        }

        impl $name {
            /// The listening address alone, as the shared service main wants it.
            pub fn listen(&self) -> $crate::settings::ServerSettings {
                $crate::settings::ServerSettings {
                    host: self.host.clone(),
                    port: self.port,
                }
            }

            /// The connection limits and shutdown grace these settings ask for.
            pub fn limits(&self) -> $crate::server::ServerLimits {
                $crate::server::ServerLimits::from_settings(
                    self.shutdown_grace_secs,
                    self.request_header_timeout_ms,
                    self.body_read_timeout_ms,
                    self.keep_alive_secs,
                    self.max_connections,
                )
            }
        }
    };
}

/// Where `/metrics` is served (`metrics.bind`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// `host:port` of a listener of its own for `/metrics`, so operators can keep it off
    /// the published port; empty serves it on the main port.
    pub bind: String,
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

/// A service's settings: its built-in defaults and environment prefix, the two ways of
/// loading them that follow from those, and the check of the loaded values
/// ([`problems`](Self::problems), [`validate`](Self::validate)).
pub trait LayeredSettings: DeserializeOwned {
    /// The built-in defaults, TOML text compiled into the binary.
    const DEFAULTS: &'static str;
    /// The prefix of the service's environment variables (`AUTH` for `AUTH__JWT__ISSUER`).
    const ENV_PREFIX: &'static str;

    /// Reads all layers (see [`load`]).
    fn load() -> Result<Self, ConfigError> {
        load(Self::DEFAULTS, Self::ENV_PREFIX)
    }

    /// The built-in defaults with `env` on top, ignoring files and the process
    /// environment. An unknown key is an error (every section refuses unknown fields), so
    /// this tells whether a deployment's variables all mean something to the service.
    fn load_with_env(env: HashMap<String, String>) -> Result<Self, ConfigError> {
        load_with_env(Self::DEFAULTS, Self::ENV_PREFIX, env)
    }

    /// Every value that would make the service unsafe or useless, each named: such
    /// values are refused at start, never silently clamped.
    fn problems(&self) -> Vec<String>;

    /// `Ok` when there are no [`problems`](Self::problems), else all of them, joined.
    fn validate(&self) -> Result<(), String> {
        verdict(self.problems())
    }
}

/// The result of a settings check: `Ok` without problems, else every problem, joined.
fn verdict(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// `vars` as the variable map [`load_with_env`] takes, for tests and deployment checks.
pub fn variables(vars: &[(&str, &str)]) -> HashMap<String, String> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `<PREFIX>__SECTION__KEY` variables, from the process or from `source`.
///
/// Values stay text: guessing types would turn a password `0123456789` into the number
/// `123456789`. Numeric and boolean settings parse their text when deserialized, and list
/// settings read a comma-separated value with [`comma_separated`].
fn environment(prefix: &str, source: Option<HashMap<String, String>>) -> Environment {
    Environment::with_prefix(prefix)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(false)
        .source(source)
}

/// Deserializes a list setting from a TOML array or from one comma-separated string (how
/// an environment variable carries a list); blanks around items are dropped, and an empty
/// string is an empty list.
pub fn comma_separated<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    struct ListOrText;
    impl<'de> de::Visitor<'de> for ListOrText {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of strings or a comma-separated string")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(text
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect())
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                items.push(item);
            }
            Ok(items)
        }
    }
    deserializer.deserialize_any(ListOrText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        section: Section,
    }

    #[derive(Debug, Deserialize)]
    struct Section {
        secret: String,
        port: u16,
        enabled: bool,
        #[serde(deserialize_with = "comma_separated")]
        list: Vec<String>,
    }

    const DEFAULTS: &str = "[section]\nsecret = \"x\"\nport = 1\nenabled = false\nlist = [\"a\"]\n";

    fn load(vars: &[(&str, &str)]) -> Sample {
        load_with_env(DEFAULTS, "T", variables(vars)).unwrap()
    }

    #[test]
    fn text_that_looks_like_a_number_keeps_its_exact_text() {
        let sample = load(&[("T__SECTION__SECRET", "0123456789")]);
        assert_eq!(sample.section.secret, "0123456789");
        let sample = load(&[("T__SECTION__SECRET", "1e3")]);
        assert_eq!(sample.section.secret, "1e3");
        let sample = load(&[("T__SECTION__SECRET", "true")]);
        assert_eq!(sample.section.secret, "true");
    }

    #[test]
    fn numbers_booleans_and_lists_still_parse_from_text() {
        let sample = load(&[
            ("T__SECTION__PORT", "08080"),
            ("T__SECTION__ENABLED", "true"),
            ("T__SECTION__LIST", "10.0.0.0/8, 192.168.0.1/32"),
        ]);
        assert_eq!(sample.section.port, 8080);
        assert!(sample.section.enabled);
        assert_eq!(sample.section.list, ["10.0.0.0/8", "192.168.0.1/32"]);
        assert_eq!(
            load(&[("T__SECTION__LIST", "")]).section.list,
            Vec::<String>::new()
        );
        assert_eq!(load(&[]).section.list, ["a"]);
    }
}
