//! Black-box tests of the resource-service: started on port 0, fed tokens minted here
//! (good ones and every attack we know), and an end-to-end run with a real auth-service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accepted;
mod cache;
mod dpop;
mod helpers;
mod independence;
mod jwks;
mod limits;
mod metrics;
mod openapi;
mod rejected;
