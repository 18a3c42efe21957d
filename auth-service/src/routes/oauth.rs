//! `POST /oauth/token` (RFC 6749 §4.3 password and §6 refresh grants, public clients) and
//! `POST /oauth/revoke` (RFC 7009), over the same flows as `/auth/*`.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use shared_claims::ErrorCode;
use shared_claims::apidoc::Unavailable;
use shared_claims::protocol::paths;
use utoipa::ToSchema;

use super::api_doc::{
    DpopProofHeader, PayloadTooLarge, RateLimited, RequestTimeout, TokenEndpointError, Tokens,
};
use super::{client_ip, dpop_proof, token_response, user_agent};
use crate::error::ApiError;
use crate::flows::{AuthFlows, LoginAttempt};

/// The token request form; which fields are needed depends on `grant_type`. Every field
/// is optional here so that a missing one gets the RFC 6749 §5.2 error, not a generic one.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenForm {
    /// `password` (RFC 6749 §4.3) or `refresh_token` (§6).
    #[schema(value_type = String, required = true, examples("password", "refresh_token"))]
    grant_type: Option<String>,
    /// With `grant_type=password`.
    #[schema(value_type = String, required = false)]
    username: Option<String>,
    /// With `grant_type=password`.
    #[schema(value_type = String, required = false, format = Password)]
    password: Option<SecretString>,
    /// With `grant_type=password`: the scopes asked for, space-delimited (all supported
    /// ones without).
    #[schema(value_type = String, required = false, examples("read write"))]
    scope: Option<String>,
    /// With `grant_type=password`: the public client's id (`[A-Za-z0-9_.-]{1,64}`).
    #[schema(value_type = String, required = false, pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    client_id: Option<String>,
    /// With `grant_type=refresh_token`. A secret: kept out of `Debug`, like the password.
    #[schema(value_type = String, required = false)]
    refresh_token: Option<SecretString>,
}

/// The revocation form (RFC 7009 §2.1).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RevokeForm {
    /// The refresh token to revoke (a secret: kept out of `Debug`).
    #[schema(value_type = String, required = true)]
    token: Option<SecretString>,
    /// Accepted and ignored: only refresh tokens can be revoked, access tokens are
    /// stateless (RFC 7009 §2.1 lets the server search all types anyway).
    #[allow(dead_code)]
    #[schema(value_type = String, required = false, examples("refresh_token"))]
    token_type_hint: Option<String>,
}

fn missing(field: &str) -> ApiError {
    ApiError::OAuth {
        code: ErrorCode::InvalidRequest,
        description: format!("the {field} parameter is required"),
    }
}

/// The OAuth 2.0 token endpoint: the password and refresh-token grants for public clients.
///
/// RFC 6749 §5.1 on success, §5.2 on failure (where a wrong password is a 400
/// `invalid_grant`, unlike at `/auth/login`).
#[utoipa::path(
    post,
    path = paths::OAUTH_TOKEN,
    tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    params(DpopProofHeader),
    responses(
        (status = 200, response = Tokens),
        (status = 400, response = TokenEndpointError),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable)
    )
)]
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
            flows.refresh(refresh_token.expose_secret(), proof).await
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

/// The OAuth 2.0 revocation endpoint (RFC 7009): ends the session of a refresh token.
///
/// 200 whether or not the token was live (RFC 7009 §2.2); 400 `invalid_dpop_proof` for a
/// bound session without a proof of its key.
#[utoipa::path(
    post,
    path = paths::OAUTH_REVOKE,
    tag = "oauth",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    params(DpopProofHeader),
    responses(
        (status = 200, description = "The token's session is over (or there was none)"),
        (status = 400, response = super::api_doc::BadRequest),
        (status = 408, response = RequestTimeout),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable)
    )
)]
pub async fn revoke(
    req: HttpRequest,
    flows: web::Data<AuthFlows>,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, ApiError> {
    let token = form.into_inner().token.ok_or_else(|| missing("token"))?;
    let proof = dpop_proof(&req, &flows).await?;
    flows.logout(token.expose_secret(), proof).await?;
    Ok(HttpResponse::Ok().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_keep_refresh_tokens_and_passwords_out_of_debug() {
        let token: TokenForm = serde_urlencoded::from_str(
            "grant_type=refresh_token&refresh_token=SECRET-REFRESH&password=SECRET-PASSWORD",
        )
        .unwrap();
        let revoke: RevokeForm = serde_urlencoded::from_str("token=SECRET-REFRESH").unwrap();

        for printed in [format!("{token:?}"), format!("{revoke:?}")] {
            assert!(!printed.contains("SECRET"), "{printed}");
        }
    }
}
