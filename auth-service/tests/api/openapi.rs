//! The API description as a client finds it: `/openapi.json` describes exactly the routes
//! the running service answers, and `/docs` serves Swagger UI from the binary.

use auth_service::routes::endpoints;
use reqwest::StatusCode;
use serde_json::Value;
use shared_claims::apidoc::{operations_in, operations_of};

use crate::helpers::{assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_served_document_describes_every_mounted_route_and_no_other() {
    let app = spawn_app().await;

    let response = app.get("/openapi.json").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["title"], "auth-service");
    assert_eq!(operations_in(&document), operations_of(&endpoints(true)));
    assert_eq!(
        document["components"]["securitySchemes"]["dpop"]["scheme"],
        "DPoP"
    );
}

#[tokio::test]
async fn the_metrics_come_in_the_documented_media_type() {
    let app = spawn_app().await;
    let document: Value = app.get("/openapi.json").await.json().await.unwrap();
    let documented: Vec<&String> =
        document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .collect();

    let metrics = app.get("/metrics").await;

    assert_eq!(metrics.status(), StatusCode::OK);
    let served = metrics.headers()["content-type"].to_str().unwrap();
    let media_type = served.split(';').next().unwrap().trim();
    assert_eq!(documented, [media_type]);
}

#[tokio::test]
async fn metrics_on_their_own_listener_leave_the_document_too() {
    let app = spawn_app_with(|settings| settings.metrics.bind = "127.0.0.1:0".into()).await;

    let document: Value = app.get("/openapi.json").await.json().await.unwrap();

    assert!(document["paths"].get("/healthz").is_some());
    assert!(document["paths"].get("/metrics").is_none());
    assert_eq!(operations_in(&document), operations_of(&endpoints(false)));
    assert_error(
        app.get("/metrics").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn the_docs_page_is_swagger_ui_served_from_the_binary() {
    let app = spawn_app().await;

    let page = app.get("/docs").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.headers().contains_key("content-security-policy"));
    let html = page.text().await.unwrap();

    for (asset, content_type) in [
        ("swagger-ui.css", "text/css"),
        ("swagger-ui-bundle.js", "text/javascript"),
        ("docs.js", "text/javascript"),
    ] {
        assert!(html.contains(&format!("\"docs/{asset}\"")), "{asset}");
        let file = app.get(&format!("/docs/{asset}")).await;
        assert_eq!(file.status(), StatusCode::OK, "{asset}");
        let served = file.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(served.starts_with(content_type), "{asset}: {served}");
        assert!(!file.bytes().await.unwrap().is_empty());
    }
    assert_error(
        app.get("/docs/index.html").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}
