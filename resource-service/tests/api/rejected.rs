//! Every way we know to forge, bend or break a token: each is a 401 `invalid_token`
//! with a reason, never a 5xx, never a 200.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::{
    Sign, TestResource, assert_invalid_token, claims, good_token, header, mint, now, other_key,
    spawn_with_pem, trusted_key,
};

async fn rejected(app: &TestResource, token: &str) -> String {
    assert_invalid_token(app.get("/api/me", Some(token)).await, token).await
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

#[tokio::test]
async fn alg_none_in_any_spelling_is_refused() {
    let app = spawn_with_pem().await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let unsigned = mint(
            &header(trusted_key(), json!({"alg": alg})),
            &claims(json!({})),
            Sign::Empty,
        );
        assert_eq!(
            rejected(&app, &unsigned).await,
            "the token is not signed with RS256"
        );
        let with_signature = mint(
            &header(trusted_key(), json!({"alg": alg})),
            &claims(json!({})),
            Sign::Rs256(trusted_key()),
        );
        assert_eq!(
            rejected(&app, &with_signature).await,
            "the token is not signed with RS256"
        );
    }
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_refused() {
    let app = spawn_with_pem().await;
    let pem = trusted_key().public.to_spki_pem().unwrap();
    let secrets: Vec<Vec<u8>> = vec![
        pem.clone().into_bytes(),
        pem.trim_end().as_bytes().to_vec(),
        trusted_key().public.modulus().to_vec(),
    ];
    for secret in &secrets {
        let token = mint(
            &header(trusted_key(), json!({"alg": "HS256"})),
            &claims(json!({})),
            Sign::Hs256(secret),
        );
        assert_eq!(
            rejected(&app, &token).await,
            "the token is not signed with RS256"
        );
    }
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_the_real_kid_is_refused() {
    let app = spawn_with_pem().await;
    let token = mint(
        &header(trusted_key(), json!({})),
        &claims(json!({})),
        Sign::Rs256(other_key()),
    );

    assert_eq!(
        rejected(&app, &token).await,
        "the token's signature is invalid"
    );
}

#[tokio::test]
async fn headers_that_bring_their_own_key_are_refused() {
    let app = spawn_with_pem().await;
    let attacker = other_key();
    let cases = [
        (
            "jwk",
            json!({"kid": attacker.kid, "jwk": attacker.public.to_jwk()}),
        ),
        ("jwk", json!({"jwk": attacker.public.to_jwk()})),
        (
            "jku",
            json!({"kid": attacker.kid, "jku": "https://evil.example/jwks.json"}),
        ),
        (
            "x5u",
            json!({"kid": attacker.kid, "x5u": "https://evil.example/cert.pem"}),
        ),
        (
            "x5c",
            json!({"x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]}),
        ),
    ];
    for (name, changes) in cases {
        let token = mint(
            &header(trusted_key(), changes),
            &claims(json!({"roles": ["admin"]})),
            Sign::Rs256(attacker),
        );
        let reason = rejected(&app, &token).await;
        assert!(reason.contains(name), "{name}: {reason}");
    }
}

#[tokio::test]
async fn an_unknown_or_missing_kid_is_refused() {
    let app = spawn_with_pem().await;
    let unknown = mint(
        &header(other_key(), json!({})),
        &claims(json!({})),
        Sign::Rs256(other_key()),
    );
    let missing = mint(
        &header(trusted_key(), json!({"kid": null})),
        &claims(json!({})),
        Sign::Rs256(trusted_key()),
    );

    assert_eq!(
        rejected(&app, &unknown).await,
        "the token was signed with an unknown key"
    );
    assert_eq!(
        rejected(&app, &missing).await,
        "the token's header names no key (kid)"
    );
}

#[tokio::test]
async fn a_tampered_payload_or_truncated_signature_is_refused() {
    let app = spawn_with_pem().await;
    let token = good_token(json!({}));
    let parts = segments(&token);
    let forged_claims = URL_SAFE_NO_PAD.encode(claims(json!({"roles": ["admin"]})).to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
    let truncated = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        &parts[2][..parts[2].len() - 10]
    );
    let flipped = {
        let mut sig = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
        sig[0] ^= 1;
        format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig))
    };

    assert_eq!(
        rejected(&app, &tampered).await,
        "the token's signature is invalid"
    );
    rejected(&app, &truncated).await;
    assert_eq!(
        rejected(&app, &flipped).await,
        "the token's signature is invalid"
    );
}

#[tokio::test]
async fn time_and_audience_rules_are_enforced() {
    let app = spawn_with_pem().await;
    let now = now();
    let cases = [
        (json!({"exp": now - 60}), "the token has expired"),
        (json!({"nbf": now + 60}), "the token is not valid yet"),
        (
            json!({"iat": now + 60}),
            "the token was issued in the future",
        ),
        (
            json!({"iss": "https://evil.example"}),
            "the token was issued by another issuer",
        ),
        (
            json!({"aud": "another-service"}),
            "the token is meant for another audience",
        ),
        (json!({"aud": ["another-service"]}), ""),
        (json!({"exp": null}), ""),
        (json!({"nbf": null}), ""),
        (json!({"iss": null}), ""),
        (json!({"sub": "not-a-uuid"}), ""),
    ];
    for (changes, expected) in cases {
        let reason = rejected(&app, &good_token(changes.clone())).await;
        if !expected.is_empty() {
            assert_eq!(reason, expected, "{changes}");
        }
    }
}

#[tokio::test]
async fn exp_nbf_and_iat_must_be_numbers() {
    let app = spawn_with_pem().await;
    let far = (now() + 3600).to_string();
    for changes in [
        json!({"exp": far}),
        json!({"nbf": "0"}),
        json!({"iat": "0"}),
        json!({"exp": (now() + 300) as f64 + 0.5}),
        json!({"exp": "1e99"}),
    ] {
        let reason = rejected(&app, &good_token(changes.clone())).await;
        assert_eq!(
            reason, "the token's claims are missing or malformed",
            "{changes}"
        );
    }
}

#[tokio::test]
async fn only_at_jwt_tokens_are_accepted() {
    let app = spawn_with_pem().await;
    for typ in [
        json!("JWT"),
        json!("jwt"),
        json!("at+jwt+evil"),
        json!(null),
        json!(42),
    ] {
        let token = mint(
            &header(trusted_key(), json!({"typ": typ})),
            &claims(json!({})),
            Sign::Rs256(trusted_key()),
        );
        assert_eq!(
            rejected(&app, &token).await,
            "the token's typ is not at+jwt",
            "{typ}"
        );
    }
    // RFC 8725 §3.11: the full media type is the same type.
    let full = mint(
        &header(trusted_key(), json!({"typ": "application/at+jwt"})),
        &claims(json!({})),
        Sign::Rs256(trusted_key()),
    );
    assert_eq!(app.get("/api/me", Some(&full)).await.status(), 200);
}

#[tokio::test]
async fn other_algorithms_are_refused_even_with_the_real_key() {
    let app = spawn_with_pem().await;
    let cases = [
        ("RS384", Sign::Rs384(trusted_key())),
        ("PS256", Sign::Ps256(trusted_key())),
        ("ES256", Sign::Es256),
        ("RS512", Sign::Rs256(trusted_key())),
        ("EdDSA", Sign::Rs256(trusted_key())),
    ];
    for (alg, sign) in cases {
        let token = mint(
            &header(trusted_key(), json!({"alg": alg})),
            &claims(json!({})),
            sign,
        );
        assert_eq!(
            rejected(&app, &token).await,
            "the token is not signed with RS256",
            "{alg}"
        );
    }
    // An RS256 header over a PS256 signature still fails.
    let token = mint(
        &header(trusted_key(), json!({})),
        &claims(json!({})),
        Sign::Ps256(trusted_key()),
    );
    assert_eq!(
        rejected(&app, &token).await,
        "the token's signature is invalid"
    );
}

#[tokio::test]
async fn a_crit_header_is_refused() {
    let app = spawn_with_pem().await;
    let token = mint(
        &header(trusted_key(), json!({"crit": ["exp"], "exp": 1})),
        &claims(json!({})),
        Sign::Rs256(trusted_key()),
    );

    assert_eq!(
        rejected(&app, &token).await,
        "the token's header has a crit parameter, which is not supported"
    );
}

#[tokio::test]
async fn wrong_shapes_sizes_and_garbage_are_refused() {
    let app = spawn_with_pem().await;
    let token = good_token(json!({}));
    let parts = segments(&token);
    let big = good_token(json!({"padding": "x".repeat(9000)}));
    assert!(big.len() > 8192);
    let cases = vec![
        format!("{token}.{}", parts[2]),
        format!("{}.{}", parts[0], parts[1]),
        format!(
            "{}.{}.{}.{}.{}",
            parts[0], parts[1], parts[2], parts[2], parts[2]
        ),
        parts[0].clone(),
        format!("{}..{}", parts[0], parts[2]),
        format!(".{}.{}", parts[1], parts[2]),
        format!("{}.{}.{}", parts[0], parts[1], "!!!"),
        format!("{}.{}.", parts[0], parts[1]),
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode("not json"),
            parts[1],
            parts[2]
        ),
        format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("[]"), parts[1], parts[2]),
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode("not json"),
            parts[2]
        ),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        "garbage".into(),
        "a.b.c".into(),
        "..".into(),
        "eyJ".into(),
        big.clone(),
    ];
    for token in &cases {
        rejected(&app, token).await;
    }
    assert_eq!(
        rejected(&app, &big).await,
        "the token is larger than 8192 bytes"
    );
    // A huge header value is refused too (by the server's header limit or by us), never a 5xx.
    let huge = "A".repeat(40_000);
    let response = app.get("/api/me", Some(&huge)).await;
    assert!(response.status().is_client_error(), "{}", response.status());
}

#[tokio::test]
async fn the_rejection_reason_never_echoes_the_token() {
    let app = spawn_with_pem().await;
    let token = mint(
        &header(other_key(), json!({})),
        &claims(json!({"preferred_username": "<script>"})),
        Sign::Rs256(other_key()),
    );

    let response = app.get("/api/me", Some(&token)).await;
    let body: Value = response.json().await.unwrap();

    assert!(!body.to_string().contains(&token));
    assert!(!body.to_string().contains("<script>"));
}
