//! What verifiers count: tokens refused, by reason, and verified-token cache lookups.
//! Registered by any service that verifies tokens; the extractor counts every refusal it
//! answers.

use prometheus_client::encoding::EncodeLabelValue;
use prometheus_client::registry::Registry;

use super::labelled::{CountersBy, Label};
use crate::extractor::AuthErrorKind;
use crate::verify::{CacheLookup, TokenError};

/// Why a request's token was refused.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum RefusalReason {
    /// No token at all.
    missing,
    /// Not a well-formed JWT, or over the size limit.
    malformed,
    /// `alg` is not RS256.
    algorithm,
    /// `typ` is not `at+jwt`.
    token_type,
    /// The header brings its own key, or a `crit`.
    header,
    /// `kid` missing or unknown.
    unknown_kid,
    /// The signature does not verify.
    signature,
    /// Past `exp`.
    expired,
    /// Before `nbf`, or `iat` in the future.
    not_yet_valid,
    /// Another issuer.
    issuer,
    /// Another audience.
    audience,
    /// Claims missing or of the wrong type.
    claims,
    /// A DPoP-bound token without its proof, or an unbound one with the DPoP scheme.
    dpop_binding,
    /// The DPoP proof was refused.
    dpop_proof,
    /// The token lacks a role or scope the route needs.
    insufficient_scope,
    /// The request itself is malformed (two `Authorization` headers).
    bad_request,
}

impl From<&AuthErrorKind> for RefusalReason {
    fn from(kind: &AuthErrorKind) -> Self {
        match kind {
            AuthErrorKind::Token(error) => match error {
                TokenError::Missing => Self::missing,
                TokenError::TooLarge | TokenError::Malformed => Self::malformed,
                TokenError::UnsupportedAlgorithm => Self::algorithm,
                TokenError::WrongType => Self::token_type,
                TokenError::KeyInHeader(_) | TokenError::CriticalHeader => Self::header,
                TokenError::MissingKeyId | TokenError::UnknownKeyId => Self::unknown_kid,
                TokenError::BadSignature => Self::signature,
                TokenError::Expired => Self::expired,
                TokenError::NotYetValid | TokenError::IssuedInFuture => Self::not_yet_valid,
                TokenError::WrongIssuer => Self::issuer,
                TokenError::WrongAudience => Self::audience,
                TokenError::InvalidClaims => Self::claims,
            },
            AuthErrorKind::BoundTokenAsBearer | AuthErrorKind::UnboundTokenAsDpop => {
                Self::dpop_binding
            }
            AuthErrorKind::Proof(_) => Self::dpop_proof,
            AuthErrorKind::InsufficientScope(_) | AuthErrorKind::MissingScope(_) => {
                Self::insufficient_scope
            }
            AuthErrorKind::BadRequest(_) | AuthErrorKind::NotConfigured => Self::bad_request,
        }
    }
}

impl Label for RefusalReason {
    const NAME: &'static str = "reason";
}

/// A verified-token cache lookup's result.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum CacheResult {
    /// Found: no signature check needed (the clock checks that follow may still refuse
    /// the token, which then counts as a refusal too).
    hit,
    /// Not found: verified in full.
    miss,
}

impl Label for CacheResult {
    const NAME: &'static str = "result";
}

/// The counters; clones share them.
#[derive(Debug, Clone, Default)]
pub struct VerificationMetrics {
    refused: CountersBy<RefusalReason>,
    cache: CountersBy<CacheResult>,
}

impl VerificationMetrics {
    /// Counters registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        Self {
            refused: CountersBy::registered(
                registry,
                "tokens_refused",
                "Requests whose access token (or its absence) was refused, by reason",
            ),
            cache: CountersBy::registered(
                registry,
                "verified_token_cache_lookups",
                "Verified-token cache lookups by result",
            ),
        }
    }

    /// Counts one refusal.
    pub fn refused(&self, kind: &AuthErrorKind) {
        self.refused.inc(kind.into());
    }

    /// Counts one verified-token cache lookup, if there was one: one per verification,
    /// so a token naming an unknown key that verifies after a key refresh counts twice.
    pub fn cache_lookup(&self, lookup: CacheLookup) {
        let result = match lookup {
            CacheLookup::Hit => CacheResult::hit,
            CacheLookup::Miss => CacheResult::miss,
            CacheLookup::NotConsulted => return,
        };
        self.cache.inc(result);
    }
}
