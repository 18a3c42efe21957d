//! `GET /.well-known/jwks.json` (RFC 7517 §5) and
//! `GET /.well-known/oauth-authorization-server` (RFC 8414 §2).

use actix_web::{HttpResponse, web};
use serde::Serialize;
use shared_claims::JwkSet;
use shared_claims::protocol::paths;
use utoipa::ToSchema;

/// The public documents, rendered once at start-up and served without a copy.
#[derive(Debug, Clone)]
pub struct PublishedKeys {
    jwks: web::Bytes,
    metadata: web::Bytes,
}

/// Authorization-server metadata (RFC 8414 §2, RFC 9449 §5.1). URLs are absolute, built
/// from `jwt.issuer`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationServerMetadata {
    /// The public base URL, the `iss` of every token.
    issuer: String,
    /// `POST /oauth/token`.
    token_endpoint: String,
    /// `GET /.well-known/jwks.json`.
    jwks_uri: String,
    /// `POST /oauth/revoke`.
    revocation_endpoint: String,
    /// `password` and `refresh_token`.
    grant_types_supported: [&'static str; 2],
    /// None: there is no authorization endpoint.
    response_types_supported: [&'static str; 0],
    /// `none`: clients are public.
    token_endpoint_auth_methods_supported: [&'static str; 1],
    /// `none`: clients are public.
    revocation_endpoint_auth_methods_supported: [&'static str; 1],
    /// The scopes a token may be granted.
    scopes_supported: &'static [&'static str],
    /// The algorithms DPoP proofs may use.
    dpop_signing_alg_values_supported: Vec<&'static str>,
}

impl PublishedKeys {
    /// Renders the JWKS and the metadata for an issuer whose public base URL is `issuer`.
    pub fn new(
        jwks: &JwkSet,
        issuer: &str,
        dpop_algorithms: &[shared_claims::dpop::DpopAlgorithm],
    ) -> Result<Self, serde_json::Error> {
        let base = issuer.trim_end_matches('/');
        let metadata = AuthorizationServerMetadata {
            issuer: issuer.to_owned(),
            token_endpoint: format!("{base}{}", paths::OAUTH_TOKEN),
            jwks_uri: format!("{base}{}", paths::JWKS),
            revocation_endpoint: format!("{base}{}", paths::OAUTH_REVOKE),
            grant_types_supported: ["password", "refresh_token"],
            response_types_supported: [],
            token_endpoint_auth_methods_supported: ["none"],
            revocation_endpoint_auth_methods_supported: ["none"],
            scopes_supported: &crate::flows::SUPPORTED_SCOPES,
            dpop_signing_alg_values_supported: dpop_algorithms
                .iter()
                .map(|alg| alg.as_str())
                .collect(),
        };
        Ok(Self {
            jwks: serde_json::to_vec(jwks)?.into(),
            metadata: serde_json::to_vec(&metadata)?.into(),
        })
    }
}

/// The verification keys (RFC 7517 §5).
///
/// Cacheable briefly: verifiers refetch on an unknown `kid` anyway.
#[utoipa::path(
    get,
    path = paths::JWKS,
    tag = "discovery",
    responses((status = 200, description = "The JWK Set: every RSA key tokens may be \
               signed with, `use: sig`, `alg: RS256`, `kid` its RFC 7638 thumbprint",
               body = JwkSet, content_type = "application/jwk-set+json",
               headers(("Cache-Control" = String, description = "`public, max-age=300`"))))
)]
pub async fn jwks(keys: web::Data<PublishedKeys>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(keys.jwks.clone())
}

/// Authorization-server metadata (RFC 8414).
#[utoipa::path(
    get,
    path = paths::AUTHORIZATION_SERVER_METADATA,
    tag = "discovery",
    responses((status = 200, description = "The metadata", body = AuthorizationServerMetadata,
               headers(("Cache-Control" = String, description = "`public, max-age=300`"))))
)]
pub async fn metadata(keys: web::Data<PublishedKeys>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(keys.metadata.clone())
}
