//! `POST /auth/register`, `/auth/login`, `/auth/refresh`, `/auth/logout`
//! (README § The API with curl; `/openapi.json`).

use actix_web::{HttpRequest, HttpResponse, web};
use shared_claims::protocol::{LoginRequest, RefreshTokenRequest, RegisterRequest};

use super::{client_ip, dpop_proof, token_response, user_agent};
use crate::error::ApiError;
use crate::flows::{AuthFlows, LoginAttempt};

/// 201 with the new user; 400 for broken rules; 409 for a taken name.
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

/// 200 with tokens (bound to the DPoP proof's key if one came); 401
/// `invalid_credentials`; 429 `rate_limited`; 400 `invalid_dpop_proof`.
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

/// 200 with a rotated pair; 401 `invalid_grant`; 400 `invalid_dpop_proof`.
pub async fn refresh(
    req: HttpRequest,
    flows: web::Data<AuthFlows>,
    body: web::Json<RefreshTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let proof = dpop_proof(&req, &flows).await?;
    let tokens = flows.refresh(&body.refresh_token, proof).await?;
    Ok(token_response(&tokens))
}

/// 204, whether or not the token named a live session; 400 `invalid_dpop_proof` for a
/// bound session without a proof of its key.
pub async fn logout(
    req: HttpRequest,
    flows: web::Data<AuthFlows>,
    body: web::Json<RefreshTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let proof = dpop_proof(&req, &flows).await?;
    flows.logout(&body.refresh_token, proof).await?;
    Ok(HttpResponse::NoContent().finish())
}
