//! The API description as a client finds it: `/openapi.json` describes exactly the routes
//! the running service answers, and `/docs` shows it.

use reqwest::StatusCode;
use resource_service::routes::endpoints;
use serde_json::Value;
use shared_claims::apidoc::{operations_in, operations_of};

use crate::helpers::spawn_with_pem_and;

#[tokio::test]
async fn the_served_document_describes_every_mounted_route_and_no_other() {
    let app = spawn_with_pem_and(|_| {}).await;

    let response = app.get("/openapi.json", None).await;

    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["title"], "resource-service");
    assert_eq!(operations_in(&document), operations_of(&endpoints(true)));
    let docs = app.get("/docs", None).await;
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger-ui-bundle.js"));
}

#[tokio::test]
async fn metrics_on_their_own_listener_leave_the_document_too() {
    let app = spawn_with_pem_and(|settings| settings.metrics.bind = "127.0.0.1:0".into()).await;

    let document: Value = app.get("/openapi.json", None).await.json().await.unwrap();

    assert!(document["paths"].get("/metrics").is_none());
    assert_eq!(operations_in(&document), operations_of(&endpoints(false)));
}
