//! The deployment files, checked without a Docker engine: docker-compose.yml has the
//! shape the README promises, every variable it sets means something to the service it
//! is set for, scripts/run-local agrees with it, and (with `--ignored`, from
//! scripts/smoke) the release binaries run with its settings and pass `client-cli demo`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use auth_service::configuration::LayeredSettings as _;
use serde_norway::Value;

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn compose() -> Value {
    let text = std::fs::read_to_string(repo_file("docker-compose.yml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// `${NAME:-default}` resolved from the process environment, as compose does.
fn interpolate(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed ${…}") + start;
        let expr = &rest[start + 2..end];
        let (name, default) = expr.split_once(":-").unwrap_or((expr, ""));
        out.push_str(&std::env::var(name).unwrap_or_else(|_| default.to_owned()));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The environment compose gives `service`, interpolated.
fn service_env(compose: &Value, service: &str) -> HashMap<String, String> {
    let env = &compose["services"][service]["environment"];
    let map = env
        .as_mapping()
        .unwrap_or_else(|| panic!("{service}: environment must be a map"));
    map.iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => panic!("{service}: quote the value of {k:?}: {other:?}"),
            };
            (k.as_str().unwrap().to_owned(), interpolate(&value))
        })
        .collect()
}

fn with_prefix(env: &HashMap<String, String>, prefix: &str) -> HashMap<String, String> {
    env.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[test]
fn compose_has_the_four_services_with_health_checks_and_ordering() {
    let compose = compose();
    let services = &compose["services"];
    for name in ["postgres", "redis", "auth-service", "resource-service"] {
        assert!(
            services[name]["healthcheck"]["test"].is_sequence(),
            "{name} needs a health check"
        );
    }
    assert!(
        services["postgres"]["image"]
            .as_str()
            .unwrap()
            .starts_with("postgres:")
    );
    assert!(
        services["redis"]["image"]
            .as_str()
            .unwrap()
            .starts_with("redis:")
    );
    let redis_command = format!("{:?}", services["redis"]["command"]);
    assert!(
        redis_command.contains("--appendonly") && redis_command.contains("yes"),
        "AOF on: {redis_command}"
    );
    for (service, deps) in [
        ("auth-service", vec!["postgres", "redis"]),
        ("resource-service", vec!["auth-service"]),
    ] {
        for dep in deps {
            assert_eq!(
                services[service]["depends_on"][dep]["condition"].as_str(),
                Some("service_healthy"),
                "{service} → {dep}"
            );
        }
    }
    assert_eq!(
        services["auth-service"]["build"]["target"].as_str(),
        Some("auth-service")
    );
    assert_eq!(
        services["resource-service"]["build"]["target"].as_str(),
        Some("resource-service")
    );
    assert_eq!(
        format!("{:?}", services["auth-service"]["ports"]),
        format!("{:?}", Value::Sequence(vec!["127.0.0.1:8080:8080".into()]))
    );
    assert_eq!(
        format!("{:?}", services["resource-service"]["ports"]),
        format!("{:?}", Value::Sequence(vec!["127.0.0.1:8081:8081".into()]))
    );
    let volumes = compose["volumes"].as_mapping().unwrap();
    assert!(volumes.len() >= 3, "named volumes for data, AOF and keys");
    let jwks = service_env(&compose, "resource-service")["RESOURCE__JWKS__URL"].clone();
    assert_eq!(jwks, "http://auth-service:8080/.well-known/jwks.json");
}

#[test]
fn every_variable_compose_sets_is_a_key_the_service_accepts() {
    let compose = compose();
    let auth = with_prefix(&service_env(&compose, "auth-service"), "AUTH__");
    let resource = with_prefix(&service_env(&compose, "resource-service"), "RESOURCE__");
    assert!(auth.len() >= 10 && resource.len() >= 5);

    let auth_settings = auth_service::configuration::Settings::load_with_env(auth.clone())
        .unwrap_or_else(|e| panic!("auth-service refuses compose's variables: {e}"));
    let resource_settings =
        resource_service::configuration::Settings::load_with_env(resource.clone())
            .unwrap_or_else(|e| panic!("resource-service refuses compose's variables: {e}"));

    // And they took effect.
    assert_eq!(auth_settings.server.port, 8080);
    assert_eq!(auth_settings.keys.dir, PathBuf::from("/app/keys"));
    assert_eq!(resource_settings.jwt.issuer, auth_settings.jwt.issuer);
    assert_eq!(resource_settings.jwt.audience, auth_settings.jwt.audience);
    // A typo would not slip through: unknown keys are refused.
    let mut typo = auth;
    typo.insert("AUTH__JWT__ACCESS_TTL_SEC".into(), "60".into());
    assert!(auth_service::configuration::Settings::load_with_env(typo).is_err());
}

#[test]
fn run_local_uses_the_same_settings_as_compose() {
    let script = std::fs::read_to_string(repo_file("scripts/run-local")).unwrap();
    let compose = compose();
    // Addresses differ by design; everything else must match.
    let local_only = ["HOST", "PORT", "URL", "ISSUER", "DIR", "ADMIN_PASSWORD"];
    for service in ["auth-service", "resource-service"] {
        for (key, value) in service_env(&compose, service) {
            if !(key.starts_with("AUTH__") || key.starts_with("RESOURCE__")) {
                continue;
            }
            let assignment = script
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with(&format!("{key}=")))
                .unwrap_or_else(|| panic!("scripts/run-local does not set {key}"));
            if !local_only.iter().any(|s| key.ends_with(s)) {
                assert!(
                    assignment.starts_with(&format!("{key}=\"{value}\"")),
                    "{assignment} vs compose {value}"
                );
            }
        }
    }
}

#[test]
fn the_dockerfile_builds_both_targets_as_non_root_without_sources() {
    let dockerfile = std::fs::read_to_string(repo_file("Dockerfile")).unwrap();
    for stage in [
        "AS build",
        "AS runtime",
        "AS auth-service",
        "AS resource-service",
    ] {
        assert!(dockerfile.contains(stage), "{stage}");
    }
    assert!(dockerfile.contains("--locked"));
    assert!(dockerfile.contains("ca-certificates"));
    assert!(dockerfile.matches("USER app").count() == 2);
    assert!(dockerfile.contains(r#"CMD ["auth-service", "healthcheck"]"#));
    assert!(dockerfile.contains(r#"CMD ["resource-service", "healthcheck"]"#));
    let runtime = &dockerfile[dockerfile.find("AS runtime").unwrap()..];
    assert!(
        !runtime.contains("COPY . ."),
        "no sources in the runtime images"
    );
    let ignore = std::fs::read_to_string(repo_file(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
}

/// Picks a free local port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_ready(url: &str, child: &mut tokio::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status() == 200
        {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "{url}: the process exited"
        );
        assert!(Instant::now() < deadline, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs release binaries; run by scripts/smoke"]
async fn release_binaries_with_compose_settings_pass_the_demo() {
    let bin = PathBuf::from(
        std::env::var("SMOKE_BIN_DIR").expect("SMOKE_BIN_DIR is set by scripts/smoke"),
    );
    let compose = compose();
    // A database, Redis prefix and key directory of our own, cleaned up afterwards.
    let (isolated, _resources) = auth_service::testing::isolated_settings();
    use secrecy::ExposeSecret as _;
    let (auth_port, resource_port) = (free_port(), free_port());

    let mut auth_env = service_env(&compose, "auth-service");
    auth_env.insert("AUTH__SERVER__HOST".into(), "127.0.0.1".into());
    auth_env.insert("AUTH__SERVER__PORT".into(), auth_port.to_string());
    // The public URL clients use, which DPoP proofs name.
    let issuer = format!("http://127.0.0.1:{auth_port}");
    auth_env.insert("AUTH__JWT__ISSUER".into(), issuer.clone());
    auth_env.insert(
        "AUTH__DATABASE__URL".into(),
        isolated.database.url.expose_secret().to_owned(),
    );
    auth_env.insert(
        "AUTH__REDIS__URL".into(),
        isolated.redis.url.expose_secret().to_owned(),
    );
    auth_env.insert(
        "AUTH__REDIS__KEY_PREFIX".into(),
        isolated.redis.key_prefix.clone(),
    );
    auth_env.insert(
        "AUTH__KEYS__DIR".into(),
        isolated.keys.dir.display().to_string(),
    );
    let mut resource_env = service_env(&compose, "resource-service");
    resource_env.insert("RESOURCE__SERVER__HOST".into(), "127.0.0.1".into());
    resource_env.insert("RESOURCE__SERVER__PORT".into(), resource_port.to_string());
    resource_env.insert("RESOURCE__JWT__ISSUER".into(), issuer);
    resource_env.insert(
        "RESOURCE__JWKS__URL".into(),
        format!("http://127.0.0.1:{auth_port}/.well-known/jwks.json"),
    );

    let auth_log_path = isolated.keys.dir.with_extension("log");
    let spawn = |name: &str, env: &HashMap<String, String>| {
        let stdout = if name == "auth-service" {
            Stdio::from(std::fs::File::create(&auth_log_path).unwrap())
        } else {
            Stdio::null()
        };
        tokio::process::Command::new(bin.join(name))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut auth = spawn("auth-service", &auth_env);
    wait_ready(&format!("http://127.0.0.1:{auth_port}/readyz"), &mut auth).await;
    let mut resource = spawn("resource-service", &resource_env);
    wait_ready(
        &format!("http://127.0.0.1:{resource_port}/readyz"),
        &mut resource,
    )
    .await;

    // The container health checks, as Docker would run them.
    for (name, env) in [
        ("auth-service", &auth_env),
        ("resource-service", &resource_env),
    ] {
        let status = tokio::process::Command::new(bin.join(name))
            .arg("healthcheck")
            .env_clear()
            .envs(env)
            .status()
            .await
            .unwrap();
        assert!(status.success(), "{name} healthcheck");
    }

    let demo = tokio::process::Command::new(bin.join("client-cli"))
        .args(["--auth-url", &format!("http://127.0.0.1:{auth_port}")])
        .args([
            "--resource-url",
            &format!("http://127.0.0.1:{resource_port}"),
        ])
        .arg("demo")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&demo.stdout);
    println!("{stdout}");
    assert!(
        demo.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(stdout.contains("All 14 steps behaved as expected."));

    // The bootstrap admin from compose's settings exists and can reach /api/admin.
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("http://127.0.0.1:{auth_port}/auth/login"))
        .json(&serde_json::json!({
            "username": auth_env["AUTH__BOOTSTRAP__ADMIN_USERNAME"],
            "password": auth_env["AUTH__BOOTSTRAP__ADMIN_PASSWORD"],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = http
        .get(format!("http://127.0.0.1:{resource_port}/api/admin"))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);

    auth.kill().await.unwrap();
    resource.kill().await.unwrap();

    // Compose's development default admin password is warned about at start, and it
    // (like every other secret) never appears in the log.
    let log = std::fs::read_to_string(&auth_log_path).unwrap();
    let _ = std::fs::remove_file(&auth_log_path);
    assert!(
        log.contains("development default password"),
        "no warning about the development admin password in:\n{log}"
    );
    let password = auth_env["AUTH__BOOTSTRAP__ADMIN_PASSWORD"].as_str();
    assert!(!log.contains(password), "the admin password was logged");
    assert!(!log.contains(login["access_token"].as_str().unwrap()));
}

#[test]
fn every_auth_variable_the_readme_mentions_is_a_key_the_auth_service_accepts() {
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    let mut names: Vec<&str> = readme
        .match_indices("AUTH__")
        .map(|(start, _)| {
            let rest = &readme[start..];
            let end = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|name| !name.ends_with("__") && *name != "AUTH__SECTION__KEY")
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(
        names.contains(&"AUTH__RATE_LIMIT__ATTEMPTS_PER_IP"),
        "{names:?}"
    );

    for name in names {
        // Whatever its type, some value loads; an unknown key never does.
        let accepted = ["1000", "true", "x"].iter().any(|value| {
            auth_service::configuration::Settings::load_with_env(HashMap::from([(
                name.to_owned(),
                (*value).to_owned(),
            )]))
            .is_ok()
        });
        assert!(
            accepted,
            "README.md mentions {name}, which the auth-service refuses"
        );
    }
}

#[test]
fn the_readme_tells_a_newcomer_what_they_need() {
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    for needed in [
        // Prerequisites, including the client's Rust under Docker.
        "## Prerequisites",
        "needed **even with Docker**",
        "PostgreSQL ≥ 13",
        "Redis ≥ 7",
        "`curl`, `jq`",
        // The rules a first registration runs into.
        "3–64 characters of letters, digits, `_`, `.` and `-`",
        "8–128",
        // The admin role, and that it needs a new login.
        "array_append(roles, 'admin'), sessions_valid_after = now()",
        "must then log in again",
        // Resetting local state.
        "redis-cli --scan --pattern 'auth:*'",
        "dropdb -h 127.0.0.1 -U postgres auth",
        "docker compose down -v",
        "delete `.local/keys`",
        // Rate limits met by repeated experiments.
        "AUTH__RATE_LIMIT__ATTEMPTS_PER_IP=1000",
    ] {
        assert!(readme.contains(needed), "README.md lacks {needed:?}");
    }
}
