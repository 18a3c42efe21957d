//! The resource-service's OpenAPI 3.1 document, generated from the handlers' annotations
//! and the wire types, rendered once per process and served at `/openapi.json`.

use actix_web::web;
use shared_claims::apidoc::{ApiDescription, Descriptions, describe_readyz};
use utoipa::OpenApi;

/// The service's own operations; [`ApiDescription::new`] adds what every service shares.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "resource-service",
        description = "A protected API that verifies the auth-service's access tokens \
                       statelessly, with its public keys alone (RFC 6750 Bearer tokens and \
                       RFC 9449 DPoP-bound tokens). Failures answer the JSON error body and, \
                       for credentials, a `WWW-Authenticate` challenge."
    ),
    paths(super::public, super::me, super::admin),
    tags(
        (name = "api", description = "The protected API"),
        (name = "operations", description = "Health, readiness and counters")
    )
)]
struct ResourceApi;

/// The service's own operations with `GET /readyz`, described alike in every service.
fn document() -> utoipa::openapi::OpenApi {
    let mut document = ResourceApi::openapi();
    describe_readyz::<super::Readiness>(
        &mut document,
        super::READY_WHEN,
        "Verification keys are loaded",
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

        let challenge = documented_headers(&document, "GET", paths::API_ADMIN, 403);
        assert!(challenge.contains("WWW-Authenticate"));
        assert_eq!(
            document["paths"][paths::API_ME]["get"]["security"],
            serde_json::json!([{"bearer": []}, {"dpop": [], "dpop_proof": []}])
        );
    }
}
