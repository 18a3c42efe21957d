//! The protected API (README § The API with curl; `/openapi.json`) and the operational
//! endpoints, as one route table ([`endpoints`]) that the server mounts and the OpenAPI
//! document ([`api_doc`]) describes.

mod api_doc;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use shared_claims::apidoc::{self, AuthBadRequest, Endpoint, Forbidden, Unauthorized};
use shared_claims::protocol::{MeResponse, paths};
use shared_claims::{AuthError, Authenticated, BearerAuth, ErrorBody, ErrorCode};
use utoipa::ToSchema;
use uuid::Uuid;

pub use api_doc::description;

/// Mounts every route of [`endpoints`], with the service's API description.
pub fn configure(cfg: &mut web::ServiceConfig, with_metrics: bool) {
    cfg.app_data(description(with_metrics));
    apidoc::mount(cfg, endpoints(with_metrics));
}

/// Every route of the service; `/metrics` only when it has no listener of its own
/// (`metrics.bind`).
pub fn endpoints(with_metrics: bool) -> Vec<Endpoint> {
    let mut endpoints = vec![
        Endpoint::get(paths::API_PUBLIC, public),
        Endpoint::get(paths::API_ME, me),
        Endpoint::get(paths::API_ADMIN, admin),
        Endpoint::get(paths::READYZ, readyz),
    ];
    endpoints.extend(apidoc::common_endpoints(with_metrics));
    endpoints
}

/// A greeting, the body of the unprotected and the admin route.
#[derive(Debug, Serialize, ToSchema)]
struct Message {
    /// For people.
    #[schema(examples("this endpoint needs no token"))]
    message: &'static str,
}

/// The body of `GET /api/admin`.
#[derive(Debug, Serialize, ToSchema)]
struct AdminGreeting {
    /// For people.
    #[schema(examples("welcome, administrator"))]
    message: &'static str,
    /// The administrator's user id.
    sub: Uuid,
}

/// `GET /readyz` when ready.
#[derive(Debug, Serialize, ToSchema)]
struct Readiness {
    /// Always `ready`.
    #[schema(examples("ready"))]
    status: &'static str,
    /// How many verification keys are loaded.
    keys: usize,
}

/// Anyone may call this.
#[utoipa::path(
    get,
    path = paths::API_PUBLIC,
    tag = "api",
    responses((status = 200, description = "A greeting", body = Message))
)]
async fn public() -> HttpResponse {
    HttpResponse::Ok().json(Message {
        message: "this endpoint needs no token",
    })
}

/// Who the token says the caller is.
#[utoipa::path(
    get,
    path = paths::API_ME,
    tag = "api",
    security(("bearer" = []), ("dpop" = [], "dpop_proof" = [])),
    responses(
        (status = 200, description = "The caller, as the access token names them",
         body = MeResponse,
         headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, response = AuthBadRequest),
        (status = 401, response = Unauthorized)
    )
)]
async fn me(user: Authenticated) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(MeResponse::from(user.claims()))
}

/// Only for tokens with role `admin`; 403 `insufficient_scope` otherwise.
#[utoipa::path(
    get,
    path = paths::API_ADMIN,
    tag = "api",
    security(("bearer" = []), ("dpop" = [], "dpop_proof" = [])),
    responses(
        (status = 200, description = "A greeting for an administrator", body = AdminGreeting,
         headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, response = AuthBadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden)
    )
)]
async fn admin(user: Authenticated) -> Result<HttpResponse, AuthError> {
    let claims = user.require_role("admin")?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(AdminGreeting {
            message: "welcome, administrator",
            sub: claims.sub,
        }))
}

/// When the service is ready, as its API description says ([`api_doc`]).
const READY_WHEN: &str = "Ready once at least one verification key is loaded.";

/// `GET /readyz`: [`READY_WHEN`].
async fn readyz(auth: web::Data<BearerAuth>) -> HttpResponse {
    let keys = auth.verifier().keys().len();
    if keys == 0 {
        return apidoc::not_ready("no verification key loaded yet");
    }
    HttpResponse::Ok().json(Readiness {
        status: "ready",
        keys,
    })
}

/// Unknown paths and methods.
pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(ErrorBody::new(ErrorCode::NotFound, "no such resource"))
}
