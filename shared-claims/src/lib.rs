//! The one definition of an access token that the issuer and every verifier share.
//!
//! `auth-service` signs [`AccessClaims`] with an [`RsaSigningKey`]; `resource-service`
//! (and any other actix service) checks them with a [`Verifier`] built from
//! [`VerifierSettings`]. Because both sides use this crate, they agree by construction on
//! the claim names, the header (`alg`, `typ`, `kid`), the RFC 7638 key id and the rules a
//! token must pass. See `DESIGN.md` § Access token.
//!
//! Sender-constrained tokens (RFC 9449) are checked in one place too: [`dpop`] verifies
//! proofs for the auth-service and every resource server alike.
//!
//! It also holds what every service of the system needs the same way, so the services do
//! not copy each other: the JSON [`ErrorBody`], the Bearer/DPoP [`Authenticated`] extractor,
//! request logging ([`telemetry`]), Prometheus counters ([`metrics`]) and layered
//! configuration ([`settings`]).

mod claims;
pub mod dpop;
mod error_body;
mod extractor;
pub mod healthcheck;
mod jwk;
pub mod metrics;
mod pem;
mod provider;
pub mod service;
pub mod settings;
mod signing;
pub mod telemetry;
mod verify;

pub use claims::{ACCESS_TOKEN_TYPE, AccessClaims, Confirmation};
pub use error_body::ErrorBody;
pub use extractor::{
    AuthError, AuthErrorKind, Authenticated, BearerAuth, KeyRefresher, dpop_proof_header,
    dpop_request_url,
};
pub use jwk::{Jwk, JwkSet, KeyError, MIN_RSA_BITS, RsaPublicKey, rfc7638_thumbprint};
pub use pem::PemError;
pub use provider::install_crypto_provider;
pub use signing::{RsaSigningKey, SigningError};
pub use verify::{
    DEFAULT_CACHE_ENTRIES, KeySet, MAX_TOKEN_BYTES, TokenError, Verifier, VerifierSettings,
};
