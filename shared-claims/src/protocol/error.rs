//! The JSON error body every endpoint of both services returns, and its typed error code.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `{"error": "<code>", "error_description": "<text>"}`: a machine-readable code from
/// RFC 6749 §5.2 / RFC 6750 §3.1 where one exists, and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A stable code such as `invalid_request` or `invalid_token`.
    pub error: ErrorCode,
    /// What went wrong, in words; never echoes secrets or tokens. Our services always
    /// send it; RFC 6749 §5.2 makes it optional, so a body without one still decodes
    /// (as an empty description).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub error_description: String,
}

impl ErrorBody {
    /// Builds a body from a code and a description.
    pub fn new(error: ErrorCode, error_description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: error_description.into(),
        }
    }
}

/// Every error code the services send, so that the services cannot misspell one and a
/// client can `match` on them. On the wire each is its snake_case name (`invalid_grant`).
///
/// A client must never fail to read an error because a newer server added a code: any
/// code this version does not know decodes as [`ErrorCode::Other`], kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or breaks a documented rule (RFC 6749 §5.2, RFC 6750 §3.1).
    InvalidRequest,
    /// Wrong username or password, the same for both.
    InvalidCredentials,
    /// A refresh token (or, at the OAuth token endpoint, a password) that is unknown,
    /// expired, revoked or reused (RFC 6749 §5.2).
    InvalidGrant,
    /// An access token that is expired, revoked, malformed or not for us (RFC 6750 §3.1).
    InvalidToken,
    /// A DPoP proof that is missing where needed or refused (RFC 9449 §7.1 and §5).
    InvalidDpopProof,
    /// A protected route was called without any access token.
    MissingToken,
    /// The access token lacks a role or scope the route needs (RFC 6750 §3.1).
    InsufficientScope,
    /// A `grant_type` the token endpoint does not support (RFC 6749 §5.2).
    UnsupportedGrantType,
    /// No such route, or not the caller's resource.
    NotFound,
    /// Registration with a name that exists, in any letter case.
    UsernameTaken,
    /// The request body is too large.
    PayloadTooLarge,
    /// The request's head or body arrived too slowly; the connection is closed.
    RequestTimeout,
    /// Too many attempts; the answer's `Retry-After` says when to try again.
    RateLimited,
    /// A dependency of the service is down or slow; retry shortly.
    TemporarilyUnavailable,
    /// The service's own bug.
    ServerError,
    /// A code this version does not know, as the server sent it. The services never send
    /// this variant themselves.
    #[serde(untagged)]
    Other(String),
}

impl ErrorCode {
    /// Every code the services send, in the order declared above.
    pub const KNOWN: [Self; 15] = [
        Self::InvalidRequest,
        Self::InvalidCredentials,
        Self::InvalidGrant,
        Self::InvalidToken,
        Self::InvalidDpopProof,
        Self::MissingToken,
        Self::InsufficientScope,
        Self::UnsupportedGrantType,
        Self::NotFound,
        Self::UsernameTaken,
        Self::PayloadTooLarge,
        Self::RequestTimeout,
        Self::RateLimited,
        Self::TemporarilyUnavailable,
        Self::ServerError,
    ];

    /// The code as it travels, e.g. `invalid_grant`; also what `WWW-Authenticate`
    /// challenges put in `error="…"`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidToken => "invalid_token",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::MissingToken => "missing_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::NotFound => "not_found",
            Self::UsernameTaken => "username_taken",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::RateLimited => "rate_limited",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::ServerError => "server_error",
            Self::Other(code) => code,
        }
    }
}

/// The known variant for `code`, else [`ErrorCode::Other`]: the same reading as decoding
/// it from JSON.
impl From<&str> for ErrorCode {
    fn from(code: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|known| known.as_str() == code)
            .unwrap_or_else(|| Self::Other(code.to_owned()))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The schema lists the codes the services send ([`ErrorCode::KNOWN`]); clients should
/// still accept others (see [`ErrorCode::Other`]).
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .description(Some(
                "A stable, machine-readable code (RFC 6749 §5.2, RFC 6750 §3.1, RFC 9449 §7.1).",
            ))
            .enum_values(Some(
                Self::KNOWN.iter().map(|code| code.as_str().to_owned()),
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_travels_as_its_snake_case_name() {
        for code in ErrorCode::KNOWN {
            let json = serde_json::to_string(&code).unwrap();

            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert_eq!(ErrorCode::from(code.as_str()), code);
        }
    }

    #[test]
    fn a_code_from_a_newer_server_is_kept_as_sent() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"error": "use_dpop_nonce", "error_description": "send the nonce"}"#,
        )
        .unwrap();

        assert_eq!(body.error, ErrorCode::Other("use_dpop_nonce".into()));
        assert_eq!(body.error.as_str(), "use_dpop_nonce");
        assert_eq!(
            serde_json::to_value(&body).unwrap()["error"],
            "use_dpop_nonce"
        );
    }

    #[test]
    fn the_body_is_the_two_documented_fields_in_order() {
        let body = ErrorBody::new(ErrorCode::InvalidGrant, "the refresh token is invalid");

        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"invalid_grant","error_description":"the refresh token is invalid"}"#
        );
    }

    #[test]
    fn a_body_without_a_description_still_decodes() {
        let body: ErrorBody = serde_json::from_str(r#"{"error": "invalid_request"}"#).unwrap();

        assert_eq!(body.error, ErrorCode::InvalidRequest);
        assert!(body.error_description.is_empty());
    }
}
