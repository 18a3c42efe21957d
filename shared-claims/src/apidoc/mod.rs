//! The API description both services publish, generated from their code with utoipa:
//! the OpenAPI 3.1 document at `/openapi.json` and Swagger UI at `/docs`.
//!
//! A service lists its routes once, as a table of [`Endpoint`]s that [`mount`] hands to
//! actix-web, and describes them with `#[utoipa::path]` on the handlers and an
//! `#[derive(OpenApi)]` naming them, plus [`describe_readyz`] for its readiness check.
//! [`ApiDescription::new`] completes that document with what every service shares and
//! [`common_endpoints`] mounts (`/healthz`, the pages of [`docs`], `/metrics` when it is
//! served here) and with the security schemes, and renders it once; the service keeps
//! both renderings (with and without `/metrics`) in a static [`Descriptions`]. Because
//! the route table is data, a test can hold it against the document
//! ([`Descriptions::problems`]): a route without a description, or a description of no
//! route, fails the build's tests instead of misleading a client; the functions of
//! `inspect` read a rendered document as a client would, for such tests.
//!
//! Security schemes, named in each operation's `security(...)`:
//! * `bearer`: `Authorization: Bearer <access token>` (RFC 6750);
//! * `dpop` with `dpop_proof`, both at once: `Authorization: DPoP <access token>` and a
//!   `DPoP` proof header (RFC 9449 §7.1) for tokens bound to a key.

mod docs;
mod health;
mod inspect;
mod responses;

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use actix_web::http::Method;
use actix_web::{FromRequest, Handler, Responder, web};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{self, HttpMethod, OpenApi};

use crate::protocol::paths;

pub use docs::{DocsApi, docs_asset, docs_page, openapi_json};
pub use health::{HealthApi, Liveness, describe_readyz, healthz, not_ready};
pub use inspect::{
    dangling_references, documented_headers, missing_contract_headers, operations_in,
};
pub use responses::{
    AuthBadRequest, Forbidden, NotFound, Unauthorized, Unavailable, cache_control_no_store,
    error_response, retry_after, www_authenticate,
};

/// The name of the Bearer scheme in `security(...)`.
pub const BEARER: &str = "bearer";
/// The name of the DPoP scheme (the `Authorization: DPoP` half) in `security(...)`.
pub const DPOP: &str = "dpop";
/// The name of the DPoP proof header scheme, always required together with [`DPOP`].
pub const DPOP_PROOF: &str = "dpop_proof";

/// One route of a service: the method and path the server routes, with its handler. A
/// service's route table is a list of these, so that what is mounted and what its
/// OpenAPI document must describe are one list.
pub struct Endpoint {
    method: Method,
    path: &'static str,
    route: actix_web::Route,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish()
    }
}

impl Endpoint {
    /// `method path` served by `handler`.
    pub fn new<F, Args>(method: Method, path: &'static str, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        Self {
            method,
            path,
            route: web::route().to(handler),
        }
    }

    /// `GET path`.
    pub fn get<F, Args>(path: &'static str, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        Self::new(Method::GET, path, handler)
    }

    /// `POST path`.
    pub fn post<F, Args>(path: &'static str, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        Self::new(Method::POST, path, handler)
    }

    /// `DELETE path`.
    pub fn delete<F, Args>(path: &'static str, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        Self::new(Method::DELETE, path, handler)
    }

    /// The method and path, as an OpenAPI document names an operation (`GET`,
    /// `/auth/sessions/{id}`).
    pub fn operation(&self) -> (String, String) {
        (self.method.as_str().to_owned(), self.path.to_owned())
    }
}

/// The routes every service serves alike, which [`ApiDescription::new`] describes:
/// `/healthz`, `/openapi.json`, `/docs` and the page's files, and `/metrics` when
/// `with_metrics` (it is served on the API port rather than on a listener of its own).
pub fn common_endpoints(with_metrics: bool) -> Vec<Endpoint> {
    let mut endpoints = vec![
        Endpoint::get(paths::HEALTHZ, healthz),
        Endpoint::get(paths::OPENAPI, openapi_json),
        Endpoint::get(paths::DOCS, docs_page),
        Endpoint::get(paths::DOCS_ASSET, docs_asset),
    ];
    if with_metrics {
        endpoints.push(Endpoint::get(paths::METRICS, crate::metrics::endpoint));
    }
    endpoints
}

/// Mounts a route table.
pub fn mount(cfg: &mut web::ServiceConfig, endpoints: Vec<Endpoint>) {
    for endpoint in endpoints {
        cfg.route(endpoint.path, endpoint.route.method(endpoint.method));
    }
}

/// The `(METHOD, path)` pairs of a route table, to compare with
/// [`ApiDescription::operations`].
pub fn operations_of(endpoints: &[Endpoint]) -> BTreeSet<(String, String)> {
    endpoints.iter().map(Endpoint::operation).collect()
}

