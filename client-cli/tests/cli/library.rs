use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use client_cli::client::{Client, ClientConfig};
use client_cli::error::{CliError, EXIT_LOGIN_REQUIRED, EXIT_UNREACHABLE, EXIT_USAGE};

use crate::helpers::{PASSWORD, Stack};

/// Pretends the stored access token is still good for an hour, so the client only finds
/// out from the server's 401.
fn make_client_believe_token_is_fresh(client: &Client) {
    let mut credentials = client.stored().unwrap();
    credentials.access_expires_at = client_cli::jwt::now() + 3600;
    client.store().save(&credentials).unwrap();
}

#[tokio::test]
async fn login_stores_credentials_readable_only_by_the_owner_and_me_works() {
    let stack = Stack::start(|_| {}).await;

    let (client, username) = stack.logged_in().await;

    let mode = std::fs::metadata(stack.credentials_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let me = client.me().await.unwrap();
    assert_eq!(me["username"], username.as_str());
}

#[tokio::test]
async fn an_expiring_access_token_is_refreshed_before_the_call() {
    let stack = Stack::start(|s| s.jwt.access_ttl_secs = 20).await;
    let (client, username) = stack.logged_in().await;
    let before = client.stored().unwrap();

    let me = client.me().await.unwrap();

    assert_eq!(me["username"], username.as_str());
    let after = client.stored().unwrap();
    assert_ne!(
        after.refresh_token, before.refresh_token,
        "under 30 s left: refreshed first"
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_after_the_401_and_the_call_succeeds() {
    let stack = Stack::start(|s| s.jwt.access_ttl_secs = 1).await;
    let (client, username) = stack.logged_in().await;
    make_client_believe_token_is_fresh(&client);
    let before = client.stored().unwrap();
    stack.auth.clock.advance(Duration::from_millis(2100));

    let me = client.me().await.unwrap();

    assert_eq!(me["username"], username.as_str());
    assert_ne!(client.stored().unwrap().access_token, before.access_token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_calls_with_an_expired_token_both_succeed_and_the_session_survives() {
    // No grace window: without the file lock the second refresh would be reuse and the
    // auth-service would revoke the session.
    let stack = Stack::start(|s| {
        s.jwt.access_ttl_secs = 1;
        s.jwt.refresh_reuse_grace_secs = 0;
    })
    .await;
    let (first, _) = stack.logged_in().await;
    make_client_believe_token_is_fresh(&first);
    stack.auth.clock.advance(Duration::from_millis(2100));
    let second = stack.client();

    let (a, b) = tokio::join!(first.me(), second.me());

    a.unwrap();
    b.unwrap();
    stack
        .client()
        .refresh()
        .await
        .expect("the session is still alive");
}

#[tokio::test]
async fn a_revoked_session_asks_to_log_in_again_and_forgets_the_credentials() {
    let stack = Stack::start(|_| {}).await;
    let (client, _) = stack.logged_in().await;
    client.logout(true).await.unwrap();
    // Log in again, then revoke that session from elsewhere.
    let (client, _) = stack.logged_in().await;
    let stored = client.stored().unwrap();
    // Elsewhere, with the session's DPoP key: a bound session ends only with it.
    let key =
        client_cli::dpop::DpopKey::from_stored(&stored.dpop_key.clone().unwrap().into()).unwrap();
    let logout_url = format!("{}/auth/logout", stack.auth.address);
    let status = reqwest::Client::new()
        .post(&logout_url)
        .header(
            "DPoP",
            key.proof("POST", &logout_url, None, client_cli::jwt::now())
                .unwrap(),
        )
        .json(&serde_json::json!({"refresh_token": stored.refresh_token}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);

    let error = client.refresh().await.unwrap_err();

    assert!(matches!(error, CliError::SessionExpired), "{error:?}");
    assert_eq!(error.exit_code(), EXIT_LOGIN_REQUIRED);
    assert_eq!(
        error.to_string(),
        "session expired or revoked — run `client-cli login`"
    );
    assert!(!stack.credentials_path().exists());
    assert!(matches!(
        client.me().await.unwrap_err(),
        CliError::NotLoggedIn
    ));
}

#[tokio::test]
async fn errors_read_like_sentences() {
    let stack = Stack::start(|_| {}).await;
    let (client, username) = stack.logged_in().await;

    let taken = client
        .register(&username.to_uppercase(), &PASSWORD.clone().into())
        .await
        .unwrap_err();
    assert!(matches!(taken, CliError::UsernameTaken(_)), "{taken:?}");
    let wrong = client
        .login(&username, &"wrong password".to_owned().into())
        .await
        .unwrap_err();
    assert_eq!(wrong.to_string(), "wrong username or password");

    let nowhere = Client::new(ClientConfig {
        auth_url: "http://127.0.0.1:9".into(),
        resource_url: "http://127.0.0.1:9".into(),
        credentials_path: stack.dir.path().join("other.json"),
        dpop: true,
    })
    .unwrap();
    let down = nowhere
        .login(&username, &PASSWORD.clone().into())
        .await
        .unwrap_err();
    assert_eq!(down.exit_code(), EXIT_UNREACHABLE);
    assert!(
        down.to_string()
            .starts_with("cannot reach auth-service at http://127.0.0.1:9"),
        "{down}"
    );
}

#[tokio::test]
async fn credentials_with_loose_permissions_are_refused() {
    let stack = Stack::start(|_| {}).await;
    let (client, _) = stack.logged_in().await;
    std::fs::set_permissions(
        stack.credentials_path(),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let error = client.me().await.unwrap_err();

    assert!(error.to_string().contains("must be 600"), "{error}");
}

#[tokio::test]
async fn sessions_and_logout_all_go_through_the_auth_service() {
    let stack = Stack::start(|_| {}).await;
    let (client, _) = stack.logged_in().await;

    let sessions = client.sessions().await.unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert_eq!(sessions[0]["current"], true);
    assert!(
        sessions[0]["user_agent"]
            .as_str()
            .unwrap()
            .starts_with("client-cli/")
    );

    client.logout(true).await.unwrap();
    assert!(!stack.credentials_path().exists());
}

#[tokio::test]
async fn credentials_are_only_ever_sent_to_the_auth_service_that_issued_them() {
    let stack = Stack::start(|_| {}).await;
    stack.logged_in().await;
    let elsewhere = Client::new(ClientConfig {
        auth_url: "http://127.0.0.1:9".into(),
        resource_url: stack.resource_url.clone(),
        credentials_path: stack.credentials_path(),
        dpop: true,
    })
    .unwrap();

    let error = elsewhere.refresh().await.unwrap_err();

    assert!(error.to_string().contains("were issued by"), "{error}");
    assert!(matches!(
        elsewhere.me().await.unwrap_err(),
        CliError::Credentials { .. }
    ));
    // Nothing was deleted: the right client still works.
    stack.client().me().await.unwrap();
}

#[tokio::test]
async fn logging_in_again_revokes_the_session_it_replaces() {
    let stack = Stack::start(|_| {}).await;
    let (client, username) = stack.logged_in().await;
    let first = client.stored().unwrap();

    client
        .login(&username, &PASSWORD.clone().into())
        .await
        .unwrap();

    let sessions = client.sessions().await.unwrap();
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["current"], true);
    let old_refresh = reqwest::Client::new()
        .post(format!("{}/auth/refresh", stack.auth.address))
        .json(&serde_json::json!({"refresh_token": first.refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(old_refresh.status(), 401, "the first session is over");
}

#[tokio::test]
async fn a_failed_login_leaves_the_current_session_alone() {
    let stack = Stack::start(|_| {}).await;
    let (client, username) = stack.logged_in().await;
    let before = client.stored().unwrap();

    let error = client
        .login(&username, &"not the password 4821".to_owned().into())
        .await
        .unwrap_err();

    assert!(matches!(error, CliError::InvalidCredentials), "{error:?}");
    assert_eq!(client.stored().unwrap(), before);
    client.refresh().await.expect("the session is still alive");
}

#[tokio::test]
async fn a_symlink_planted_at_the_lock_path_is_refused_and_its_target_untouched() {
    let stack = Stack::start(|_| {}).await;
    let (client, _) = stack.logged_in().await;
    let precious = stack.dir.path().join("precious");
    std::fs::write(&precious, "keep me").unwrap();
    let lock_path = client.store().lock_path();
    std::fs::remove_file(&lock_path).unwrap();
    std::os::unix::fs::symlink(&precious, &lock_path).unwrap();

    let error = client.refresh().await.unwrap_err();

    assert!(matches!(error, CliError::Credentials { .. }), "{error:?}");
    assert!(error.to_string().contains("symbolic link"), "{error}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    let mode = std::fs::metadata(&precious).unwrap().permissions().mode() & 0o777;
    assert_ne!(mode, 0o600, "not even its mode changed");
}

#[tokio::test]
async fn public_routes_need_no_login_and_protected_ones_say_to_log_in() {
    let stack = Stack::start(|_| {}).await;
    let client = stack.client();

    let public = client.get("/api/public").await.unwrap();
    let me = client.get("/api/me").await.unwrap_err();

    assert_eq!(public.status, 200);
    assert!(matches!(me, CliError::NotLoggedIn), "{me:?}");
    assert_eq!(me.exit_code(), EXIT_LOGIN_REQUIRED);
}

#[test]
fn a_service_url_without_a_scheme_is_a_usage_error() {
    let config = |auth: &str, resource: &str| ClientConfig {
        auth_url: auth.into(),
        resource_url: resource.into(),
        credentials_path: "unused.json".into(),
        dpop: true,
    };

    let auth = Client::new(config("localhost:8080", "http://localhost:8081")).unwrap_err();
    let resource = Client::new(config("http://localhost:8080", "127.0.0.1:8081")).unwrap_err();

    assert!(matches!(auth, CliError::Usage(_)), "{auth:?}");
    assert_eq!(auth.exit_code(), EXIT_USAGE);
    assert!(auth.to_string().contains("http://"), "{auth}");
    assert!(matches!(resource, CliError::Usage(_)), "{resource:?}");
    Client::new(config("https://auth.example/", "http://[::1]:8081")).unwrap();
}
