//! `/metrics` of the resource-service: tokens refused by reason, JWKS fetches by outcome,
//! and requests by route pattern whatever the paths asked for.

use serde_json::json;

use crate::helpers::{
    JwksServer, Sign, TestKey, claims, good_token, header, mint, other_key, spawn_with_jwks,
    spawn_with_pem, trusted_key,
};

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0.0)
}

fn refused(reason: &str) -> String {
    format!("tokens_refused_total{{service=\"resource-service\",reason=\"{reason}\"}} ")
}

#[tokio::test]
async fn each_kind_of_refused_token_is_counted_under_its_reason() {
    let app = spawn_with_pem().await;
    let now = crate::helpers::now();
    let tokens = [
        good_token(json!({"exp": now - 600})),
        good_token(json!({"aud": "someone-else"})),
        good_token(json!({"iss": "http://elsewhere"})),
        mint(
            &header(trusted_key(), json!({})),
            &claims(json!({})),
            Sign::Rs256(other_key()),
        ),
        mint(
            &header(other_key(), json!({})),
            &claims(json!({})),
            Sign::Rs256(other_key()),
        ),
        "garbage".to_owned(),
    ];
    for token in &tokens {
        assert_eq!(app.get("/api/me", Some(token)).await.status(), 401);
    }
    app.get("/api/me", None).await;
    assert_eq!(
        app.get("/api/me", Some(&good_token(json!({}))))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get("/api/admin", Some(&good_token(json!({}))))
            .await
            .status(),
        403
    );

    let text = app.get("/metrics", None).await.text().await.unwrap();

    for reason in [
        "expired",
        "audience",
        "issuer",
        "signature",
        "unknown_kid",
        "malformed",
        "missing",
        "insufficient_scope",
    ] {
        assert_eq!(value(&text, &refused(reason)), 1.0, "{reason} in\n{text}");
    }
    assert!(
        text.contains(
            r#"http_requests_total{service="resource-service",route="/api/me",method="GET",status="200"} 1"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn jwks_fetches_are_counted_by_outcome() {
    let jwks = JwksServer::start(TestKey::jwks(&[trusted_key()]), false).await;
    let app = spawn_with_jwks(&jwks.url, |_| {}).await;
    // Let at least one fetch fail, then bring the JWKS up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while jwks.hits() == 0 {
        assert!(std::time::Instant::now() < deadline, "never fetched");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    jwks.set_up(true);
    while app.get("/readyz", None).await.status() != 200 {
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let text = app.get("/metrics", None).await.text().await.unwrap();

    let series = |outcome: &str| {
        format!(
            "resource_jwks_fetches_total{{service=\"resource-service\",outcome=\"{outcome}\"}} "
        )
    };
    assert!(value(&text, &series("failure")) >= 1.0, "{text}");
    assert_eq!(value(&text, &series("success")), 1.0, "{text}");
}

#[tokio::test]
async fn verified_token_cache_hits_and_misses_are_counted() {
    let app = spawn_with_pem().await;
    let token = good_token(json!({}));
    for _ in 0..3 {
        assert_eq!(app.get("/api/me", Some(&token)).await.status(), 200);
    }

    let text = app.get("/metrics", None).await.text().await.unwrap();

    let lookups = |result: &str| {
        value(
            &text,
            &format!(
                "verified_token_cache_lookups_total{{service=\"resource-service\",result=\"{result}\"}} "
            ),
        )
    };
    // The first two requests verify in full (the cache takes a token on its second
    // verification), the third is answered from the cache.
    assert_eq!(lookups("miss"), 2.0, "{text}");
    assert_eq!(lookups("hit"), 1.0, "{text}");
}
