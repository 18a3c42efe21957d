//! What the services' answers mean to the client: network failures in words a person
//! understands, error bodies ([`ErrorBody`], `{"error","error_description"}`) as
//! [`CliError`]s, and the `WWW-Authenticate` signal that an access token needs refreshing.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde::Deserialize as _;
use serde_json::Value;
use shared_claims::{ErrorBody, ErrorCode};

use super::{ApiResponse, Service};
use crate::error::CliError;

/// What a network error means to a person.
pub(super) fn reason_of(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "no answer (timed out)".into();
    }
    if error.is_connect() {
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            if let Some(io) = inner.downcast_ref::<std::io::Error>() {
                return match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => {
                        "connection refused (is it running?)".into()
                    }
                    _ => io.to_string(),
                };
            }
            source = inner.source();
        }
        return "cannot connect".into();
    }
    if error.is_builder() {
        return "the URL is not valid".into();
    }
    "the connection failed".into()
}

/// RFC 6750 §3.1: a 401 whose challenge says `invalid_token` (expired, revoked key…),
/// which a refresh may cure.
pub(super) fn is_invalid_token(response: &Response) -> bool {
    let signal = format!(r#"error="{}""#, ErrorCode::InvalidToken);
    response.status() == StatusCode::UNAUTHORIZED
        && response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains(&signal)))
}

/// `Retry-After` in seconds (RFC 9110 §10.2.3; the HTTP-date form is not used by the
/// services and is ignored).
pub(super) fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .map(Duration::from_secs)
}

/// The answer as status and body (JSON when it is JSON, else the text).
pub(super) async fn to_api_response(response: Response) -> Result<ApiResponse, CliError> {
    let status = response.status().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| CliError::Unexpected(format!("cannot read the response: {e}")))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(ApiResponse { status, body })
}

/// A success body as `T`.
pub(super) async fn parse<T: serde::de::DeserializeOwned>(
    response: Response,
) -> Result<T, CliError> {
    response
        .json()
        .await
        .map_err(|e| CliError::Unexpected(format!("unexpected response: {e}")))
}

/// Turns a non-success answer into the error a person understands.
pub(super) async fn api_error(service: Service, response: Response) -> CliError {
    let status = response.status().as_u16();
    let retry_after = retry_after(&response).map(|d| d.as_secs());
    let body: Option<ErrorBody> = response.json().await.ok();
    from_error_body(service, status, body, retry_after)
}

/// The code of an answer that carried no error body (a proxy's HTML page, an empty 502).
const UNKNOWN_ERROR: &str = "unknown_error";

/// The error for `status` with the server's error body, if it sent one.
pub(super) fn from_error_body(
    service: Service,
    status: u16,
    body: Option<ErrorBody>,
    retry_after: Option<u64>,
) -> CliError {
    let (code, description) = match body {
        Some(body) => (body.error, body.error_description),
        None => (ErrorCode::Other(UNKNOWN_ERROR.to_owned()), String::new()),
    };
    let description = if description.is_empty() {
        format!("{} answered {status}", service.name())
    } else {
        description
    };
    match (status, &code) {
        (401, ErrorCode::InvalidCredentials) => CliError::InvalidCredentials,
        (429, _) => CliError::RateLimited(retry_after.unwrap_or(60)),
        (503, _) => CliError::Unavailable {
            service: service.name(),
            description,
        },
        _ => CliError::Rejected {
            status,
            code,
            description,
        },
    }
}

/// The body of a 2xx answer, else its error.
pub(super) fn expect_ok(service: Service, response: ApiResponse) -> Result<Value, CliError> {
    if (200..300).contains(&response.status) {
        Ok(response.body)
    } else {
        Err(from_error_body(
            service,
            response.status,
            ErrorBody::deserialize(&response.body).ok(),
            None,
        ))
    }
}
