//! Refresh sessions: opaque rotating tokens, the grace window for concurrent retries,
//! reuse detection, inactivity and absolute limits, and the per-user session index.
//!
//! * [`token`]: the token codec. A refresh token is
//!   `base64url(version ‖ sid ‖ generation ‖ HMAC-SHA256(secret, …))`; Redis holds only
//!   the session's *current generation*, and the token of a generation is recomputed with
//!   the secret, which lives in the key directory. So a copy of Redis cannot refresh
//!   anything, and the server can hand a concurrent retry the very same successor token
//!   without storing it.
//! * [`store`]: the Redis store, and the Lua scripts (`scripts/*.lua`) that decide each
//!   refresh atomically on the session's hash alone:
//!   - presented generation = current: rotate (generation + 1);
//!   - = current − 1 and the service saw that rotation's reply get lost (a Redis timeout
//!     after the script ran): the same successor, whenever the retry comes;
//!   - = current − 1, within the grace window and under the grace count: the same
//!     successor (no fork, no revocation); over the count: refuse without revoking;
//!   - newer than current: Redis lost writes; the session ends, without a reuse alarm;
//!   - a DPoP-bound session and a proof of another key (or none): the current token is
//!     refused without changing anything, a retired one is reuse, grace window or not;
//!   - any other retired generation: reuse, so the whole session is deleted (RFC 9700
//!     §4.14.2).
//!
//!   The decision table itself is `scripts/decide.lua`, a pure function the rotation
//!   script calls, unit-tested without Redis.
//! * [`reply`]: the typed reading of the scripts' replies.
//!
//! Keys of one session are `<prefix>session:{<sid>}`, so with Redis Cluster every script
//! touches one hash slot. The per-user index `<prefix>user:{<uid>}:sessions` lives in the
//! user's slot and is maintained in separate, non-atomic steps; readers prune entries
//! whose session is gone, so it can lag but never shows a dead session.
//!
//! A session also records the user's `sessions_valid_after` at login (its *epoch*); any
//! role or password change moves that value in Postgres, and a refresh of a session whose
//! epoch differs is refused (see [`crate::flows`]).

#[cfg(test)]
mod decision_tests;
mod reply;
mod store;
pub mod token;

use uuid::Uuid;

pub use reply::{Granted, Refusal, Rotation};
pub use store::SessionStore;
pub use token::RefreshTokens;

/// The id of one refresh request, stored on the session by the rotation it makes, so that
/// a lost reply is recovered only for the request that lost it (never for a thief who
/// replays the same token after another request rotated it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationId(String);

impl RotationId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(Uuid::new_v4().simple().to_string())
    }

    /// As passed to the scripts.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RotationId {
    fn default() -> Self {
        Self::new()
    }
}

/// Session lifetimes and the grace window, in milliseconds.
#[derive(Debug, Clone)]
pub struct SessionRules {
    /// Inactivity limit (`jwt.refresh_ttl_secs`).
    pub idle_ms: i64,
    /// Absolute limit (`jwt.session_max_ttl_secs`).
    pub absolute_ms: i64,
    /// Grace window after a rotation (`jwt.refresh_reuse_grace_secs`); 0 disables it.
    pub grace_ms: i64,
    /// Retries served inside the window (`jwt.refresh_reuse_grace_count`).
    pub grace_count: u32,
    /// Live sessions per user (`jwt.max_sessions_per_user`).
    pub max_per_user: u32,
}

/// What a new session records.
#[derive(Debug)]
pub struct NewSession<'a> {
    /// Owner.
    pub user_id: Uuid,
    /// The owner's `sessions_valid_after` when the password was checked, in microseconds:
    /// the session dies when it changes.
    pub epoch: i64,
    /// Thumbprint of the DPoP key the session is bound to, if it was opened with a proof.
    pub jkt: Option<&'a str>,
    /// The client it was opened with.
    pub client_id: &'a str,
    /// Granted scope.
    pub scope: &'a str,
    /// The login request's User-Agent, for the session list.
    pub user_agent: &'a str,
}

/// A live session as listed to its owner.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Session id (`sid`).
    pub sid: Uuid,
    /// Opened, ms since the epoch.
    pub created_ms: i64,
    /// Last refresh (or login), ms since the epoch.
    pub last_used_ms: i64,
    /// When it ends unless refreshed, ms since the epoch.
    pub expires_ms: i64,
    /// User-Agent of the login.
    pub user_agent: String,
}
