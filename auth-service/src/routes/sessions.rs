//! `POST /auth/logout-all`, `GET /auth/sessions`, `DELETE /auth/sessions/{id}`: a user's
//! view of where they are logged in, authenticated by their access token.
//!
//! Access tokens outlive their session, so each call also checks that the token's session
//! (`sid`) is still live. Listing needs the scope `read`; ending sessions changes state and
//! needs `write` (RFC 6750 §3.1 `insufficient_scope` otherwise).

use actix_web::{HttpResponse, web};
use shared_claims::Authenticated;

use crate::flows::AuthFlows;

/// The scope that lists sessions.
pub const LIST_SCOPE: &str = "read";
/// The scope that ends sessions.
pub const END_SCOPE: &str = "write";

/// 204; every session of the token's `sub` is gone.
pub async fn logout_all(
    user: Authenticated,
    flows: web::Data<AuthFlows>,
) -> Result<HttpResponse, actix_web::Error> {
    user.require_scope(END_SCOPE)?;
    flows.require_live_session(user.sub, user.sid).await?;
    flows.end_all_sessions(user.sub).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// 200 with the caller's live sessions, newest first, the token's own marked `current`.
pub async fn list(
    user: Authenticated,
    flows: web::Data<AuthFlows>,
) -> Result<HttpResponse, actix_web::Error> {
    user.require_scope(LIST_SCOPE)?;
    flows.require_live_session(user.sub, user.sid).await?;
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
) -> Result<HttpResponse, actix_web::Error> {
    user.require_scope(END_SCOPE)?;
    flows.require_live_session(user.sub, user.sid).await?;
    flows.end_session(user.sub, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
