//! `GET /healthz`, the same in every service: the process serves HTTP. Readiness
//! (`/readyz`) depends on what each service needs, so each service answers it itself;
//! its 503 and its description are the same everywhere ([`not_ready`],
//! [`describe_readyz`]).

use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::openapi::path::OperationBuilder;
use utoipa::openapi::{Content, HttpMethod, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa::{ToResponse, ToSchema};

use super::Unavailable;
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

/// Adds `GET /readyz` to a service's `document`: `summary` says when the service is
/// ready, and its 200 answer, `ready` (what was checked), carries `Body`; not ready, the
/// shared 503 [`Unavailable`] of [`not_ready`]. Described here rather than on each
/// service's handler so that the operation reads the same in every service.
pub fn describe_readyz<Body: ToSchema>(document: &mut OpenApi, summary: &str, ready: &str) {
    let (unavailable, unavailable_response) = Unavailable::response();
    let operation = OperationBuilder::new()
        .tag("operations")
        .operation_id(Some("readyz"))
        .summary(Some(summary))
        .response(
            "200",
            ResponseBuilder::new().description(ready).content(
                "application/json",
                Content::new(Some(RefOr::Ref(Ref::from_schema_name(Body::name())))),
            ),
        )
        .response("503", RefOr::Ref(Ref::from_response_name(unavailable)))
        .build();
    document
        .paths
        .add_path_operation(paths::READYZ, vec![HttpMethod::Get], operation);
    let mut schemas = vec![(Body::name().into_owned(), Body::schema())];
    Body::schemas(&mut schemas);
    let components = document.components.get_or_insert_with(Default::default);
    components.schemas.extend(schemas);
    components
        .responses
        .insert(unavailable.to_owned(), unavailable_response);
}

/// The operation of [`healthz`], merged into every service's document.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(healthz))]
pub struct HealthApi;
