//! `GET /readyz`: the auth-service's dependencies answer (`GET /healthz`, the process
//! answers, is the same in every service: `shared_claims::apidoc::healthz`).

use actix_web::{HttpResponse, web};
use serde::Serialize;
use shared_claims::apidoc::not_ready;
use utoipa::ToSchema;

use crate::flows::AuthFlows;

/// `GET /readyz` when ready.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Always `ready`.
    #[schema(examples("ready"))]
    status: &'static str,
    /// Always `up`.
    #[schema(examples("up"))]
    postgres: &'static str,
    /// Always `up`.
    #[schema(examples("up"))]
    redis: &'static str,
}

/// When the service is ready, as its API description says (`super::api_doc`).
pub const READY_WHEN: &str =
    "Ready: Postgres and Redis both answer; otherwise 503 naming what is down.";

/// `GET /readyz`: [`READY_WHEN`].
pub async fn readyz(flows: web::Data<AuthFlows>) -> HttpResponse {
    let (postgres, redis) = tokio::join!(flows.users.ping(), flows.sessions.ping());
    let down: Vec<&str> = [("postgres", postgres), ("redis", redis)]
        .into_iter()
        .filter(|(_, up)| !up)
        .map(|(name, _)| name)
        .collect();
    if down.is_empty() {
        return HttpResponse::Ok().json(Readiness {
            status: "ready",
            postgres: "up",
            redis: "up",
        });
    }
    not_ready(&format!("{} unreachable", down.join(" and ")))
}
