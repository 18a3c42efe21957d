//! auth-service: owns users and refresh sessions, and signs RS256 access tokens.
//!
//! Start at [`startup::Application`]; the rotation rules are in [`sessions`], the key
//! handling in [`keys`], the flows shared by the JSON and OAuth endpoints in [`flows`].

pub mod client_address;
pub mod configuration;
pub mod dpop;
pub mod error;
pub mod flows;
pub mod held_connections;
pub mod keys;
pub mod metrics;
pub mod passwords;
pub mod rate_limit;
pub mod redis_conn;
pub mod routes;
pub mod sessions;
pub mod startup;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod user_cache;
pub mod users;
