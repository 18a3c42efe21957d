//! The protected API (README § The API with curl; `/openapi.json`) and the operational endpoints.

use actix_web::{HttpResponse, web};
use serde_json::json;
use shared_claims::protocol::{MeResponse, paths};
use shared_claims::{AuthError, Authenticated, BearerAuth, ErrorBody, ErrorCode};

/// Mounts every route; `/metrics` only when it has no listener of its own
/// (`metrics.bind`).
pub fn configure(cfg: &mut web::ServiceConfig, with_metrics: bool) {
    cfg.route(paths::API_PUBLIC, web::get().to(public))
        .route(paths::API_ME, web::get().to(me))
        .route(paths::API_ADMIN, web::get().to(admin))
        .route(paths::HEALTHZ, web::get().to(healthz))
        .route(paths::READYZ, web::get().to(readyz));
    if with_metrics {
        cfg.route(
            paths::METRICS,
            web::get().to(shared_claims::metrics::endpoint),
        );
    }
}

/// Anyone may call this.
async fn public() -> HttpResponse {
    HttpResponse::Ok().json(json!({"message": "this endpoint needs no token"}))
}

/// Who the token says the caller is.
async fn me(user: Authenticated) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(MeResponse::from(user.claims()))
}

/// Only for tokens with role `admin`; 403 `insufficient_scope` otherwise.
async fn admin(user: Authenticated) -> Result<HttpResponse, AuthError> {
    let claims = user.require_role("admin")?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"message": "welcome, administrator", "sub": claims.sub})))
}

/// Alive.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready once at least one verification key is loaded.
async fn readyz(auth: web::Data<BearerAuth>) -> HttpResponse {
    let keys = auth.verifier().keys().len();
    if keys == 0 {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(ErrorBody::new(
                ErrorCode::TemporarilyUnavailable,
                "not ready: no verification key loaded yet",
            ));
    }
    HttpResponse::Ok().json(json!({"status": "ready", "keys": keys}))
}

/// Unknown paths and methods.
pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(ErrorBody::new(ErrorCode::NotFound, "no such resource"))
}
