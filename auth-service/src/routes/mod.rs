//! HTTP handlers: thin adapters from requests to [`crate::flows`] and back, as one route
//! table ([`endpoints`]) that the server mounts and the OpenAPI document ([`api_doc`])
//! describes.

mod api_doc;
mod auth;
mod health;
mod oauth;
mod sessions;
mod well_known;

use actix_web::{HttpRequest, HttpResponse, web};
use shared_claims::apidoc::{self, Endpoint};
use shared_claims::protocol::paths;

use crate::client_address::ClientAddresses;
use crate::error::ApiError;
use crate::flows::AuthFlows;
use crate::tokens::TokenResponse;

pub use api_doc::description;
pub use well_known::PublishedKeys;

/// Mounts every route of [`endpoints`], with the service's API description.
pub fn configure(cfg: &mut web::ServiceConfig, with_metrics: bool) {
    cfg.app_data(description(with_metrics));
    apidoc::mount(cfg, endpoints(with_metrics));
}

/// Every route of the auth-service; `/metrics` only when it is not served on a listener
/// of its own (`metrics.bind`).
pub fn endpoints(with_metrics: bool) -> Vec<Endpoint> {
    let mut endpoints = vec![
        Endpoint::post(paths::REGISTER, auth::register),
        Endpoint::post(paths::LOGIN, auth::login),
        Endpoint::post(paths::REFRESH, auth::refresh),
        Endpoint::post(paths::LOGOUT, auth::logout),
        Endpoint::post(paths::LOGOUT_ALL, sessions::logout_all),
        Endpoint::get(paths::SESSIONS, sessions::list),
        Endpoint::delete(paths::SESSION, sessions::delete),
        Endpoint::post(paths::OAUTH_TOKEN, oauth::token),
        Endpoint::post(paths::OAUTH_REVOKE, oauth::revoke),
        Endpoint::get(paths::JWKS, well_known::jwks),
        Endpoint::get(paths::AUTHORIZATION_SERVER_METADATA, well_known::metadata),
        Endpoint::get(paths::READYZ, health::readyz),
    ];
    endpoints.extend(apidoc::common_endpoints(with_metrics));
    endpoints
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
        .check(header.as_deref(), req.path(), flows.clock.now_secs())
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