/// A service's API description in its two forms, without and with `/metrics` (where
/// `metrics.bind` does not move it), each rendered on first use and then shared: the
/// service keeps one in a `static`, made from the function that builds its own document.
#[derive(Debug)]
pub struct Descriptions {
    document: fn() -> OpenApi,
    rendered: [OnceLock<Arc<ApiDescription>>; 2],
}

impl Descriptions {
    /// The descriptions of the service whose own operations `document` builds.
    pub const fn new(document: fn() -> OpenApi) -> Self {
        Self {
            document,
            rendered: [OnceLock::new(), OnceLock::new()],
        }
    }

    /// The description of the routes mounted with `with_metrics`, as app data for
    /// `/openapi.json`.
    pub fn get(&self, with_metrics: bool) -> web::Data<ApiDescription> {
        let rendered = self.rendered[usize::from(with_metrics)]
            .get_or_init(|| Arc::new(ApiDescription::new((self.document)(), with_metrics)));
        web::Data::from(Arc::clone(rendered))
    }

    /// What is wrong with the descriptions, checked against the service's route table:
    /// for each `with_metrics`, operations described but not mounted or mounted but not
    /// described; then, in the full document, references that resolve to nothing and
    /// answers without the headers of the contract. One line per problem; each service's
    /// tests assert that there are none.
    pub fn problems(&self, endpoints: impl Fn(bool) -> Vec<Endpoint>) -> Vec<String> {
        let mut problems = Vec::new();
        for with_metrics in [false, true] {
            let described = self.get(with_metrics).operations();
            let mounted = operations_of(&endpoints(with_metrics));
            for (method, path) in described.symmetric_difference(&mounted) {
                let side = if mounted.contains(&(method.clone(), path.clone())) {
                    "mounted but not described"
                } else {
                    "described but not mounted"
                };
                problems.push(format!(
                    "{method} {path}: {side} (with_metrics = {with_metrics})"
                ));
            }
        }
        match self.get(true).value() {
            Some(document) => {
                problems.extend(dangling_references(&document));
                problems.extend(missing_contract_headers(&document));
            }
            None => problems.push("the document does not render".into()),
        }
        problems
    }
}

/// A service's finished OpenAPI document, rendered once and served as it is.
#[derive(Debug)]
pub struct ApiDescription {
    /// The JSON text, or why it could not be rendered (then `/openapi.json` answers 500).
    json: Result<web::Bytes, String>,
}

impl ApiDescription {
    /// Completes `document` (the service's own operations) with what
    /// [`common_endpoints`] mounts and with the security schemes; then renders it.
    pub fn new(mut document: OpenApi, with_metrics: bool) -> Self {
        document.merge(<HealthApi as utoipa::OpenApi>::openapi());
        document.merge(<DocsApi as utoipa::OpenApi>::openapi());
        if with_metrics {
            document.paths.add_path_operation(
                paths::METRICS,
                vec![HttpMethod::Get],
                metrics_operation(),
            );
        }
        let components = document.components.get_or_insert_with(Default::default);
        for (name, scheme) in security_schemes() {
            components.add_security_scheme(name, scheme);
        }
        Self {
            json: render(&document).map_err(|e| e.to_string()),
        }
    }

    /// The document as served.
    pub fn json(&self) -> Result<&web::Bytes, &str> {
        self.json.as_ref().map_err(String::as_str)
    }

    /// Every `(METHOD, path)` the document describes.
    pub fn operations(&self) -> BTreeSet<(String, String)> {
        self.value()
            .map(|doc| operations_in(&doc))
            .unwrap_or_default()
    }

    /// The document as a JSON value, as clients read it.
    pub fn value(&self) -> Option<serde_json::Value> {
        let json = self.json.as_ref().ok()?;
        serde_json::from_slice(json).ok()
    }
}

/// The document as JSON. utoipa has no HTTP scheme beyond its fixed list, so `DPoP` (the
/// scheme RFC 9449 registers) is written into the rendered scheme here.
fn render(document: &OpenApi) -> Result<web::Bytes, serde_json::Error> {
    let mut value = serde_json::to_value(document)?;
    if let Some(scheme) = value
        .pointer_mut(&format!("/components/securitySchemes/{DPOP}"))
        .and_then(serde_json::Value::as_object_mut)
    {
        scheme.insert("scheme".into(), "DPoP".into());
    }
    serde_json::to_vec(&value).map(web::Bytes::from)
}

