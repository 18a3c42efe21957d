//! The client library and binary against an in-process auth-service and resource-service
//! on port 0, with real Postgres and Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod binary;
mod dpop;
mod helpers;
mod library;
mod proxy;
mod retries;
