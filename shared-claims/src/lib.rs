//! The one definition of an access token that the issuer and every verifier share, and of
//! everything else that travels between the services and their clients.
//!
//! The crate has two parts:
//!
//! * [`protocol`], always compiled and free of actix-web and crypto: the wire types
//!   ([`AccessClaims`], [`ErrorBody`] and [`ErrorCode`], the token response, request
//!   bodies, route paths). Clients such as `client-cli` depend on the crate with
//!   `default-features = false` and get only this.
//! * The service part, behind the `service` feature (on by default): `auth-service` signs
//!   [`AccessClaims`] with an `RsaSigningKey`; `resource-service` (and any other actix
//!   service) checks them with a `Verifier` built from `VerifierSettings`. Because both
//!   sides use this crate, they agree by construction on the claim names, the header
//!   (`alg`, `typ`, `kid`), the RFC 7638 key id and the rules a token must pass.
//!   Sender-constrained tokens (RFC 9449) are checked in one place too: `dpop` verifies
//!   proofs for the auth-service and every resource server alike. It also holds what
//!   every service of the system needs the same way, so the services do not copy each
//!   other: the Bearer/DPoP `Authenticated` extractor, request logging (`telemetry`),
//!   Prometheus metrics (`metrics`), layered configuration (`settings`) and the HTTP
//!   server's limits and graceful shutdown (`server`).
//!
//! Feature `openapi` adds OpenAPI schemas (utoipa) to the wire types and, with `service`,
//! `apidoc`: what both services need to publish their API description at `/openapi.json`
//! and `/docs`.

pub mod protocol;

#[cfg(all(feature = "service", feature = "openapi"))]
pub mod apidoc;
#[cfg(feature = "service")]
pub mod dpop;
#[cfg(feature = "service")]
mod extractor;
#[cfg(feature = "service")]
pub mod healthcheck;
#[cfg(feature = "service")]
mod jwk;
#[cfg(feature = "service")]
pub mod metrics;
#[cfg(feature = "service")]
mod pem;
#[cfg(feature = "service")]
pub mod server;
#[cfg(feature = "service")]
pub mod service;
#[cfg(feature = "service")]
pub mod settings;
#[cfg(feature = "service")]
mod signing;
#[cfg(feature = "service")]
pub mod telemetry;
#[cfg(feature = "service")]
mod verify;

/// The service modules name the claims by this crate-internal path.
#[cfg(feature = "service")]
use protocol::claims;

pub use protocol::{ACCESS_TOKEN_TYPE, AccessClaims, Confirmation, ErrorBody, ErrorCode};

#[cfg(feature = "service")]
pub use extractor::{
    AuthError, AuthErrorKind, Authenticated, BearerAuth, KeyRefresher, dpop_proof_header,
    dpop_request_url,
};
#[cfg(feature = "service")]
pub use jwk::{Jwk, JwkSet, KeyError, MIN_RSA_BITS, RsaPublicKey, rfc7638_thumbprint};
#[cfg(feature = "service")]
pub use pem::PemError;
#[cfg(feature = "service")]
pub use signing::{RsaSigningKey, SigningError, generate_rsa_pkcs8_pem};
#[cfg(feature = "service")]
pub use verify::{
    CacheLookup, DEFAULT_CACHE_ENTRIES, KeySet, MAX_TOKEN_BYTES, TokenError, Verifier,
    VerifierSettings, VerifyingKey,
};
