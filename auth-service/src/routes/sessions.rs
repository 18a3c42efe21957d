//! `POST /auth/logout-all`, `GET /auth/sessions`, `DELETE /auth/sessions/{id}`: a user's
//! view of where they are logged in, authenticated by their access token.

use actix_web::{HttpResponse, web};
use shared_claims::Authenticated;

use crate::error::ApiError;
use crate::flows::AuthFlows;

/// 204; every session of the token's `sub` is gone.
pub async fn logout_all(
    user: Authenticated,
    flows: web::Data<AuthFlows>,
) -> Result<HttpResponse, ApiError> {
    flows.end_all_sessions(user.sub).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// 200 with the caller's live sessions, newest first, the token's own marked `current`.
pub async fn list(
    user: Authenticated,
    flows: web::Data<AuthFlows>,
) -> Result<HttpResponse, ApiError> {
    let sessions = flows.sessions(user.sub, user.sid).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(sessions))
}

/// 204; 404 for a session that is not the caller's, existing or not.
pub async fn delete(
    user: Authenticated,
    flows: web::Data<AuthFlows>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    flows.end_session(user.sub, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
