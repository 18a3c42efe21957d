use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{PASSWORD, assert_error, spawn_app, unique_username};

#[tokio::test]
async fn register_returns_the_new_user_without_its_password() {
    let app = spawn_app().await;
    let username = unique_username();

    let response = app.register(&username, PASSWORD).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["username"], username.as_str());
    assert_eq!(body["roles"], serde_json::json!(["user"]));
    assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
    assert!(body["created_at"].as_str().is_some());
    let text = body.to_string();
    assert!(
        !text.contains(PASSWORD) && !text.contains("argon2"),
        "{text}"
    );
}

#[tokio::test]
async fn a_duplicate_username_is_409_in_any_letter_case() {
    let app = spawn_app().await;
    let username = unique_username();
    assert_eq!(
        app.register(&username, PASSWORD).await.status(),
        StatusCode::CREATED
    );

    assert_error(
        app.register(&username, PASSWORD).await,
        StatusCode::CONFLICT,
        "username_taken",
    )
    .await;
    assert_error(
        app.register(&username.to_uppercase(), "another password")
            .await,
        StatusCode::CONFLICT,
        "username_taken",
    )
    .await;
}

#[tokio::test]
async fn usernames_and_passwords_breaking_the_rules_are_400() {
    let app = spawn_app().await;
    let cases = [
        ("ab", PASSWORD),
        ("has space", PASSWORD),
        ("ünïcode", PASSWORD),
        (&"x".repeat(65) as &str, PASSWORD),
        ("valid_name", "short"),
        ("valid_name", &"p".repeat(129) as &str),
    ];
    for (username, password) in cases {
        let body = assert_error(
            app.register(username, password).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(
            !body.to_string().contains(password),
            "the password is echoed: {body}"
        );
    }
    // Nothing was stored by the refused attempts.
    assert_eq!(
        app.register("valid_name", PASSWORD).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn common_and_easily_guessed_passwords_are_refused_with_what_would_pass() {
    let app = spawn_app().await;

    for weak in ["password", "12345678", "qwertyuiop123"] {
        let body = assert_error(
            app.register(&unique_username(), weak).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains("too easy to guess"), "{description}");
        assert!(description.contains("passes"), "{description}");
    }
    // A strong one of the same length rules passes.
    assert_eq!(
        app.register(&unique_username(), "velvet tundra quarry 58")
            .await
            .status(),
        StatusCode::CREATED
    );
}
