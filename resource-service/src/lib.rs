//! resource-service: protected APIs that accept exactly the access tokens the
//! auth-service issued and that are still valid, checked with public keys alone.
//!
//! The verification rules and the extractor live in `shared-claims`; this crate only
//! decides where keys come from ([`jwks`]) and what the API returns ([`routes`]).

pub mod configuration;
pub mod jwks;
pub mod metrics;
pub mod routes;
pub mod startup;
