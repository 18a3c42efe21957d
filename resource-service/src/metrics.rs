//! The resource-service's domain metrics, as typed handles: tokens refused by reason and
//! verified-token cache lookups (shared with every verifier), and JWKS fetches by
//! outcome.

use prometheus_client::encoding::EncodeLabelValue;
use prometheus_client::registry::Registry;
use shared_claims::metrics::labelled::{CountersBy, Label};
use shared_claims::metrics::verification::VerificationMetrics;

/// How a JWKS fetch ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum FetchOutcome {
    /// Keys were installed.
    success,
    /// Unreachable, an error status, too large, or no usable key: the old keys stay.
    failure,
}

impl Label for FetchOutcome {
    const NAME: &'static str = "outcome";
}

/// The handles; clones share the counters.
#[derive(Debug, Clone, Default)]
pub struct ResourceMetrics {
    /// Refusals and cache lookups of the extractor and verifier.
    pub verification: VerificationMetrics,
    jwks_fetches: CountersBy<FetchOutcome>,
}

impl ResourceMetrics {
    /// The handles, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        Self {
            verification: VerificationMetrics::register(registry),
            jwks_fetches: CountersBy::registered(
                registry,
                "resource_jwks_fetches",
                "JWKS fetches (at start, periodic and for unknown kids) by outcome",
            ),
        }
    }

    /// One JWKS fetch ended with `outcome`.
    pub fn jwks_fetched(&self, outcome: FetchOutcome) {
        self.jwks_fetches.inc(outcome);
    }
}
