//! Every way a request can fail, mapped to a status and the JSON body of `DESIGN.md` in
//! one place. Internal causes are logged with their whole chain and never sent.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use shared_claims::ErrorBody;

use crate::redis_conn::RedisFailure;

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
    /// An access token that verified but may not be used here (its session ended): 401
    /// `invalid_token` with an RFC 6750 challenge.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// An OAuth 2.0 token-endpoint error (RFC 6749 §5.2): always 400.
    #[error("{description}")]
    OAuth {
        /// `invalid_request`, `invalid_grant` or `unsupported_grant_type`.
        code: &'static str,
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
    /// The body did not arrive within `server.body_read_timeout_ms` (408); the connection
    /// is closed after the answer.
    #[error("the request body did not arrive in time")]
    RequestTimeout,
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
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::InvalidToken(_) => "invalid_token",
            Self::OAuth { code, .. } => code,
            Self::NotFound => "not_found",
            Self::UsernameTaken => "username_taken",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RequestTimeout => "request_timeout",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::Unexpected(_) => "server_error",
        }
    }
}

impl ApiError {
    /// The same failure as the OAuth token endpoint reports it (RFC 6749 §5.2), where
    /// bad credentials and bad refresh tokens are both a 400 `invalid_grant`.
    pub fn into_oauth(self) -> Self {
        match self {
            Self::InvalidCredentials => Self::OAuth {
                code: "invalid_grant",
                description: Self::InvalidCredentials.to_string(),
            },
            Self::InvalidGrant(description) => Self::OAuth {
                code: "invalid_grant",
                description: description.to_owned(),
            },
            Self::InvalidRequest(description) => Self::OAuth {
                code: "invalid_request",
                description,
            },
            other => other,
        }
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

/// Maps a Postgres error: unreachable, restarting or overloaded is a 503, anything else
/// a bug.
pub fn from_sqlx(e: sqlx::Error) -> ApiError {
    let unavailable = match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // Class 08 (connection exception), 53 (insufficient resources), 57P01–57P03
        // (shutdown, crash recovery, starting up).
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(&*code, "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    };
    if unavailable {
        tracing::warn!(cause = %e, "postgres unavailable");
        ApiError::Unavailable("the user database")
    } else {
        ApiError::Unexpected(anyhow::Error::new(e))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) | Self::OAuth { .. } => StatusCode::BAD_REQUEST,
            Self::InvalidCredentials | Self::InvalidGrant(_) | Self::InvalidToken(_) => {
                StatusCode::UNAUTHORIZED
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::UsernameTaken => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
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
                        r#"Bearer realm="auth-service", error="invalid_token", error_description="{description}""#
                    ),
                ));
            }
            _ => {}
        }
        response.json(ErrorBody::new(self.code(), self.to_string()))
    }
}
