//! The error answers both services give, as reusable OpenAPI responses, and the headers
//! they carry: `Cache-Control: no-store` on every error, `WWW-Authenticate` on refused
//! credentials (RFC 6750 §3, RFC 9449 §7.1), `Retry-After` when retrying later helps.
//!
//! A handler's `#[utoipa::path]` names them (`(status = 401, response = Unauthorized)`),
//! and [`super::describe_readyz`] names `Unavailable`; `DocsApi`, merged into every
//! service's document, lists them under `components(responses(...))`.

use utoipa::ToSchema as _;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::{Content, ObjectBuilder, Ref, RefOr, ResponseBuilder, Type, schema::Schema};

use crate::protocol::ErrorBody;

fn string_schema() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).into()
}

/// `Cache-Control: no-store`: on every error answer and every answer carrying tokens or
/// session data, so no cache keeps them.
pub fn cache_control_no_store() -> Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["no-store"])),
        ))
        .description(Some("`no-store`: never kept by a cache."))
        .build()
}

/// `Retry-After: <seconds>` (RFC 9110 §10.2.3).
pub fn retry_after() -> Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        ))
        .description(Some("Seconds to wait before trying again."))
        .build()
}

/// The challenge of a refused or missing access token.
pub fn www_authenticate() -> Header {
    HeaderBuilder::new()
        .schema(Some(string_schema()))
        .description(Some(
            "RFC 6750 §3: `Bearer realm=\"<service>\"`, with `error=\"…\"` and \
             `error_description=\"…\"` when a token was sent (and `scope=\"…\"` naming a \
             missing scope). Where DPoP is accepted, an RFC 9449 §7.1 challenge too: \
             `DPoP realm=\"<service>\", algs=\"ES256 EdDSA\"`, carrying the error instead \
             when a DPoP token or proof was refused. One header per scheme.",
        ))
        .build()
}

/// An error answer: the JSON error body, `Cache-Control: no-store`, and `description`
/// saying when it comes and with which codes. Add headers to taste.
pub fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .header("Cache-Control", cache_control_no_store())
        .content(
            "application/json",
            Content::new(Some(RefOr::<Schema>::Ref(Ref::from_schema_name(
                ErrorBody::name(),
            )))),
        )
}

/// Declares a reusable OpenAPI response named after its type: a unit struct whose
/// `ToResponse` builds `$build`. Exported so that each service declares its own answers
/// the way the shared ones are declared here (`shared_claims::api_response!`).
#[macro_export]
macro_rules! api_response {
    ($(#[$doc:meta])* $name:ident, $build:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl<'r> ::utoipa::ToResponse<'r> for $name {
            fn response() -> (
                &'r str,
                ::utoipa::openapi::RefOr<::utoipa::openapi::Response>,
            ) {
                (stringify!($name), $build.build().into())
            }
        }
    };
}

api_response!(
    /// 400 from the authentication extractor: the credentials are malformed.
    AuthBadRequest,
    error_response(
        "`invalid_request`: the request's credentials are malformed, e.g. it has more than \
         one `Authorization` header.",
    )
    .header("WWW-Authenticate", www_authenticate())
);

api_response!(
    /// 401 from the authentication extractor.
    Unauthorized,
    error_response(
        "`missing_token`: no access token was sent; `invalid_token`: the token is expired, \
         malformed, not for this service, of an unknown key, bound to a DPoP key but sent \
         as Bearer (or the reverse), or (auth-service) its session has ended; \
         `invalid_dpop_proof`: the DPoP proof of a bound token is missing, malformed, stale, \
         replayed, for another request or of another key.",
    )
    .header("WWW-Authenticate", www_authenticate())
);

api_response!(
    /// 403: the token lacks a role or scope.
    Forbidden,
    error_response(
        "`insufficient_scope`: the token lacks the role or scope this route needs; the \
         description and the challenge name it.",
    )
    .header("WWW-Authenticate", www_authenticate())
);

api_response!(
    /// 404 on a route that exists.
    NotFound,
    error_response("`not_found`: no such resource, or not the caller's.")
);

api_response!(
    /// 503: a dependency is down or busy.
    Unavailable,
    error_response(
        "`temporarily_unavailable`: something the service depends on is down or busy; \
         retry after `Retry-After` seconds.",
    )
    .header("Retry-After", retry_after())
);
