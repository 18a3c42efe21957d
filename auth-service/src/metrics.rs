//! The auth-service's domain metrics, as typed handles: logins, refreshes and session
//! ends by outcome, rate-limit refusals, registrations. Registered once in the service's
//! [`shared_claims::metrics::Metrics`]; a misspelt metric or outcome does not compile.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use shared_claims::metrics::verification::VerificationMetrics;

/// How a login ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum LoginOutcome {
    /// A session was opened.
    success,
    /// Wrong username or password.
    invalid_credentials,
}

/// How a refresh ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RefreshOutcome {
    /// The current token rotated.
    rotated,
    /// A retry of the previous token inside the grace window: the same successor.
    grace_retry,
    /// A retry after a lost rotation reply: the same successor.
    recovered,
    /// A retired token: the session was revoked.
    reuse,
    /// The session had expired.
    expired,
    /// Unknown, tampered or revoked token, or a grace retry over the count.
    invalid,
    /// A DPoP-bound session without a proof of its key.
    wrong_key,
    /// The user's roles or password changed since the session opened.
    account_changed,
    /// A token newer than the stored session: Redis lost writes.
    state_lost,
}

/// Why sessions ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RevocationCause {
    /// `POST /auth/logout` or `/oauth/revoke`.
    logout,
    /// `POST /auth/logout-all`.
    logout_all,
    /// `DELETE /auth/sessions/{id}`.
    owner,
    /// A retired refresh token was presented.
    reuse,
    /// The user's roles or password changed.
    account_changed,
    /// Evicted by the per-user cap.
    session_cap,
}

/// Which limit refused a password attempt.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RateLimit {
    /// Attempts per client address.
    address,
    /// Failed logins per (username, client address).
    username_address,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    outcome: LoginOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshLabels {
    outcome: RefreshOutcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Cause {
    cause: RevocationCause,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Limit {
    limit: RateLimit,
}

/// The handles; clones share the counters.
#[derive(Debug, Clone, Default)]
pub struct AuthMetrics {
    logins: Family<LoginLabels, Counter>,
    refreshes: Family<RefreshLabels, Counter>,
    revoked: Family<Cause, Counter>,
    rate_limited: Family<Limit, Counter>,
    registrations: Counter,
    /// Refusals of access tokens at the session endpoints.
    pub verification: VerificationMetrics,
}

impl AuthMetrics {
    /// The handles, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            verification: VerificationMetrics::register(registry),
            ..Self::default()
        };
        registry.register("auth_logins", "Logins by outcome", metrics.logins.clone());
        registry.register(
            "auth_refreshes",
            "Refreshes by outcome",
            metrics.refreshes.clone(),
        );
        registry.register(
            "auth_sessions_revoked",
            "Sessions ended, by cause",
            metrics.revoked.clone(),
        );
        registry.register(
            "auth_rate_limited",
            "Password attempts refused by a rate limit",
            metrics.rate_limited.clone(),
        );
        registry.register(
            "auth_registrations",
            "Users registered",
            metrics.registrations.clone(),
        );
        metrics
    }

    /// One login ended with `outcome`.
    pub fn login(&self, outcome: LoginOutcome) {
        self.logins.get_or_create(&LoginLabels { outcome }).inc();
    }

    /// One refresh ended with `outcome`.
    pub fn refresh(&self, outcome: RefreshOutcome) {
        self.refreshes
            .get_or_create(&RefreshLabels { outcome })
            .inc();
    }

    /// `count` sessions ended by `cause`.
    pub fn revoked(&self, cause: RevocationCause, count: u64) {
        self.revoked.get_or_create(&Cause { cause }).inc_by(count);
    }

    /// A password attempt refused by `limit`.
    pub fn rate_limited(&self, limit: RateLimit) {
        self.rate_limited.get_or_create(&Limit { limit }).inc();
    }

    /// A user registered.
    pub fn registered(&self) {
        self.registrations.inc();
    }
}
