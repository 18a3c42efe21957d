//! `POST /oauth/token` (RFC 6749 §4.3 password and §6 refresh grants, public clients) and
//! `POST /oauth/revoke` (RFC 7009), over the same flows as `/auth/*`.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use shared_claims::ErrorCode;

use super::{client_ip, dpop_proof, token_response, user_agent};
use crate::error::ApiError;
use crate::flows::{AuthFlows, LoginAttempt};

/// The token request form; which fields are needed depends on `grant_type`.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<SecretString>,
    scope: Option<String>,
    client_id: Option<String>,
    refresh_token: Option<String>,
}

/// The revocation form.
#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    token: Option<String>,
    /// Accepted and ignored: only refresh tokens can be revoked, access tokens are
    /// stateless (RFC 7009 §2.1 lets the server search all types anyway).
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

fn missing(field: &str) -> ApiError {
    ApiError::OAuth {
        code: ErrorCode::InvalidRequest,
        description: format!("the {field} parameter is required"),
    }
}

/// RFC 6749 §5.1 on success, §5.2 on failure.
pub async fn token(
    req: HttpRequest,
    flows: web::Data<AuthFlows>,
    form: web::Form<TokenForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    let tokens = match form.grant_type.as_deref() {
        Some("password") => {
            let username = form.username.ok_or_else(|| missing("username"))?;
            let password = form.password.ok_or_else(|| missing("password"))?;
            let proof = dpop_proof(&req, &flows).await?;
            flows
                .login(LoginAttempt {
                    username: &username,
                    password,
                    client_id: form.client_id.as_deref(),
                    scope: form.scope.as_deref(),
                    ip: &client_ip(&req),
                    user_agent: user_agent(&req),
                    proof,
                })
                .await
        }
        Some("refresh_token") => {
            let refresh_token = form.refresh_token.ok_or_else(|| missing("refresh_token"))?;
            let proof = dpop_proof(&req, &flows).await?;
            flows.refresh(&refresh_token, proof).await
        }
        Some(_) => {
            return Err(ApiError::OAuth {
                code: ErrorCode::UnsupportedGrantType,
                description: "supported grant types: password, refresh_token".into(),
            });
        }
        None => return Err(missing("grant_type")),
    }
    .map_err(ApiError::into_oauth)?;
    Ok(token_response(&tokens))
}

/// 200 whether or not the token was live (RFC 7009 §2.2); 400 `invalid_dpop_proof` for a
/// bound session without a proof of its key.
pub async fn revoke(
    req: HttpRequest,
    flows: web::Data<AuthFlows>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, ApiError> {
    let token = form.into_inner().token.ok_or_else(|| missing("token"))?;
    let proof = dpop_proof(&req, &flows).await?;
    flows.logout(&token, proof).await?;
    Ok(HttpResponse::Ok().finish())
}
