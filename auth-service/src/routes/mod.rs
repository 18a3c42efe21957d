//! HTTP handlers: thin adapters from requests to [`crate::flows`] and back.

mod auth;
mod health;
mod oauth;
mod sessions;
mod well_known;

use actix_web::{HttpRequest, HttpResponse, web};
use shared_claims::protocol::paths;

use crate::client_address::ClientAddresses;
use crate::error::ApiError;
use crate::flows::AuthFlows;
use crate::tokens::TokenResponse;

pub use well_known::PublishedKeys;

/// Mounts every route of the auth-service; `/metrics` only when it is not served on a
/// listener of its own (`metrics.bind`).
pub fn configure(cfg: &mut web::ServiceConfig, with_metrics: bool) {
    cfg.route(paths::REGISTER, web::post().to(auth::register))
        .route(paths::LOGIN, web::post().to(auth::login))
        .route(paths::REFRESH, web::post().to(auth::refresh))
        .route(paths::LOGOUT, web::post().to(auth::logout))
        .route(paths::LOGOUT_ALL, web::post().to(sessions::logout_all))
        .route(paths::SESSIONS, web::get().to(sessions::list))
        .route(paths::SESSION, web::delete().to(sessions::delete))
        .route(paths::OAUTH_TOKEN, web::post().to(oauth::token))
        .route(paths::OAUTH_REVOKE, web::post().to(oauth::revoke))
        .route(paths::JWKS, web::get().to(well_known::jwks))
        .route(
            paths::AUTHORIZATION_SERVER_METADATA,
            web::get().to(well_known::metadata),
        )
        .route(paths::HEALTHZ, web::get().to(health::healthz))
        .route(paths::READYZ, web::get().to(health::readyz));
    if with_metrics {
        cfg.route(
            paths::METRICS,
            web::get().to(shared_claims::metrics::endpoint),
        );
    }
}

/// Answers unknown paths and methods with the JSON error body.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// A token response with `Cache-Control: no-store` (RFC 6749 §5.1).
fn token_response(body: &TokenResponse) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(body)
}

/// The request's DPoP proof, verified for a `POST` to this path and used up; `None`
/// without one (when none is required).
async fn dpop_proof(
    req: &HttpRequest,
    flows: &AuthFlows,
) -> Result<Option<shared_claims::dpop::VerifiedProof>, ApiError> {
    let header = shared_claims::dpop_proof_header(req)?;
    flows
        .dpop
        .check(
            header.as_deref(),
            req.path(),
            crate::flows::now_ms().div_euclid(1000),
        )
        .await
}

/// The client's address bucket, for rate limiting (see [`crate::client_address`]).
fn client_ip(req: &HttpRequest) -> String {
    req.app_data::<web::Data<ClientAddresses>>().map_or_else(
        || ClientAddresses::default().of(req),
        |addresses| addresses.of(req),
    )
}

fn user_agent(req: &HttpRequest) -> &str {
    req.headers()
        .get("User-Agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}
