//! `GET /.well-known/jwks.json` (RFC 7517 §5) and
//! `GET /.well-known/oauth-authorization-server` (RFC 8414 §2).

use actix_web::{HttpResponse, web};
use serde_json::json;
use shared_claims::JwkSet;
use shared_claims::protocol::paths;

/// The public documents, rendered once at start-up.
#[derive(Debug, Clone)]
pub struct PublishedKeys {
    jwks: String,
    metadata: String,
}

impl PublishedKeys {
    /// Renders the JWKS and the metadata for an issuer whose public base URL is `issuer`.
    pub fn new(
        jwks: &JwkSet,
        issuer: &str,
        dpop_algorithms: &[shared_claims::dpop::DpopAlgorithm],
    ) -> Result<Self, serde_json::Error> {
        let base = issuer.trim_end_matches('/');
        let metadata = json!({
            "issuer": issuer,
            "token_endpoint": format!("{base}{}", paths::OAUTH_TOKEN),
            "jwks_uri": format!("{base}{}", paths::JWKS),
            "revocation_endpoint": format!("{base}{}", paths::OAUTH_REVOKE),
            "grant_types_supported": ["password", "refresh_token"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": crate::flows::SUPPORTED_SCOPES,
            // RFC 9449 §5.1.
            "dpop_signing_alg_values_supported": dpop_algorithms
                .iter()
                .map(|alg| alg.as_str())
                .collect::<Vec<_>>(),
        });
        Ok(Self {
            jwks: serde_json::to_string(jwks)?,
            metadata: serde_json::to_string(&metadata)?,
        })
    }
}

/// The verification keys. Cacheable briefly: verifiers refetch on an unknown `kid` anyway.
pub async fn jwks(keys: web::Data<PublishedKeys>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(keys.jwks.clone())
}

/// Authorization-server metadata.
pub async fn metadata(keys: web::Data<PublishedKeys>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(keys.metadata.clone())
}
