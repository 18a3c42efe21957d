//! RS256 sign and verify on one core, as the auth-service and resource-service do them.
//!
//! `cargo run --release -p bench --bin crypto`
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use bench::{describe, time_per_op};
use secrecy::ExposeSecret as _;
use shared_claims::protocol::Clock as _;
use shared_claims::{AccessClaims, KeySet, RsaSigningKey, Verifier, VerifierSettings};

fn main() {
    let budget = Duration::from_secs(2);
    let pem = auth_service::keys::generate_rsa_pkcs8_pem(2048).expect("RSA key generation");
    let pem = pem.expose_secret();
    let der = pem_body(pem);
    let signer = RsaSigningKey::from_pkcs8_pem(pem).unwrap();
    let now = shared_claims::protocol::SystemClock.now_secs();
    let claims = AccessClaims {
        iss: "http://localhost:8080".into(),
        sub: uuid::Uuid::new_v4(),
        aud: "resource-service".into(),
        exp: now + 300,
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
    shared_claims::install_crypto_provider();
    let verifier = Verifier::new(
        &VerifierSettings {
            issuer: claims.iss.clone(),
            audience: claims.aud.clone(),
            leeway_secs: 5,
        },
        KeySet::from_public_keys([signer.public_key()]),
    )
    // Every call verifies in full: with the cache, all but the first two would be hits.
    .with_cache_entries(0);
    let token = signer.sign(&claims).unwrap();
    assert!(verifier.verify(&token).is_ok());

    println!("RS256, RSA-2048, one thread, ring backend");
    println!("{}", "-".repeat(72));

    let sign = time_per_op(budget, || {
        black_box(signer.sign(black_box(&claims)).unwrap());
    });
    println!(
        "sign   RsaSigningKey::sign (key parsed once)      {}",
        describe(sign)
    );

    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(signer.kid().to_owned());
    header.typ = Some("at+jwt".into());
    let encoding_key = jsonwebtoken::EncodingKey::from_rsa_der(&der);
    let encode = time_per_op(budget, || {
        black_box(jsonwebtoken::encode(&header, black_box(&claims), &encoding_key).unwrap());
    });
    println!(
        "sign   jsonwebtoken::encode (re-parses the key)    {}",
        describe(encode)
    );

    let verify = time_per_op(budget, || {
        black_box(verifier.verify(black_box(&token)).unwrap());
    });
    println!(
        "verify Verifier::verify (all rules, cache off)     {}",
        describe(verify)
    );

    let public = signer.public_key();
    let (message, signature) = token.rsplit_once('.').unwrap();
    let signature = base64_decode(signature);
    let raw = time_per_op(budget, || {
        ring::signature::RsaPublicKeyComponents {
            n: public.modulus(),
            e: public.exponent(),
        }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            message.as_bytes(),
            &signature,
        )
        .unwrap();
    });
    println!(
        "verify ring signature check alone                  {}",
        describe(raw)
    );
    println!("{}", "-".repeat(72));
    println!(
        "key re-parsing costs {:.1} µs per token ({:.2}× the pre-parsed signer)",
        (encode.as_secs_f64() - sign.as_secs_f64()) * 1e6,
        encode.as_secs_f64() / sign.as_secs_f64()
    );
    println!(
        "full verification is {:.2}× the bare signature check; verify is {:.0}× cheaper than sign",
        verify.as_secs_f64() / raw.as_secs_f64(),
        sign.as_secs_f64() / verify.as_secs_f64()
    );
}

/// The DER bytes a PEM text armours.
fn pem_body(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}
