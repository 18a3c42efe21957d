//! Why DPoP settings or a DPoP proof were refused.

use super::MAX_PROOF_AGE_SECS;

/// Why the DPoP settings cannot be used; refused at start, never on a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopConfigError {
    /// An algorithm name that is not ES256 or EdDSA (names are case-sensitive).
    #[error("dpop.algorithms: unknown algorithm {0:?}; supported are \"ES256\" and \"EdDSA\"")]
    UnknownAlgorithm(String),
    /// An empty list would refuse every proof.
    #[error("dpop.algorithms is empty; list at least one of \"ES256\", \"EdDSA\"")]
    NoAlgorithms,
    /// Zero refuses every proof; more than an hour defeats freshness.
    #[error("dpop.proof_max_age_secs must be between 1 and {MAX_PROOF_AGE_SECS}, not {0}")]
    BadMaxAge(u64),
    /// A public URL that is not an absolute `http(s)` URL without query or fragment.
    #[error("a public URL must be an absolute http:// or https:// URL without query or fragment")]
    BadPublicUrl,
}

/// Why a proof was refused. The `Display` text is safe to send to the client (it never
/// echoes the proof or the token); the OAuth error code is always
/// [`ErrorCode::InvalidDpopProof`](crate::ErrorCode::InvalidDpopProof).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// The request has no `DPoP` header although it needs one.
    #[error("the request carries no DPoP proof")]
    Missing,
    /// More than one `DPoP` header (RFC 9449 §4.3 check 1).
    #[error("the request carries more than one DPoP header")]
    Multiple,
    /// Above [`MAX_PROOF_BYTES`](super::MAX_PROOF_BYTES).
    #[error("the DPoP proof is larger than 8192 bytes")]
    TooLarge,
    /// Not three base64url segments, or a part that does not decode to a JSON object.
    #[error("the DPoP proof is not a well-formed JWT")]
    Malformed,
    /// `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's typ is not dpop+jwt")]
    WrongType,
    /// `alg` is not one of the configured algorithms (this covers `none` and HMAC).
    #[error("the DPoP proof's alg is not an accepted algorithm")]
    UnsupportedAlgorithm,
    /// No `jwk` header.
    #[error("the DPoP proof's header carries no jwk")]
    MissingKey,
    /// The `jwk` contains private or symmetric key material (RFC 9449 §4.3 check 7).
    #[error("the DPoP proof's jwk contains private or symmetric key material")]
    PrivateKey,
    /// The `jwk` is not a usable public key for the proof's `alg`.
    #[error("the DPoP proof's jwk is unusable: {0}")]
    BadKey(&'static str),
    /// The header points at keys elsewhere (`jku`, `x5u`, `x5c`).
    #[error("the DPoP proof's header carries a {0} parameter, which is never accepted")]
    KeyReference(&'static str),
    /// The header lists critical extensions, none of which we support.
    #[error("the DPoP proof's header has a crit parameter, which is not supported")]
    CriticalHeader,
    /// The signature does not verify with the `jwk`.
    #[error("the DPoP proof's signature is invalid")]
    BadSignature,
    /// A required claim is missing or has the wrong type.
    #[error("the DPoP proof's {0} claim is missing or malformed")]
    InvalidClaim(&'static str),
    /// `htm` is not the request's method.
    #[error("the DPoP proof was made for another HTTP method")]
    WrongMethod,
    /// `htu` is not the request's URL.
    #[error("the DPoP proof was made for another URL")]
    WrongUrl,
    /// `iat` is further from now than the configured window.
    #[error("the DPoP proof's iat is outside the accepted time window")]
    Stale,
    /// `ath` is not the hash of the access token sent with it.
    #[error("the DPoP proof's ath does not match the access token")]
    AccessTokenMismatch,
    /// The proof's key is not the one the token or session is bound to.
    #[error("the DPoP proof is signed by another key than the one the token is bound to")]
    KeyMismatch,
    /// The proof's `jti` was seen before within the window.
    #[error("the DPoP proof has already been used")]
    Replayed,
}
