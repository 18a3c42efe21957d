//! What DPoP refuses (RFC 9449 §4.3 and §7.1): each case a 401 with the RFC's error code
//! and a DPoP challenge.

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::helpers::spawn_with_pem;

#[tokio::test]
async fn a_bound_token_sent_as_bearer_is_refused_with_a_dpop_challenge() {
    let app = spawn_with_pem().await;
    let key = ClientKey::es256();
    let token = bound_token(&key);

    let response = app.get("/api/me", Some(&token)).await;

    let description = assert_refused(response, "invalid_token").await;
    assert!(description.contains("DPoP"), "{description}");
}

#[tokio::test]
async fn a_bound_token_without_a_proof_is_refused() {
    let app = spawn_with_pem().await;
    let token = bound_token(&ClientKey::es256());

    let response = call(&app, "/api/me", &token, &[]).await;

    assert_eq!(
        assert_refused(response, "invalid_dpop_proof").await,
        "the request carries no DPoP proof"
    );
}

#[tokio::test]
async fn two_dpop_headers_are_refused() {
    let app = spawn_with_pem().await;
    let key = ClientKey::es256();
    let token = bound_token(&key);
    let one = proof(&app, &key, &token, json!({}), json!({}));
    let two = proof(&app, &key, &token, json!({}), json!({}));

    let response = call(&app, "/api/me", &token, &[&one, &two]).await;

    assert_eq!(
        assert_refused(response, "invalid_dpop_proof").await,
        "the request carries more than one DPoP header"
    );
}

#[tokio::test]
async fn a_proof_by_another_key_than_the_tokens_is_refused() {
    let app = spawn_with_pem().await;
    let token = bound_token(&ClientKey::es256());
    let thief = ClientKey::es256();

    let description = refused_proof(
        &app,
        &token,
        &proof(&app, &thief, &token, json!({}), json!({})),
    )
    .await;

    assert!(description.contains("another key"), "{description}");
}

#[tokio::test]
async fn a_replayed_proof_or_reused_jti_is_refused() {
    let app = spawn_with_pem().await;
    let key = ClientKey::eddsa();
    let token = bound_token(&key);
    let first = proof(&app, &key, &token, json!({}), json!({"jti": "once"}));
    assert_eq!(
        call(&app, "/api/me", &token, &[&first]).await.status(),
        StatusCode::OK
    );

    let replayed = refused_proof(&app, &token, &first).await;
    let same_jti = proof(
        &app,
        &key,
        &token,
        json!({}),
        json!({"jti": "once", "iat": now() - 1}),
    );
    let reused = refused_proof(&app, &token, &same_jti).await;

    assert_eq!(replayed, "the DPoP proof has already been used");
    assert_eq!(reused, replayed);
}

#[tokio::test]
async fn concurrent_copies_of_one_proof_succeed_exactly_once() {
    let app = spawn_with_pem().await;
    let key = ClientKey::es256();
    let token = bound_token(&key);
    let proof = proof(&app, &key, &token, json!({}), json!({}));
    let proofs = [proof.as_str()];

    let responses =
        futures_util::future::join_all((0..8).map(|_| call(&app, "/api/me", &token, &proofs)))
            .await;

    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_proof_for_another_method_url_time_or_token_is_refused() {
    let app = spawn_with_pem().await;
    let key = ClientKey::es256();
    let token = bound_token(&key);
    let cases = [
        (
            json!({"htm": "POST"}),
            "the DPoP proof was made for another HTTP method",
        ),
        (
            json!({"htu": format!("{}/api/admin", app.address)}),
            "the DPoP proof was made for another URL",
        ),
        (
            json!({"htu": "http://evil.example/api/me"}),
            "the DPoP proof was made for another URL",
        ),
        (
            json!({"iat": now() - 300}),
            "the DPoP proof's iat is outside the accepted time window",
        ),
        (
            json!({"iat": now() + 300}),
            "the DPoP proof's iat is outside the accepted time window",
        ),
        (
            json!({"ath": sha256_b64("another token")}),
            "the DPoP proof's ath does not match the access token",
        ),
        (
            json!({"ath": null}),
            "the DPoP proof's ath claim is missing or malformed",
        ),
    ];
    for (claims, expected) in cases {
        let proof = proof(&app, &key, &token, json!({}), claims.clone());
        assert_eq!(
            refused_proof(&app, &token, &proof).await,
            expected,
            "{claims}"
        );
    }
}

#[tokio::test]
async fn unsigned_and_hmac_proofs_are_refused() {
    let app = spawn_with_pem().await;
    let key = ClientKey::es256();
    let token = bound_token(&key);
    let claims = json!({
        "jti": "x", "htm": "GET", "htu": format!("{}/api/me", app.address),
        "iat": now(), "ath": sha256_b64(&token),
    });

    let none = jws(
        &json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()}),
        &claims,
        None,
    );
    let hs256_header =
        json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": b64("secret")}});
    let input = format!(
        "{}.{}",
        b64(hs256_header.to_string()),
        b64(claims.to_string())
    );
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"secret"),
        input.as_bytes(),
    );
    let hs256 = format!("{input}.{}", b64(mac));

    for forged in [none, hs256] {
        assert_eq!(
            refused_proof(&app, &token, &forged).await,
            "the DPoP proof's alg is not an accepted algorithm"
        );
    }
}

#[tokio::test]
async fn a_proof_with_a_private_key_in_its_jwk_is_refused() {
    let app = spawn_with_pem().await;
    let key = ClientKey::es256();
    let ClientKey::Es256(secret) = &key else {
        unreachable!()
    };
    let token = bound_token(&key);
    let mut jwk = key.jwk();
    jwk["d"] = json!(b64(secret.to_bytes()));

    let proof = proof(&app, &key, &token, json!({"jwk": jwk}), json!({}));

    assert_eq!(
        refused_proof(&app, &token, &proof).await,
        "the DPoP proof's jwk contains private or symmetric key material"
    );
}

#[tokio::test]
async fn a_proof_without_typ_is_refused() {
    let app = spawn_with_pem().await;
    let key = ClientKey::eddsa();
    let token = bound_token(&key);

    let proof = proof(&app, &key, &token, json!({"typ": null}), json!({}));

    assert_eq!(
        refused_proof(&app, &token, &proof).await,
        "the DPoP proof's typ is not dpop+jwt"
    );
}
