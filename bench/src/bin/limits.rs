//! The limits of the cryptography, in CPU time on one core, with the exact code the
//! services run: RS256 sign (`RsaSigningKey::sign`, as the auth-service issues tokens) and
//! verify (`VerifyingKey::verifies`, the RSASSA-PKCS1-v1_5 check with a key parsed once,
//! which is all `Verifier` does per token beyond decoding), plus the whole
//! `Verifier::verify` on a miss and on a cache hit.
//!
//! `cargo run --release -p bench --bin limits [-- --quick]`; prints `limit <name> <µs>`
//! lines for `bench/run` after a readable table.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use bench::{cpu_time_per_op, describe};
use secrecy::ExposeSecret as _;
use shared_claims::protocol::Clock as _;
use shared_claims::{
    AccessClaims, KeySet, RsaSigningKey, Verifier, VerifierSettings, VerifyingKey,
};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = Duration::from_millis(if quick { 400 } else { 1500 });
    let pem = shared_claims::generate_rsa_pkcs8_pem(2048).expect("RSA key generation");
    let signer = RsaSigningKey::from_pkcs8_pem(pem.expose_secret()).unwrap();
    let now = shared_claims::protocol::SystemClock.now_secs();
    let claims = AccessClaims {
        iss: "http://127.0.0.1:8080".into(),
        sub: uuid::Uuid::new_v4(),
        aud: "resource-service".into(),
        exp: now + 600,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4(),
        sid: uuid::Uuid::new_v4(),
        client_id: "client-cli".into(),
        scope: "read write".into(),
        roles: vec!["user".into()],
        preferred_username: "alice".into(),
        cnf: None,
    };
    let settings = VerifierSettings {
        issuer: claims.iss.clone(),
        audience: claims.aud.clone(),
        leeway_secs: 5,
    };
    let keys = KeySet::from_public_keys([signer.public_key()]);
    let uncached = Verifier::new(&settings, keys.clone()).with_cache_entries(0);
    let cached = Verifier::new(&settings, keys);
    let token = signer.sign(&claims).unwrap();
    // Twice: the cache stores a token on its second verification.
    assert!(cached.verify(&token).is_ok());
    assert!(cached.verify(&token).is_ok());

    let sign = cpu_time_per_op(budget, || {
        black_box(signer.sign(black_box(&claims)).unwrap());
    });
    let key = VerifyingKey::new(signer.public_key()).expect("a usable public key");
    let (message, signature) = token.rsplit_once('.').unwrap();
    let signature = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .unwrap()
    };
    let verify = cpu_time_per_op(budget, || {
        assert!(key.verifies(black_box(message.as_bytes()), &signature));
    });
    let miss = cpu_time_per_op(budget, || {
        black_box(uncached.verify(black_box(&token)).unwrap());
    });
    let hit = cpu_time_per_op(budget, || {
        black_box(cached.verify(black_box(&token)).unwrap());
    });

    println!("RS256, RSA-2048, AWS-LC; CPU time per operation on one core");
    println!(
        "sign    RsaSigningKey::sign               {}",
        describe(sign)
    );
    println!(
        "verify  VerifyingKey::verifies (RSA only)  {}",
        describe(verify)
    );
    println!(
        "verify  Verifier::verify, cache off        {}",
        describe(miss)
    );
    println!(
        "verify  Verifier::verify, cache hit        {}",
        describe(hit)
    );
    for (name, value) in [
        ("sign", sign),
        ("verify", verify),
        ("verifier_miss", miss),
        ("verifier_hit", hit),
    ] {
        println!("limit {name} {:.2}", value.as_secs_f64() * 1e6);
    }
}
