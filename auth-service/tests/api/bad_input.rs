//! Whatever a client sends, the answer is a 4xx with the JSON error body, never a 5xx.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, spawn_app};

#[tokio::test]
async fn no_bad_input_gets_a_5xx() {
    let app = spawn_app().await;
    let (username, login) = app.registered_session().await;
    let huge = format!(r#"{{"username":"{}","password":"x"}}"#, "a".repeat(20_000));
    let bodies: Vec<(&str, String)> = vec![
        ("application/json", String::new()),
        ("application/json", "{".into()),
        ("application/json", "null".into()),
        ("application/json", "[]".into()),
        ("application/json", "42".into()),
        (
            "application/json",
            r#"{"username": 5, "password": []}"#.into(),
        ),
        (
            "application/json",
            r#"{"username": null, "password": null}"#.into(),
        ),
        ("application/json", r#"{"refresh_token": 7}"#.into()),
        ("application/json", r#"{"refresh_token": ""}"#.into()),
        (
            "application/json",
            format!(r#"{{"refresh_token": "{}"}}"#, "A".repeat(76)),
        ),
        (
            "application/json",
            format!(r#"{{"refresh_token": "{}"}}"#, "é".repeat(500)),
        ),
        (
            "application/json",
            r#"{"username": "\u0000\u0001", "password": "\ud800"}"#.into(),
        ),
        (
            "application/json",
            format!(
                r#"{{"username": "{username}", "password": "{PASSWORD}", "client_id": "bad id!"}}"#
            ),
        ),
        ("application/json", huge.clone()),
        (
            "text/plain",
            format!(r#"{{"username": "{username}", "password": "{PASSWORD}"}}"#),
        ),
        (
            "application/x-www-form-urlencoded",
            "username=a&password=b".into(),
        ),
        ("application/json", "\u{feff}{}".into()),
    ];
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
    ] {
        for (content_type, body) in &bodies {
            let response = app
                .client
                .post(app.url(path))
                .header("Content-Type", *content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = response.status();
            assert!(
                status.is_client_error() || status.is_success(),
                "{path} {content_type} {:.80} -> {status}",
                body
            );
            if status.is_client_error() {
                let json: Value = response.json().await.unwrap();
                assert!(
                    json["error"].is_string() && json["error_description"].is_string(),
                    "{json}"
                );
            }
        }
    }
    // Oversized bodies are 413.
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("Content-Type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Unknown routes and methods are JSON 404s.
    let response = app.get("/auth/login").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "not_found"
    );
    // And nothing stored was harmed: the session still refreshes, the user still logs in.
    let refresh = login["refresh_token"].as_str().unwrap();
    assert_eq!(app.refresh(refresh).await.status(), StatusCode::OK);
    assert_eq!(
        app.login(&username, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn no_bad_input_to_bearer_and_oauth_endpoints_gets_a_5xx() {
    let app = spawn_app().await;
    let (_, login) = app.registered_session().await;
    let authorizations = [
        String::new(),
        "Bearer".into(),
        "Bearer ".into(),
        "Bearer garbage".into(),
        "Bearer a.b.c".into(),
        format!("Bearer {}", "A".repeat(9000)),
        "Basic dXNlcjpwYXNz".into(),
    ];
    for authorization in &authorizations {
        for (method, path) in [
            (reqwest::Method::GET, "/auth/sessions".to_owned()),
            (reqwest::Method::POST, "/auth/logout-all".to_owned()),
            (
                reqwest::Method::DELETE,
                "/auth/sessions/not-a-uuid".to_owned(),
            ),
            (
                reqwest::Method::DELETE,
                format!("/auth/sessions/{}", "9".repeat(500)),
            ),
            (reqwest::Method::DELETE, "/auth/sessions/%00%ff".to_owned()),
        ] {
            let mut request = app.client.request(method.clone(), app.url(&path));
            if !authorization.is_empty() {
                request = request.header("Authorization", authorization);
            }
            let status = request.send().await.unwrap().status();
            assert!(
                status.is_client_error() || status.is_success(),
                "{method} {path} [{authorization:.20}] -> {status}"
            );
        }
    }
    let forms = [
        "",
        "grant_type=",
        "grant_type=password",
        "grant_type=password&username=&password=",
        "grant_type=refresh_token&refresh_token=%ff%fe",
        "grant_type=password&username=a&username=b&password=x",
        "%%%",
        "grant_type=authorization_code&code=x",
    ];
    for path in ["/oauth/token", "/oauth/revoke"] {
        for form in forms {
            let response = app
                .client
                .post(app.url(path))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form)
                .send()
                .await
                .unwrap();
            let status = response.status();
            assert!(
                status.is_client_error() || status.is_success(),
                "{path} {form:?} -> {status}"
            );
        }
    }
    // The session is still fine.
    assert_eq!(
        app.refresh(login["refresh_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
}
