//! Every way a request can fail, mapped to a status and the JSON error body
//! (`shared_claims::protocol::ErrorBody`) in one place. Internal causes are logged with their whole chain and never sent.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use shared_claims::{ErrorBody, ErrorCode};

use crate::passwords::HashError;
use crate::redis_conn::RedisFailure;
use crate::tokens::IssueError;
use crate::users::UserStoreError;

/// The outcome of a failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or breaks a documented rule (400).
    #[error("{0}")]
    InvalidRequest(String),
    /// Wrong username or password; the same for both (401).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// A refresh token that is unknown, expired, revoked or reused (401).
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// A DPoP proof that is missing where needed, malformed, stale, replayed or from the
    /// wrong key (RFC 9449 §5): 400 `invalid_dpop_proof`.
    #[error("{0}")]
    InvalidDpopProof(String),
    /// An access token that verified but may not be used here (its session ended): 401
    /// `invalid_token` with an RFC 6750 challenge.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// An OAuth 2.0 token-endpoint error (RFC 6749 §5.2): always 400.
    #[error("{description}")]
    OAuth {
        /// `invalid_request`, `invalid_grant` or `unsupported_grant_type`.
        code: ErrorCode,
        /// For people.
        description: String,
    },
    /// Not found, or not the caller's: the two are never told apart (404).
    #[error("not found")]
    NotFound,
    /// The username exists already, in any letter case (409).
    #[error("this username is already taken")]
    UsernameTaken,
    /// The body is above 16 KiB (413).
    #[error("the request body is larger than 16 KiB")]
    PayloadTooLarge,
    /// Too many attempts; retry after this many seconds (429).
    #[error("too many attempts; retry in {0} s")]
    RateLimited(u64),
    /// A dependency is down or slow (503); names which, never why in detail.
    #[error("{0} is temporarily unavailable")]
    Unavailable(&'static str),
    /// Our own bug (500).
    #[error("internal error")]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::InvalidCredentials => ErrorCode::InvalidCredentials,
            Self::InvalidGrant(_) => ErrorCode::InvalidGrant,
            Self::InvalidToken(_) => ErrorCode::InvalidToken,
            Self::InvalidDpopProof(_) => ErrorCode::InvalidDpopProof,
            Self::OAuth { code, .. } => code.clone(),
            Self::NotFound => ErrorCode::NotFound,
            Self::UsernameTaken => ErrorCode::UsernameTaken,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::Unavailable(_) => ErrorCode::TemporarilyUnavailable,
            Self::Unexpected(_) => ErrorCode::ServerError,
        }
    }
}

impl ApiError {
    /// The same failure as the OAuth token endpoint reports it (RFC 6749 §5.2), where
    /// bad credentials and bad refresh tokens are both a 400 `invalid_grant`.
    pub fn into_oauth(self) -> Self {
        match self {
            Self::InvalidCredentials => Self::OAuth {
                code: ErrorCode::InvalidGrant,
                description: Self::InvalidCredentials.to_string(),
            },
            Self::InvalidGrant(description) => Self::OAuth {
                code: ErrorCode::InvalidGrant,
                description: description.to_owned(),
            },
            Self::InvalidRequest(description) => Self::OAuth {
                code: ErrorCode::InvalidRequest,
                description,
            },
            other => other,
        }
    }
}

impl From<shared_claims::dpop::DpopError> for ApiError {
    fn from(error: shared_claims::dpop::DpopError) -> Self {
        Self::InvalidDpopProof(error.to_string())
    }
}

impl From<RedisFailure> for ApiError {
    fn from(failure: RedisFailure) -> Self {
        match failure {
            RedisFailure::Unavailable { cause, .. } => {
                tracing::warn!(%cause, "redis unavailable");
                Self::Unavailable("the session store")
            }
            RedisFailure::Command(e) => Self::Unexpected(anyhow::Error::new(e)),
        }
    }
}

impl From<HashError> for ApiError {
    fn from(failure: HashError) -> Self {
        match failure {
            HashError::Busy => Self::Unavailable("password checking"),
            HashError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<UserStoreError> for ApiError {
    fn from(failure: UserStoreError) -> Self {
        match failure {
            UserStoreError::UsernameTaken => Self::UsernameTaken,
            UserStoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "postgres unavailable");
                Self::Unavailable("the user database")
            }
            UserStoreError::Query(e) => Self::Unexpected(anyhow::Error::new(e)),
        }
    }
}

impl From<IssueError> for ApiError {
    fn from(failure: IssueError) -> Self {
        Self::Unexpected(anyhow::Error::new(failure))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) | Self::OAuth { .. } | Self::InvalidDpopProof(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::InvalidCredentials | Self::InvalidGrant(_) | Self::InvalidToken(_) => {
                StatusCode::UNAUTHORIZED
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::UsernameTaken => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(e) = self {
            tracing::error!(error = ?e, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            Self::RateLimited(secs) => {
                response.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            Self::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            Self::InvalidToken(description) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        r#"Bearer realm="auth-service", error="{}", error_description="{description}""#,
                        ErrorCode::InvalidToken
                    ),
                ));
            }
            _ => {}
        }
        response.json(ErrorBody::new(self.code(), self.to_string()))
    }
}
