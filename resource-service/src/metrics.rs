//! The resource-service's domain metrics, as typed handles: tokens refused by reason and
//! verified-token cache lookups (shared with every verifier), and JWKS fetches by
//! outcome.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    outcome: FetchOutcome,
}

/// The handles; clones share the counters.
#[derive(Debug, Clone, Default)]
pub struct ResourceMetrics {
    /// Refusals and cache lookups of the extractor and verifier.
    pub verification: VerificationMetrics,
    jwks_fetches: Family<FetchLabels, Counter>,
}

impl ResourceMetrics {
    /// The handles, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            verification: VerificationMetrics::register(registry),
            ..Self::default()
        };
        registry.register(
            "resource_jwks_fetches",
            "JWKS fetches (at start, periodic and for unknown kids) by outcome",
            metrics.jwks_fetches.clone(),
        );
        metrics
    }

    /// One JWKS fetch ended with `outcome`.
    pub fn jwks_fetched(&self, outcome: FetchOutcome) {
        self.jwks_fetches
            .get_or_create(&FetchLabels { outcome })
            .inc();
    }
}
