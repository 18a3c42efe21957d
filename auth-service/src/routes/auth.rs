//! `POST /auth/register`, `/auth/login`, `/auth/refresh`, `/auth/logout`
//! (README § The API with curl; `/openapi.json`).

use actix_web::{HttpRequest, HttpResponse, web};
use shared_claims::ErrorBody;
use shared_claims::apidoc::Unavailable;
use shared_claims::protocol::{
    LoginRequest, RefreshTokenRequest, RegisterRequest, UserView, paths,
};

use super::api_doc::{
    BadRequest, DpopProofHeader, PayloadTooLarge, RateLimited, RequestTimeout, Tokens,
};
use super::{client_ip, dpop_proof, token_response, user_agent};
use crate::error::ApiError;
use crate::flows::{AuthFlows, LoginAttempt};

/// Creates an account with the role `user`.
///
/// 201 with the new user; 400 for broken rules; 409 for a taken name.
#[utoipa::path(
    post,
    path = paths::REGISTER,
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new user", body = UserView),
        (status = 400, response = BadRequest),
        (status = 409, description = "`username_taken`: the name exists, in any letter case",
         body = ErrorBody, headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable)
    )
)]
pub async fn register(
    req: HttpRequest,
    flows: web::Data<AuthFlows>,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let user = flows
        .register(&body.username, body.password, &client_ip(&req))
        .await?;
    Ok(HttpResponse::Created().json(user))
}

/// Logs in with a password and opens a session.
///
/// 200 with tokens (bound to the DPoP proof's key if one came); 401
/// `invalid_credentials`; 429 `rate_limited`; 400 `invalid_dpop_proof`.
#[utoipa::path(
    post,
    path = paths::LOGIN,
    tag = "auth",
    request_body = LoginRequest,
    params(DpopProofHeader),
    responses(
        (status = 200, response = Tokens),
        (status = 400, response = BadRequest),
        (status = 401, description = "`invalid_credentials`: wrong username or password, \
         the same answer for both", body = ErrorBody,
         headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable)
    )
)]
pub async fn login(
    req: HttpRequest,
    flows: web::Data<AuthFlows>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let proof = dpop_proof(&req, &flows).await?;
    let tokens = flows
        .login(LoginAttempt {
            username: &body.username,
            password: body.password,
            client_id: body.client_id.as_deref(),
            scope: body.scope.as_deref(),
            ip: &client_ip(&req),
            user_agent: user_agent(&req),
            proof,
        })
        .await?;
    Ok(token_response(&tokens))
}

/// Rotates a refresh token: a new access token and a new refresh token, the presented
/// one retired.
///
/// 200 with a rotated pair; 401 `invalid_grant`; 400 `invalid_dpop_proof`.
#[utoipa::path(
    post,
    path = paths::REFRESH,
    tag = "auth",
    request_body = RefreshTokenRequest,
    params(DpopProofHeader),
    responses(
        (status = 200, response = Tokens),
        (status = 400, response = BadRequest),
        (status = 401, description = "`invalid_grant`: the refresh token is unknown, \
         expired, revoked, reused (which ends its session) or bound to another key",
         body = ErrorBody, headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable)
    )
)]
pub async fn refresh(
    req: HttpRequest,
    flows: web::Data<AuthFlows>,
    body: web::Json<RefreshTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let proof = dpop_proof(&req, &flows).await?;
    let tokens = flows.refresh(&body.refresh_token, proof).await?;
    Ok(token_response(&tokens))
}

/// Ends the session of a refresh token.
///
/// 204, whether or not the token named a live session; 400 `invalid_dpop_proof` for a
/// bound session without a proof of its key.
#[utoipa::path(
    post,
    path = paths::LOGOUT,
    tag = "auth",
    request_body = RefreshTokenRequest,
    params(DpopProofHeader),
    responses(
        (status = 204, description = "The session is over (or there was none)"),
        (status = 400, response = BadRequest),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable)
    )
)]
pub async fn logout(
    req: HttpRequest,
    flows: web::Data<AuthFlows>,
    body: web::Json<RefreshTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let proof = dpop_proof(&req, &flows).await?;
    flows.logout(&body.refresh_token, proof).await?;
    Ok(HttpResponse::NoContent().finish())
}
