//! What the service checks when it starts, and what it refuses to start with.

use auth_service::startup::{Application, SecretStatus};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{PASSWORD, assert_error, jwt_part, spawn_app, spawn_app_with, test_settings};

#[tokio::test]
async fn a_promotion_committed_while_redis_was_down_still_ends_the_old_sessions() {
    // `admin` registered as an ordinary user while bootstrap was off; someone keeps its
    // refresh token.
    let app = spawn_app().await;
    app.register("admin", PASSWORD).await;
    let old: Value = app.login("admin", PASSWORD).await.json().await.unwrap();

    // The operator turns bootstrap on; Redis is unreachable, so the start fails…
    let mut promoted = app.settings.clone();
    promoted.bootstrap.admin_username = "admin".into();
    promoted.bootstrap.admin_password = SecretString::from(PASSWORD.to_owned());
    let mut no_redis = promoted.clone();
    no_redis.redis.url = SecretString::from("redis://127.0.0.1:1".to_owned());
    let failed = Application::build(no_redis).await;
    assert!(failed.is_err(), "started without Redis");

    // …and the next start, with Redis up, finds the promotion already done.
    let restarted = Application::build(promoted).await.unwrap();
    let address = format!("http://127.0.0.1:{}", restarted.port());
    tokio::spawn(restarted.run_until_stopped());

    let response = app
        .client
        .post(format!("{address}/auth/refresh"))
        .json(&json!({"refresh_token": old["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    // A fresh login is an admin.
    let fresh: Value = app.login("admin", PASSWORD).await.json().await.unwrap();
    let roles = jwt_part(fresh["access_token"].as_str().unwrap(), 1)["roles"].clone();
    assert_eq!(roles, json!(["user", "admin"]));
}

/// Answers every RESP command like a Redis 6.2 would answer `INFO server`, `+OK` to the
/// rest: enough for a client to connect and ask for the version.
async fn fake_redis_6() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 4096];
                while let Ok(n) = socket.read(&mut buffer).await {
                    if n == 0 {
                        return;
                    }
                    // One reply per command: clients pipeline their hand-shake commands.
                    let request = String::from_utf8_lossy(&buffer[..n]).to_uppercase();
                    let lines: Vec<&str> = request.split("\r\n").collect();
                    let mut reply = String::new();
                    for (i, line) in lines.iter().enumerate() {
                        if !line.starts_with('*') {
                            continue;
                        }
                        if lines.get(i + 2) == Some(&"INFO") {
                            let info = "# Server\r\nredis_version:6.2.14\r\n";
                            reply.push_str(&format!("${}\r\n{info}\r\n", info.len()));
                        } else {
                            reply.push_str("+OK\r\n");
                        }
                    }
                    if socket.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("redis://{address}")
}

#[tokio::test]
async fn a_redis_older_than_7_is_refused_at_start_naming_the_minimum() {
    let (mut settings, _resources) = test_settings();
    settings.redis.url = SecretString::from(fake_redis_6().await);

    let error = Application::build(settings).await.unwrap_err();

    let message = format!("{error:#}");
    assert!(message.contains("6.2.14"), "{message}");
    assert!(message.contains("7.0.0 or newer"), "{message}");
}

#[tokio::test]
async fn metrics_can_be_served_on_a_listener_of_their_own() {
    let (mut settings, _resources) = test_settings();
    settings.metrics.bind = "127.0.0.1:0".into();
    let app = Application::build(settings).await.unwrap();
    let (port, metrics_port) = (app.port(), app.metrics_port().unwrap());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    let separate = client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap();
    let main = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap();

    assert_eq!(separate.status(), StatusCode::OK);
    assert!(
        separate
            .text()
            .await
            .unwrap()
            .contains("auth_registrations_total")
    );
    assert_error(main, StatusCode::NOT_FOUND, "not_found").await;
    // The API is still on the main port.
    let healthz = client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_weak_bootstrap_password_is_refused_but_the_development_default_only_warned_about() {
    let (mut weak, _a) = test_settings();
    weak.bootstrap.admin_username = "root_admin".into();
    weak.bootstrap.admin_password = SecretString::from("password123".to_owned());
    let error = format!("{:#}", Application::build(weak).await.unwrap_err());
    assert!(error.contains("bootstrap.admin_password"), "{error}");
    assert!(error.contains("too easy to guess"), "{error}");

    let app = spawn_app_with(|s| {
        s.bootstrap.admin_username = "root_admin".into();
        s.bootstrap.admin_password =
            SecretString::from(auth_service::configuration::DEVELOPMENT_ADMIN_PASSWORD.to_owned());
    })
    .await;
    let login = app
        .login(
            "root_admin",
            auth_service::configuration::DEVELOPMENT_ADMIN_PASSWORD,
        )
        .await;
    assert_eq!(login.status(), StatusCode::OK);
}

#[tokio::test]
async fn out_of_range_settings_are_refused_at_start_not_clamped() {
    let (mut settings, _resources) = test_settings();
    settings.jwt.max_sessions_per_user = 0;
    settings.rate_limit.window_secs = 0;
    settings.server.trusted_proxies = vec!["not-a-network".into()];

    let error = format!("{:#}", Application::build(settings).await.unwrap_err());

    for named in [
        "jwt.max_sessions_per_user",
        "rate_limit.window_secs",
        "server.trusted_proxies",
    ] {
        assert!(error.contains(named), "{named} not named in: {error}");
    }
}

#[tokio::test]
async fn a_new_refresh_secret_over_existing_sessions_is_detected() {
    let app = spawn_app().await;
    app.registered_session().await;
    let key_dir = app.settings.keys.dir.clone();
    let secret = key_dir.join(auth_service::keys::REFRESH_SECRET_FILE);
    let before = std::fs::read_to_string(&secret).unwrap();

    // The key volume is lost: the secret is generated anew at the next start.
    std::fs::remove_file(&secret).unwrap();
    let restarted = Application::build(app.settings.clone()).await.unwrap();

    assert_ne!(std::fs::read_to_string(&secret).unwrap(), before);
    assert_eq!(
        restarted.secret_status(),
        SecretStatus::ChangedUnderLiveSessions
    );
    // The next start with the same secret is quiet again.
    let again = Application::build(app.settings.clone()).await.unwrap();
    assert_eq!(again.secret_status(), SecretStatus::Unchanged);
}

#[tokio::test]
async fn a_first_start_with_a_fresh_secret_and_no_sessions_is_quiet() {
    let (mut settings, _resources) = test_settings();
    std::fs::remove_file(
        settings
            .keys
            .dir
            .join(auth_service::keys::REFRESH_SECRET_FILE),
    )
    .ok();
    settings.keys.generate_if_missing = true;

    let app = Application::build(settings).await.unwrap();

    assert_eq!(app.secret_status(), SecretStatus::New);
}
