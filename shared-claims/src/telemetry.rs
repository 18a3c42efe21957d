//! Logging: `RUST_LOG` filters, `LOG_FORMAT=json` for machine-readable lines, and one
//! line per request with its id, method, path (never the query), status and duration,
//! also counted in the app's [`Metrics`] when it has them.

use std::io::IsTerminal as _;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument as _;
use tracing_subscriber::EnvFilter;

use crate::metrics::Metrics;

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // Colour codes only for a person at a terminal, never into a file or a pipe.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .with_target(true);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// The longest request id taken from a client.
const MAX_REQUEST_ID_LEN: usize = 64;

/// The client's `X-Request-Id` when it is a plain token (1–64 of `[A-Za-z0-9._:-]`), so a
/// caller can follow its request through our logs; anything else (missing, too long,
/// spaces, quotes, control characters that could forge log lines) is replaced by a fresh
/// UUID.
pub fn request_id(header: Option<&HeaderValue>) -> String {
    header
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// Wraps each request in a span carrying its id (the client's `X-Request-Id` if valid,
/// else a fresh one), so every log line of the request names it; the id is echoed as
/// `X-Request-Id`.
pub async fn request_span(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let request_id = request_id(req.headers().get("x-request-id"));
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().clone();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let _entered = span.enter();
    match &result {
        Ok(response) => {
            let elapsed = started.elapsed();
            if let Some(metrics) = &metrics {
                metrics.observe(&route, &method, response.status().as_u16(), elapsed);
            }
            tracing::info!(
                status = response.status().as_u16(),
                elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                "request finished"
            );
        }
        Err(error) => tracing::warn!(%error, "request failed before a response"),
    }
    result.map(|mut response| {
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("x-request-id"), value);
        }
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_client_request_id_is_kept_and_anything_else_replaced() {
        let keep = HeaderValue::from_static("client-42.retry_1:a");
        assert_eq!(request_id(Some(&keep)), "client-42.retry_1:a");
        for bad in ["", "two words", "quote\"d", &"x".repeat(65), "line\\nbreak"] {
            let header = HeaderValue::from_str(bad).ok();
            let id = request_id(header.as_ref());
            assert_ne!(id, bad);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{bad:?} → {id}");
        }
        assert!(uuid::Uuid::parse_str(&request_id(None)).is_ok());
    }
}
