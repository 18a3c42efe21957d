//! The auth-service's OpenAPI 3.1 document, generated from the handlers' annotations and
//! the wire types, rendered once per process and served at `/openapi.json`; and the
//! answers only this service gives, as reusable responses.

use actix_web::web;
use shared_claims::api_response;
use shared_claims::apidoc::{
    ApiDescription, Descriptions, cache_control_no_store, describe_readyz, error_response,
    retry_after,
};
use shared_claims::protocol::TokenResponse;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::{Content, ObjectBuilder, Ref, RefOr, ResponseBuilder, Type};
use utoipa::{IntoParams, OpenApi, ToSchema as _};

/// The service's own operations; [`ApiDescription::new`] adds what every service shares.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "auth-service",
        description = "Accounts, logins and sessions: RS256 access tokens (RFC 9068 \
                       profile, 5 minutes by default) and opaque refresh tokens that rotate \
                       on every use, with reuse detection. Sessions may be bound to a DPoP \
                       key (RFC 9449). Every error answers `{\"error\", \"error_description\"}` \
                       with `Cache-Control: no-store`; answers carrying tokens are never \
                       cached either."
    ),
    paths(
        super::auth::register,
        super::auth::login,
        super::auth::refresh,
        super::auth::logout,
        super::sessions::logout_all,
        super::sessions::list,
        super::sessions::delete,
        super::oauth::token,
        super::oauth::revoke,
        super::well_known::jwks,
        super::well_known::metadata
    ),
    components(
        schemas(TokenResponse),
        responses(
            Tokens,
            BadRequest,
            TokenEndpointError,
            RequestTimeout,
            PayloadTooLarge,
            RateLimited
        )
    ),
    tags(
        (name = "auth", description = "Register, log in, refresh and log out (JSON)"),
        (name = "sessions", description = "Where the caller is logged in, with an access token"),
        (name = "oauth", description = "The same flows as OAuth 2.0 endpoints (RFC 6749, RFC 7009)"),
        (name = "discovery", description = "Public keys and metadata (RFC 7517, RFC 8414)"),
        (name = "operations", description = "Health, readiness and counters")
    )
)]
struct AuthApi;

/// The service's own operations with `GET /readyz`, described alike in every service.
fn document() -> utoipa::openapi::OpenApi {
    let mut document = AuthApi::openapi();
    describe_readyz::<super::health::Readiness>(
        &mut document,
        super::health::READY_WHEN,
        "Postgres and Redis answer",
    );
    document
}

/// The rendered descriptions, each made once.
static DESCRIPTIONS: Descriptions = Descriptions::new(document);

/// The description of the routes mounted with `with_metrics`, as app data for
/// `/openapi.json`.
pub fn description(with_metrics: bool) -> web::Data<ApiDescription> {
    DESCRIPTIONS.get(with_metrics)
}

/// The `DPoP` request header of the endpoints that take refresh tokens or open sessions,
/// described once for all of them.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct DpopProofHeader {
    /// A DPoP proof (RFC 9449 §4) for `POST` and this URL. Opening a session (login,
    /// password grant), it binds the session to its key: the access tokens carry `cnf.jkt`
    /// and `token_type` is `DPoP`; needed when `dpop.required` is set. Presenting the
    /// refresh token of a bound session (refresh, logout, revocation, refresh grant), it
    /// must be signed by the key the session is bound to.
    #[param(
        rename = "DPoP",
        value_type = String,
        required = false,
        pattern = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
    )]
    #[expect(
        dead_code,
        reason = "only described: the handlers read the header themselves"
    )]
    dpop: String,
}

api_response!(
    /// 200 with tokens: never cached (RFC 6749 §5.1).
    Tokens,
    ResponseBuilder::new()
        .description(
            "A token response: an access token, a new refresh token and their lifetimes. \
             `token_type` is `DPoP` when the session is bound to a DPoP key."
        )
        .header("Cache-Control", cache_control_no_store())
        .header(
            "Pragma",
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some("`no-cache`"))
                .build()
        )
        .content(
            "application/json",
            Content::new(Some(RefOr::Ref(Ref::from_schema_name(TokenResponse::name()))))
        )
);

