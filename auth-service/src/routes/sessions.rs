//! `POST /auth/logout-all`, `GET /auth/sessions`, `DELETE /auth/sessions/{id}`: a user's
//! view of where they are logged in, authenticated by their access token.
//!
//! Access tokens outlive their session, so each call also checks that the token's session
//! (`sid`) is still live. Listing needs the scope `read`; ending sessions changes state and
//! needs `write` (RFC 6750 §3.1 `insufficient_scope` otherwise).

use actix_web::{HttpResponse, web};
use shared_claims::Authenticated;
use shared_claims::apidoc::{AuthBadRequest, Forbidden, NotFound, Unauthorized, Unavailable};
use shared_claims::protocol::{SessionView, paths};

use crate::flows::AuthFlows;

/// The scope that lists sessions.
pub const LIST_SCOPE: &str = "read";
/// The scope that ends sessions.
pub const END_SCOPE: &str = "write";

/// Ends every session of the caller (scope `write`).
///
/// 204; every session of the token's `sub` is gone.
#[utoipa::path(
    post,
    path = paths::LOGOUT_ALL,
    tag = "sessions",
    security(("bearer" = []), ("dpop" = [], "dpop_proof" = [])),
    responses(
        (status = 204, description = "Every session of the user is over"),
        (status = 400, response = AuthBadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable)
    )
)]
pub async fn logout_all(
    user: Authenticated,
    flows: web::Data<AuthFlows>,
) -> Result<HttpResponse, actix_web::Error> {
    user.require_scope(END_SCOPE)?;
    flows.require_live_session(user.sub, user.sid).await?;
    flows.end_all_sessions(user.sub).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lists the caller's live sessions (scope `read`).
///
/// 200 with the caller's live sessions, newest first, the token's own marked `current`.
#[utoipa::path(
    get,
    path = paths::SESSIONS,
    tag = "sessions",
    security(("bearer" = []), ("dpop" = [], "dpop_proof" = [])),
    responses(
        (status = 200, description = "The live sessions, newest first",
         body = Vec<SessionView>,
         headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, response = AuthBadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable)
    )
)]
pub async fn list(
    user: Authenticated,
    flows: web::Data<AuthFlows>,
) -> Result<HttpResponse, actix_web::Error> {
    user.require_scope(LIST_SCOPE)?;
    let sessions = flows.sessions(user.sub, user.sid).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(sessions))
}

/// Ends one of the caller's sessions (scope `write`).
///
/// 204; 404 for a session that is not the caller's, existing or not.
#[utoipa::path(
    delete,
    path = paths::SESSION,
    tag = "sessions",
    params(("id" = uuid::Uuid, Path, description = "The session's id (`sid`)")),
    security(("bearer" = []), ("dpop" = [], "dpop_proof" = [])),
    responses(
        (status = 204, description = "The session is over"),
        (status = 400, response = AuthBadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable)
    )
)]
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
