//! The `dpop.*` settings: defaults, environment lists, and refusal at start.

use reqwest::StatusCode;
use resource_service::configuration::Settings;
use serde_json::json;

use super::*;
use crate::helpers::{pem_settings, spawn_with_pem_and};
use resource_service::configuration::LayeredSettings as _;

type Adjust = fn(&mut Settings);

#[tokio::test]
async fn the_dpop_settings_are_applied() {
    let app = spawn_with_pem_and(|s| {
        s.dpop.algorithms = vec!["EdDSA".into()];
        s.dpop.proof_max_age_secs = 5;
    })
    .await;
    let es = ClientKey::es256();
    let ed = ClientKey::eddsa();
    let es_token = bound_token(&es);
    let ed_token = bound_token(&ed);

    let es256 = proof(&app, &es, &es_token, json!({}), json!({}));
    let old = proof(&app, &ed, &ed_token, json!({}), json!({"iat": now() - 30}));
    let fresh = proof(&app, &ed, &ed_token, json!({}), json!({}));

    let es256 = call(&app, "/api/me", &es_token, &[&es256]).await;
    let challenge = es256.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(es256.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge.ends_with(r#"algs="EdDSA""#), "{challenge}");
    let old = call(&app, "/api/me", &ed_token, &[&old]).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let fresh = call(&app, "/api/me", &ed_token, &[&fresh]).await;
    assert_eq!(fresh.status(), StatusCode::OK);
}

#[tokio::test]
async fn unusable_dpop_settings_stop_the_service_at_start_with_a_clear_message() {
    let cases: [(Adjust, &str); 5] = [
        (
            |s| s.dpop.algorithms = vec!["RS256".into()],
            "dpop.algorithms: unknown algorithm \"RS256\"",
        ),
        (|s| s.dpop.algorithms = vec![], "dpop.algorithms is empty"),
        (
            |s| s.dpop.proof_max_age_secs = 0,
            "dpop.proof_max_age_secs must be between 1",
        ),
        (
            |s| s.dpop.replay_cache_entries = 0,
            "dpop.replay_cache_entries must be at least 1",
        ),
        (
            |s| s.server.public_url = "api.example".into(),
            "server.public_url: ",
        ),
    ];
    for (adjust, expected) in cases {
        let (settings, _dir) = pem_settings(adjust);
        let error = resource_service::startup::Application::build(settings)
            .await
            .unwrap_err();
        assert!(
            format!("{error:#}").contains(expected),
            "{error:#} vs {expected}"
        );
    }
}

#[test]
fn dpop_settings_have_defaults_and_take_lists_from_the_environment() {
    let defaults = Settings::load_with_env(Default::default()).unwrap();
    let from_env = Settings::load_with_env(
        [("RESOURCE__DPOP__ALGORITHMS".to_owned(), "EdDSA".to_owned())].into(),
    )
    .unwrap();

    assert_eq!(defaults.dpop.algorithms, ["ES256", "EdDSA"]);
    assert_eq!(defaults.dpop.proof_max_age_secs, 60);
    assert_eq!(defaults.dpop.replay_cache_entries, 100_000);
    assert_eq!(defaults.server.public_url, "");
    assert_eq!(from_env.dpop.algorithms, ["EdDSA"]);
}
