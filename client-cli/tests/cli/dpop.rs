//! The client binds its sessions to a DPoP key by default: what it stores is useless to
//! whoever copies the refresh or access token without the key.

use client_cli::client::{Client, ClientConfig};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Stack};

async fn post(url: String, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_default_login_binds_the_session_and_the_copied_tokens_are_useless_alone() {
    let stack = Stack::start(|_| {}).await;
    let (client, username) = stack.logged_in().await;
    let stored = client.stored().unwrap();

    // The key is stored with the credentials (the file is 0600, checked elsewhere), and
    // the tokens are bound to it.
    assert!(stored.dpop_key.is_some());
    let claims = client_cli::jwt::decode(&stored.access_token)
        .unwrap()
        .claims;
    assert!(claims["cnf"]["jkt"].is_string(), "{claims}");
    assert_eq!(client.me().await.unwrap()["username"], username.as_str());

    // A thief with a copy of the file's tokens but not the key gets nothing:
    let refresh = post(
        format!("{}/auth/refresh", stack.auth.address),
        json!({"refresh_token": stored.refresh_token}),
    )
    .await;
    assert_eq!(refresh.status(), 400);
    let as_bearer = reqwest::Client::new()
        .get(format!("{}/api/me", stack.resource_url))
        .bearer_auth(&stored.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(as_bearer.status(), 401);
    // …and cannot log the owner out either.
    let logout = post(
        format!("{}/auth/logout", stack.auth.address),
        json!({"refresh_token": stored.refresh_token}),
    )
    .await;
    assert_eq!(logout.status(), 400);

    // The owner's session lives on: it refreshes, calls and logs out with its key.
    client.refresh().await.unwrap();
    assert_eq!(client.me().await.unwrap()["username"], username.as_str());
    let current = client.stored().unwrap();
    client.logout(false).await.unwrap();
    let after = post(
        format!("{}/auth/refresh", stack.auth.address),
        json!({"refresh_token": current.refresh_token}),
    )
    .await;
    assert_eq!(after.status(), 401, "the session is over");
}

#[tokio::test]
async fn with_no_dpop_the_session_is_a_bearer_session() {
    let stack = Stack::start(|_| {}).await;
    let client = Client::new(ClientConfig {
        auth_url: stack.auth.address.clone(),
        resource_url: stack.resource_url.clone(),
        credentials_path: stack.credentials_path(),
        dpop: false,
    })
    .unwrap();
    let username = format!("cli_{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    client
        .register(&username, &PASSWORD.clone().into())
        .await
        .unwrap();

    client
        .login(&username, &PASSWORD.clone().into())
        .await
        .unwrap();

    let stored = client.stored().unwrap();
    assert!(stored.dpop_key.is_none());
    let claims = client_cli::jwt::decode(&stored.access_token)
        .unwrap()
        .claims;
    assert!(claims.get("cnf").is_none(), "{claims}");
    assert_eq!(client.me().await.unwrap()["username"], username.as_str());
    client.refresh().await.unwrap();
}
