//! client-cli: the reference client of the auth system, as a library (tested against the
//! real services) and a binary (`src/main.rs`).
//!
//! [`client::Client`] makes the calls, [`client::refresh`] holds the refresh strategy,
//! [`credentials`] the safe storage, [`dpop`] the key that binds sessions, [`demo`] the narrated end-to-end flow.

pub mod client;
pub mod credentials;
pub mod demo;
pub mod dpop;
pub mod error;
pub mod jwt;
