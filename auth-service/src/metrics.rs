//! The auth-service's domain metrics, as typed handles: logins, refreshes and session
//! ends by outcome, rate-limit refusals, registrations. Registered once in the service's
//! [`shared_claims::metrics::Metrics`]; a misspelt metric or outcome does not compile.

use prometheus_client::encoding::EncodeLabelValue;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use shared_claims::metrics::labelled::{CountersBy, Label};
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

impl Label for LoginOutcome {
    const NAME: &'static str = "outcome";
}

impl Label for RefreshOutcome {
    const NAME: &'static str = "outcome";
}

impl Label for RevocationCause {
    const NAME: &'static str = "cause";
}

impl Label for RateLimit {
    const NAME: &'static str = "limit";
}

/// The handles; clones share the counters.
#[derive(Debug, Clone, Default)]
pub struct AuthMetrics {
    logins: CountersBy<LoginOutcome>,
    refreshes: CountersBy<RefreshOutcome>,
    revoked: CountersBy<RevocationCause>,
    rate_limited: CountersBy<RateLimit>,
    registrations: Counter,
    /// Refusals of access tokens at the session endpoints.
    pub verification: VerificationMetrics,
}

impl AuthMetrics {
    /// The handles, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        Self {
            verification: VerificationMetrics::register(registry),
            logins: CountersBy::registered(registry, "auth_logins", "Logins by outcome"),
            refreshes: CountersBy::registered(registry, "auth_refreshes", "Refreshes by outcome"),
            revoked: CountersBy::registered(
                registry,
                "auth_sessions_revoked",
                "Sessions ended, by cause",
            ),
            rate_limited: CountersBy::registered(
                registry,
                "auth_rate_limited",
                "Password attempts refused by a rate limit",
            ),
            registrations: {
                let registrations = Counter::default();
                registry.register(
                    "auth_registrations",
                    "Users registered",
                    registrations.clone(),
                );
                registrations
            },
        }
    }

    /// One login ended with `outcome`.
    pub fn login(&self, outcome: LoginOutcome) {
        self.logins.inc(outcome);
    }

    /// One refresh ended with `outcome`.
    pub fn refresh(&self, outcome: RefreshOutcome) {
        self.refreshes.inc(outcome);
    }

    /// `count` sessions ended by `cause`.
    pub fn revoked(&self, cause: RevocationCause, count: u64) {
        self.revoked.inc_by(cause, count);
    }

    /// A password attempt refused by `limit`.
    pub fn rate_limited(&self, limit: RateLimit) {
        self.rate_limited.inc(limit);
    }

    /// A user registered.
    pub fn registered(&self) {
        self.registrations.inc();
    }
}