/// Bearer, and DPoP as a token scheme plus its proof header (required together).
fn security_schemes() -> [(&'static str, SecurityScheme); 3] {
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(Some(
            "An access token from the auth-service (an RS256 JWT, `typ: at+jwt`) as \
             `Authorization: Bearer <token>` (RFC 6750). Tokens bound to a DPoP key are \
             refused that way: send those with `dpop`.",
        ))
        .build();
    // Rendered with the scheme `DPoP` (see `render`).
    let dpop = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .description(Some(
            "A DPoP-bound access token (one with `cnf.jkt`) as `Authorization: DPoP <token>` \
             (RFC 9449 §7.1), always together with `dpop_proof`.",
        ))
        .build();
    let proof = ApiKeyValue::with_description(
        "DPoP",
        "A DPoP proof (RFC 9449 §4): a JWT with `typ: dpop+jwt`, ES256 or EdDSA, the public \
         `jwk` in its header, and claims `jti`, `htm` (the method), `htu` (the URL), `iat` and \
         `ath` (the base64url SHA-256 of the access token), signed by the key the token is \
         bound to. Each proof is accepted once.",
    );
    [
        (BEARER, SecurityScheme::Http(bearer)),
        (DPOP, SecurityScheme::Http(dpop)),
        (DPOP_PROOF, SecurityScheme::ApiKey(ApiKey::Header(proof))),
    ]
}

/// `GET /metrics`, described here because the handler is shared and mounted only where
/// `metrics.bind` does not move it.
fn metrics_operation() -> openapi::path::Operation {
    let text = openapi::ObjectBuilder::new().schema_type(openapi::Type::String);
    openapi::path::OperationBuilder::new()
        .tag("operations")
        .operation_id(Some("metrics"))
        .summary(Some("Prometheus metrics"))
        .description(Some(
            "Request counts and latencies per route and status, and the service's own \
             counters, in the OpenMetrics text format (which Prometheus reads). Served on \
             the API port only when `metrics.bind` is empty; otherwise on that listener \
             alone.",
        ))
        .response(
            "200",
            openapi::ResponseBuilder::new()
                .description("The counters")
                .content(
                    "application/openmetrics-text",
                    openapi::Content::new(Some(text)),
                ),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dpop_scheme_is_rendered_as_rfc_9449_names_it() {
        let description = ApiDescription::new(OpenApi::default(), false);
        let json: serde_json::Value = serde_json::from_slice(description.json().unwrap()).unwrap();
        let schemes = &json["components"]["securitySchemes"];

        assert_eq!(schemes[DPOP]["type"], "http");
        assert_eq!(schemes[DPOP]["scheme"], "DPoP");
        assert_eq!(schemes[BEARER]["scheme"], "bearer");
        assert_eq!(schemes[DPOP_PROOF]["in"], "header");
        assert_eq!(schemes[DPOP_PROOF]["name"], "DPoP");
        assert_eq!(json["openapi"], "3.1.0");
    }

    #[test]
    fn a_route_without_a_description_is_a_problem() {
        static SHARED_ONLY: Descriptions = Descriptions::new(OpenApi::default);
        assert_eq!(SHARED_ONLY.problems(common_endpoints), Vec::<String>::new());

        let problems = SHARED_ONLY.problems(|with_metrics| {
            let mut endpoints = common_endpoints(with_metrics);
            endpoints.push(Endpoint::get(paths::API_ME, healthz));
            endpoints
        });

        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("GET /api/me: mounted but not described"));
    }

    #[test]
    fn readyz_is_described_with_the_services_body_and_the_shared_503() {
        #[derive(serde::Serialize, utoipa::ToSchema)]
        struct Checked {
            keys: usize,
        }
        let mut document = OpenApi::default();
        describe_readyz::<Checked>(&mut document, "Ready when checked", "Checked");
        let json = ApiDescription::new(document, false).value().unwrap();
        let readyz = &json["paths"][paths::READYZ]["get"];

        assert_eq!(readyz["operationId"], "readyz");
        assert_eq!(readyz["tags"], serde_json::json!(["operations"]));
        assert_eq!(readyz["summary"], "Ready when checked");
        assert!(readyz.get("description").is_none(), "{readyz}");
        assert_eq!(readyz["responses"]["200"]["description"], "Checked");
        assert_eq!(
            readyz["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Checked"
        );
        assert_eq!(
            readyz["responses"]["503"]["$ref"],
            "#/components/responses/Unavailable"
        );
        assert!(json["components"]["schemas"]["Checked"]["properties"]["keys"].is_object());
        assert_eq!(dangling_references(&json), Vec::<String>::new());
    }

    #[test]
    fn metrics_are_described_only_where_they_are_served() {
        let metrics = ("GET".to_owned(), paths::METRICS.to_owned());

        let with = ApiDescription::new(OpenApi::default(), true).operations();
        let without = ApiDescription::new(OpenApi::default(), false).operations();

        assert!(with.contains(&metrics));
        assert!(!without.contains(&metrics));
        assert_eq!(with, operations_of(&common_endpoints(true)));
        assert_eq!(
            without,
            operations_of(&common_endpoints(false)),
            "the common routes describe themselves"
        );
    }
}
