//! `GET /openapi.json`, the service's description as rendered at start, and `GET /docs`,
//! Swagger UI showing it. Swagger UI's files are built into the binary (utoipa-swagger-ui,
//! `vendored`): the page loads nothing from elsewhere, at build or at run time.

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use utoipa::openapi::{ObjectBuilder, RefOr, Type, schema::Schema};

use super::ApiDescription;
use super::responses::{AuthBadRequest, Forbidden, NotFound, Unauthorized, Unavailable};
use crate::protocol::{ErrorBody, ErrorCode, paths};

/// The page: Swagger UI's stylesheet and script, then ours.
const PAGE: &str = include_str!("docs.html");
/// Starts Swagger UI on `/openapi.json`.
const SCRIPT: &str = include_str!("docs.js");

/// What the Swagger UI page may load and run: only this service's own files and API, plus
/// the inline styles and `data:` images Swagger UI makes itself.
const PAGE_POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
                           img-src 'self' data:; frame-ancestors 'none'";

/// The operations of the description pages, merged into every service's document, with
/// the components every service's handlers name.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    paths(openapi_json, docs_page, docs_asset),
    components(
        schemas(ErrorBody, ErrorCode, DocsAsset),
        responses(AuthBadRequest, Unauthorized, Forbidden, NotFound, Unavailable)
    ),
    tags((name = "documentation", description = "This description, for programs and for people."))
)]
pub struct DocsApi;

/// The files of the page below `/docs/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocsAsset {
    /// Swagger UI's stylesheet.
    Stylesheet,
    /// Swagger UI itself.
    Bundle,
    /// Our start script.
    Script,
}

impl DocsAsset {
    const ALL: [Self; 3] = [Self::Stylesheet, Self::Bundle, Self::Script];

    /// The file name, the last segment of its path.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stylesheet => "swagger-ui.css",
            Self::Bundle => "swagger-ui-bundle.js",
            Self::Script => "docs.js",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Stylesheet => "text/css; charset=utf-8",
            Self::Bundle | Self::Script => "text/javascript; charset=utf-8",
        }
    }

    /// The file's bytes: ours, or Swagger UI's from the copy built into the binary.
    fn bytes(self) -> Option<web::Bytes> {
        if self == Self::Script {
            return Some(web::Bytes::from_static(SCRIPT.as_bytes()));
        }
        let config = Arc::new(utoipa_swagger_ui::Config::new([paths::OPENAPI]));
        let file = utoipa_swagger_ui::serve(self.name(), config).ok()??;
        Some(match file.bytes {
            Cow::Borrowed(bytes) => web::Bytes::from_static(bytes),
            Cow::Owned(bytes) => web::Bytes::from(bytes),
        })
    }
}

impl utoipa::PartialSchema for DocsAsset {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Self::ALL.map(Self::name)))
            .into()
    }
}

impl utoipa::ToSchema for DocsAsset {}

/// This document.
#[utoipa::path(
    get,
    path = paths::OPENAPI,
    tag = "documentation",
    responses((status = 200, description = "The OpenAPI 3.1 description of this service",
               body = Object, content_type = "application/json"))
)]
pub async fn openapi_json(description: web::Data<ApiDescription>) -> HttpResponse {
    match description.json() {
        Ok(json) => HttpResponse::Ok()
            .content_type("application/json")
            .body(json.clone()),
        Err(why) => {
            tracing::error!(%why, "the OpenAPI document could not be rendered");
            HttpResponse::InternalServerError()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(ErrorBody::new(
                    ErrorCode::ServerError,
                    "the API description could not be rendered",
                ))
        }
    }
}

/// This description for people: Swagger UI, with requests to try.
#[utoipa::path(
    get,
    path = paths::DOCS,
    tag = "documentation",
    responses((status = 200, description = "The Swagger UI page", body = String,
               content_type = "text/html"))
)]
pub async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(PAGE)
}

/// A file of the Swagger UI page.
#[utoipa::path(
    get,
    path = paths::DOCS_ASSET,
    tag = "documentation",
    params(("asset" = DocsAsset, Path, description = "The file's name")),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/css"),
            (String = "text/javascript")
        )),
        (status = 404, response = NotFound)
    )
)]
pub async fn docs_asset(asset: web::Path<String>) -> HttpResponse {
    let Some((asset, bytes)) = DocsAsset::ALL
        .into_iter()
        .find(|known| known.name() == asset.as_str())
        .and_then(|asset| asset.bytes().map(|bytes| (asset, bytes)))
    else {
        return HttpResponse::NotFound()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(ErrorBody::new(ErrorCode::NotFound, "no such file"));
    };
    HttpResponse::Ok()
        .content_type(asset.content_type())
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_built_in() {
        for asset in DocsAsset::ALL {
            assert!(
                PAGE.contains(&format!("\"docs/{}\"", asset.name())),
                "{}",
                asset.name()
            );
            let bytes = asset.bytes().unwrap();
            assert!(
                bytes.len() > 100,
                "{} is {} bytes",
                asset.name(),
                bytes.len()
            );
        }
        assert!(
            DocsAsset::Bundle
                .bytes()
                .is_some_and(|js| js.windows(15).any(|w| w == b"SwaggerUIBundle"))
        );
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for text in [PAGE, SCRIPT] {
            assert!(
                !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn")
            );
        }
    }
}
