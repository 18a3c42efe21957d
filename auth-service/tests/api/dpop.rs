//! DPoP at the auth-service (RFC 9449 §5): a session opened with a proof is bound to the
//! proof's key, and its refresh token is useless without that key. Proofs are made here
//! with p256 / ed25519-dalek (see `auth_service::testing::dpop`), not with the server's
//! ring-based verifier.

use std::collections::HashSet;

use auth_service::testing::dpop::{ClientKey, b64, jws, now};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, TestApp, assert_error, jwt_part, spawn_app, spawn_app_with, unique_username,
};

impl TestApp {
    /// `POST path` with a JSON body and, if given, a `DPoP` header.
    async fn post_with_proof(&self, path: &str, body: &Value, proof: Option<&str>) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request.send().await.unwrap()
    }

    /// An honest proof by `key` for `POST <issuer><path>`.
    fn proof_for(&self, key: &ClientKey, path: &str) -> String {
        key.proof(
            "POST",
            &format!("{}{path}", self.settings.jwt.issuer),
            None,
            json!({}),
            json!({}),
        )
    }

    /// Registers a user and logs in with a proof by `key`.
    async fn bound_session(&self, key: &ClientKey) -> Value {
        let username = unique_username();
        self.register(&username, PASSWORD).await;
        let proof = self.proof_for(key, "/auth/login");
        let response = self
            .post_with_proof(
                "/auth/login",
                &json!({"username": username, "password": PASSWORD}),
                Some(&proof),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn refresh_with(&self, token: &str, proof: Option<&str>) -> Response {
        self.post_with_proof("/auth/refresh", &json!({"refresh_token": token}), proof)
            .await
    }

    async fn refresh_with_key(&self, token: &str, key: &ClientKey) -> Response {
        let proof = self.proof_for(key, "/auth/refresh");
        self.refresh_with(token, Some(&proof)).await
    }
}

fn refresh_token(body: &Value) -> String {
    body["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_login_with_a_proof_binds_the_session_and_its_tokens_for_es256_and_eddsa() {
    let app = spawn_app().await;
    for key in [ClientKey::es256(), ClientKey::eddsa()] {
        let login = app.bound_session(&key).await;

        assert_eq!(login["token_type"], "DPoP");
        let claims = jwt_part(login["access_token"].as_str().unwrap(), 1);
        assert_eq!(claims["cnf"]["jkt"], key.jkt().as_str());

        let refreshed = app.refresh_with_key(&refresh_token(&login), &key).await;
        assert_eq!(refreshed.status(), StatusCode::OK);
        let refreshed: Value = refreshed.json().await.unwrap();
        assert_eq!(refreshed["token_type"], "DPoP");
        let claims = jwt_part(refreshed["access_token"].as_str().unwrap(), 1);
        assert_eq!(claims["cnf"]["jkt"], key.jkt().as_str());
    }
    // Without a proof, today's bearer tokens.
    let (_, plain) = app.registered_session().await;
    assert_eq!(plain["token_type"], "Bearer");
    assert!(
        jwt_part(plain["access_token"].as_str().unwrap(), 1)
            .get("cnf")
            .is_none()
    );
}

#[tokio::test]
async fn the_current_token_of_a_bound_session_without_the_key_is_refused_and_the_session_survives()
{
    let app = spawn_app().await;
    let key = ClientKey::es256();
    let login = app.bound_session(&key).await;
    let token = refresh_token(&login);

    // A thief with the token alone, or with a key of their own.
    assert_error(
        app.refresh_with(&token, None).await,
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
    )
    .await;
    assert_error(
        app.refresh_with_key(&token, &ClientKey::eddsa()).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;

    // The owner carries on.
    assert_eq!(
        app.refresh_with_key(&token, &key).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_thief_replaying_the_previous_token_inside_the_window_with_another_key_is_reuse() {
    let app = spawn_app().await;
    let key = ClientKey::es256();
    let login = app.bound_session(&key).await;
    let stolen = refresh_token(&login);
    let rotated: Value = app
        .refresh_with_key(&stolen, &key)
        .await
        .json()
        .await
        .unwrap();

    // Inside the grace window, which would hand an unbound client the same successor.
    let thief = app.refresh_with_key(&stolen, &ClientKey::es256()).await;

    assert_error(thief, StatusCode::UNAUTHORIZED, "invalid_grant").await;
    // Counted as reuse: the whole session is gone, the owner's current token too.
    assert_error(
        app.refresh_with_key(&refresh_token(&rotated), &key).await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("auth_refreshes_total{service=\"auth-service\",outcome=\"reuse\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn twenty_concurrent_bound_refreshes_with_proofs_of_the_same_key_yield_one_successor() {
    let app = spawn_app().await;
    let key = ClientKey::eddsa();
    let login = app.bound_session(&key).await;
    let token = refresh_token(&login);
    let proofs: Vec<String> = (0..20)
        .map(|_| app.proof_for(&key, "/auth/refresh"))
        .collect();

    let results = futures_util::future::join_all(proofs.iter().map(|proof| async {
        let response = app.refresh_with(&token, Some(proof)).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (status, body["refresh_token"].as_str().map(str::to_owned))
    }))
    .await;

    let successors: HashSet<_> = results.iter().filter_map(|(_, t)| t.clone()).collect();
    assert_eq!(successors.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(s, _)| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED)
    );
    let successor = successors.into_iter().next().unwrap();
    assert_eq!(
        app.refresh_with_key(&successor, &key).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_proofs_at_the_token_endpoints_are_400_invalid_dpop_proof_never_5xx() {
    let app = spawn_app().await;
    let key = ClientKey::es256();
    let login = app.bound_session(&key).await;
    let token = refresh_token(&login);
    let url = format!("{}/auth/refresh", app.settings.jwt.issuer);
    let honest = |header: Value, claims: Value| key.proof("POST", &url, None, header, claims);

    let replayed = honest(json!({}), json!({}));
    assert_eq!(
        app.refresh_with(&token, Some(&replayed)).await.status(),
        StatusCode::OK
    );
    let token = refresh_token(
        &app.refresh_with_key(&token, &key)
            .await
            .json()
            .await
            .unwrap(),
    );

    let claims = json!({"jti": "x", "htm": "POST", "htu": url, "iat": now()});
    let hs256_header =
        json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": b64("secret")}});
    let mut private_jwk = key.jwk();
    private_jwk["d"] = json!(b64([7u8; 32]));
    let cases = [
        ("replayed jti", replayed),
        ("wrong htm", honest(json!({}), json!({"htm": "GET"}))),
        (
            "wrong htu",
            honest(
                json!({}),
                json!({"htu": format!("{}/oauth/token", app.settings.jwt.issuer)}),
            ),
        ),
        ("stale iat", honest(json!({}), json!({"iat": now() - 600}))),
        (
            "iat from the future",
            honest(json!({}), json!({"iat": now() + 600})),
        ),
        (
            "alg none",
            jws(
                &json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()}),
                &claims,
                None,
            ),
        ),
        (
            "HS256",
            format!(
                "{}.{}",
                jws(&hs256_header, &claims, None).trim_end_matches('.'),
                b64([1u8; 32])
            ),
        ),
        (
            "private key in jwk",
            honest(json!({"jwk": private_jwk}), json!({})),
        ),
        ("typ missing", honest(json!({"typ": null}), json!({}))),
        ("no jwk", honest(json!({"jwk": null}), json!({}))),
        ("garbage", "not.a.proof".to_owned()),
    ];
    for (case, proof) in cases {
        let response = app.refresh_with(&token, Some(&proof)).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
        assert_eq!(body["error"], "invalid_dpop_proof", "{case}: {body}");
    }
    // Two DPoP headers.
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .header("DPoP", app.proof_for(&key, "/auth/refresh"))
        .header("DPoP", app.proof_for(&key, "/auth/refresh"))
        .json(&json!({"refresh_token": token}))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_dpop_proof").await;
    // None of it touched the session.
    assert_eq!(
        app.refresh_with_key(&token, &key).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_oauth_token_endpoint_issues_dpop_tokens_and_checks_the_binding() {
    let app = spawn_app().await;
    let key = ClientKey::eddsa();
    let username = unique_username();
    app.register(&username, PASSWORD).await;
    let form = |pairs: &[(&str, &str)], proof: String| {
        app.client
            .post(app.url("/oauth/token"))
            .header("DPoP", proof)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(pairs).unwrap())
            .send()
    };

    let granted: Value = form(
        &[
            ("grant_type", "password"),
            ("username", &username),
            ("password", PASSWORD),
        ],
        app.proof_for(&key, "/oauth/token"),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(granted["token_type"], "DPoP");

    let refresh = granted["refresh_token"].as_str().unwrap();
    let other = form(
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        ClientKey::es256().proof(
            "POST",
            &format!("{}/oauth/token", app.settings.jwt.issuer),
            None,
            json!({}),
            json!({}),
        ),
    )
    .await
    .unwrap();
    assert_error(other, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let same = form(
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        app.proof_for(&key, "/oauth/token"),
    )
    .await
    .unwrap();
    assert_eq!(same.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_dpop_required_a_login_without_a_proof_is_refused() {
    let app = spawn_app_with(|s| s.dpop.required = true).await;
    let username = unique_username();
    app.register(&username, PASSWORD).await;

    assert_error(
        app.login(&username, PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_dpop_proof",
    )
    .await;
    let key = ClientKey::es256();
    let proof = app.proof_for(&key, "/auth/login");
    let bound = app
        .post_with_proof(
            "/auth/login",
            &json!({"username": username, "password": PASSWORD}),
            Some(&proof),
        )
        .await;
    assert_eq!(bound.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_metadata_advertises_the_proof_algorithms() {
    let app = spawn_app_with(|s| s.dpop.algorithms = vec!["EdDSA".into()]).await;

    let metadata: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["EdDSA"])
    );
}

#[tokio::test]
async fn session_calls_take_bound_tokens_only_with_a_matching_proof() {
    let app = spawn_app().await;
    let key = ClientKey::es256();
    let login = app.bound_session(&key).await;
    let access = login["access_token"].as_str().unwrap();
    let url = format!("{}/auth/sessions", app.settings.jwt.issuer);
    let get = |scheme: &'static str, proof: Option<String>| {
        let mut request = app
            .client
            .get(app.url("/auth/sessions"))
            .header("Authorization", format!("{scheme} {access}"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        request.send()
    };

    let as_bearer = get("Bearer", None).await.unwrap();
    let challenge = as_bearer.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert_error(as_bearer, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let wrong_ath = get(
        "DPoP",
        Some(key.proof("GET", &url, Some("another token"), json!({}), json!({}))),
    )
    .await
    .unwrap();
    assert_error(wrong_ath, StatusCode::UNAUTHORIZED, "invalid_dpop_proof").await;
    let good = get(
        "DPoP",
        Some(key.proof("GET", &url, Some(access), json!({}), json!({}))),
    )
    .await
    .unwrap();
    assert_eq!(good.status(), StatusCode::OK);
}
