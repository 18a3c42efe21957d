//! `GET /healthz` (the process answers) and `GET /readyz` (its dependencies answer).

use actix_web::{HttpResponse, web};
use serde_json::json;
use shared_claims::{ErrorBody, ErrorCode};

use crate::flows::AuthFlows;

/// Alive: the process serves HTTP.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Ready: Postgres and Redis both answer; otherwise 503 naming what is down.
pub async fn readyz(flows: web::Data<AuthFlows>) -> HttpResponse {
    let (postgres, redis) = tokio::join!(flows.users.ping(), flows.sessions.ping());
    let down: Vec<&str> = [("postgres", postgres), ("redis", redis)]
        .into_iter()
        .filter(|(_, up)| !up)
        .map(|(name, _)| name)
        .collect();
    if down.is_empty() {
        return HttpResponse::Ok()
            .json(json!({"status": "ready", "postgres": "up", "redis": "up"}));
    }
    HttpResponse::ServiceUnavailable()
        .insert_header(("Retry-After", "1"))
        .json(ErrorBody::new(
            ErrorCode::TemporarilyUnavailable,
            format!("not ready: {} unreachable", down.join(" and ")),
        ))
}
