//! The wire types of the system: everything that travels between a client and the two
//! services, defined once for the services that write it and the clients that read it.
//!
//! * [`AccessClaims`]: the payload of an access token;
//! * [`ErrorBody`] with its typed [`ErrorCode`]: every error answer;
//! * [`TokenResponse`]: the answer to a login or refresh;
//! * the request bodies [`RegisterRequest`], [`LoginRequest`], [`RefreshTokenRequest`];
//! * [`UserView`], [`SessionView`], [`MeResponse`]: what the services say about users
//!   and sessions;
//! * [`paths`]: the route paths;
//! * [`Clock`]: time, injected, so every party reads it the same testable way.
//!
//! This part is always compiled and depends on nothing but serde and a few value types
//! (no actix-web, no crypto, no configuration), so a client takes it with
//! `default-features = false`. Everything a service needs besides is behind the crate's
//! `service` feature.

pub(crate) mod claims;
mod clock;
mod error;
pub mod paths;
mod requests;
mod tokens;
mod views;

pub use claims::{ACCESS_TOKEN_TYPE, AccessClaims, Confirmation};
pub use clock::{Clock, SharedClock, SystemClock, TestClock};
pub use error::{ErrorBody, ErrorCode};
pub use requests::{LoginRequest, RefreshTokenRequest, RegisterRequest};
pub use tokens::{TokenResponse, TokenType};
pub use views::{MeResponse, SessionView, UserView};
