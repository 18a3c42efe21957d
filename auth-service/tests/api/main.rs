//! Black-box tests of the auth-service: the real app on port 0, real Postgres and Redis,
//! a fresh database and Redis key prefix per test, and HTTP from the outside.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bad_input;
mod chaos;
mod dpop;
mod flood;
mod helpers;
mod keys_and_tokens;
mod load;
mod lockout;
mod login;
mod logs;
mod lost_replies;
mod metrics;
mod oauth;
mod openapi;
mod outages;
mod own_servers;
mod refresh;
mod register;
mod restarts;
mod sessions;
mod shutdown;
mod slow_clients;
mod startup_checks;
mod user_changes;