api_response!(
    /// 400 at the JSON endpoints and the revocation endpoint.
    BadRequest,
    error_response(
        "`invalid_request`: the body is not the documented JSON or form (wrong content type, \
         syntax, a missing field or a wrong type), or breaks a rule (username, password \
         length and strength, client id, scope); `invalid_dpop_proof`: a DPoP proof is \
         malformed, stale, replayed, for another URL, of another key than the session's, or \
         missing where the session or `dpop.required` needs one."
    )
);

api_response!(
    /// 400 at the token endpoint (RFC 6749 §5.2).
    TokenEndpointError,
    error_response(
        "RFC 6749 §5.2: `invalid_request` (a missing or malformed parameter, an unsupported \
         scope or client id), `invalid_grant` (wrong username or password, or a refresh \
         token that is unknown, expired, revoked, reused or bound to another key), \
         `unsupported_grant_type`; and `invalid_dpop_proof` as at `/auth/login`."
    )
);

api_response!(
    /// 408: the body did not arrive in time.
    RequestTimeout,
    error_response(
        "`request_timeout`: the request's body did not arrive within \
         `server.body_read_timeout_ms` of its head; the connection is closed."
    )
);

api_response!(
    /// 413: the body is over the limit.
    PayloadTooLarge,
    error_response("`payload_too_large`: the request body is over 16 KiB.")
);

api_response!(
    /// 429: too many password attempts from one address.
    RateLimited,
    error_response(
        "`rate_limited`: too many password attempts from this client address (or for this \
         username from it); retry after `Retry-After` seconds."
    )
    .header("Retry-After", retry_after())
);

#[cfg(test)]
mod tests {
    use shared_claims::apidoc::documented_headers;
    use shared_claims::protocol::paths;

    use super::*;
    use crate::routes::endpoints;

    #[test]
    fn the_document_describes_exactly_the_mounted_routes_and_the_contract() {
        assert_eq!(DESCRIPTIONS.problems(endpoints), Vec::<String>::new());
    }

    #[test]
    fn every_answer_describes_the_headers_of_the_contract() {
        let document = description(true).value().unwrap();

        let tokens = documented_headers(&document, "POST", paths::LOGIN, 200);
        assert!(tokens.contains("Cache-Control") && tokens.contains("Pragma"));
        assert!(documented_headers(&document, "POST", paths::LOGIN, 429).contains("Retry-After"));
        assert!(
            documented_headers(&document, "GET", paths::SESSIONS, 401).contains("WWW-Authenticate")
        );
    }

    #[test]
    fn the_dpop_header_is_described_at_every_endpoint_that_takes_a_proof() {
        let document = description(true).value().unwrap();

        for path in [
            paths::LOGIN,
            paths::REFRESH,
            paths::LOGOUT,
            paths::OAUTH_TOKEN,
            paths::OAUTH_REVOKE,
        ] {
            let parameters = &document["paths"][path]["post"]["parameters"];
            assert_eq!(parameters[0]["name"], "DPoP", "{path}: {parameters}");
            assert_eq!(parameters[0]["in"], "header", "{path}");
            assert_eq!(parameters[0]["required"], false, "{path}");
            assert_eq!(
                parameters[0]["schema"]["type"], "string",
                "{path}: not nullable"
            );
        }
    }

    #[test]
    fn the_token_endpoints_take_forms_and_the_others_json() {
        let document = description(false).value().unwrap();
        let media = |path: &str| {
            document["paths"][path]["post"]["requestBody"]["content"]
                .as_object()
                .map(|content| content.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };

        for path in [paths::OAUTH_TOKEN, paths::OAUTH_REVOKE] {
            assert_eq!(media(path), ["application/x-www-form-urlencoded"], "{path}");
        }
        for path in [paths::REGISTER, paths::LOGIN, paths::REFRESH, paths::LOGOUT] {
            assert_eq!(media(path), ["application/json"], "{path}");
        }
        let form = &document["components"]["schemas"]["TokenForm"];
        assert_eq!(form["required"], serde_json::json!(["grant_type"]));
    }
}
