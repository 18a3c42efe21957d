//! `GET /healthz`, the same in every service: the process serves HTTP. Readiness
//! (`/readyz`) depends on what each service needs, so each service answers it itself.

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::protocol::paths;

/// The answer of `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    #[schema(examples("ok"))]
    status: &'static str,
}

/// Alive: the process serves HTTP.
#[utoipa::path(
    get,
    path = paths::HEALTHZ,
    tag = "operations",
    responses((status = 200, description = "Alive", body = Liveness))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "ok" })
}

/// The 503 of a `GET /readyz` that is not ready, the same in every service: the JSON error
/// body saying what is missing (`reason`), not to be cached, retried after a second (the
/// documented [`super::Unavailable`] answer).
pub fn not_ready(reason: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Retry-After", "1"))
        .json(crate::ErrorBody::new(
            crate::ErrorCode::TemporarilyUnavailable,
            format!("not ready: {reason}"),
        ))
}

/// The operation of [`healthz`], merged into every service's document.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(healthz))]
pub struct HealthApi;
