//! The verifier's use of its cache, driven through cache entries planted for tokens that
//! would not verify at all: when such a "token" gets past structure and signature
//! checks, it was served from the cache, so each test can tell a hit from a miss.

use super::*;
use crate::protocol::{Clock as _, SystemClock};

/// The verifier's clock in these tests: the planted claims are valid around it.
fn now() -> i64 {
    SystemClock.now_secs()
}

/// A public key that can sit in a key set (no token will ever verify with it).
fn key(fill: u8) -> RsaPublicKey {
    RsaPublicKey::from_components(&[fill; 256], &[1, 0, 1]).unwrap()
}

fn claims(now: i64) -> AccessClaims {
    AccessClaims {
        iss: "https://issuer.test".into(),
        sub: uuid::Uuid::new_v4(),
        aud: "resource-service".into(),
        exp: now + 300,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4(),
        sid: uuid::Uuid::new_v4(),
        client_id: "client-cli".into(),
        scope: "read".into(),
        roles: vec!["user".into()],
        preferred_username: "alice".into(),
        cnf: None,
    }
}

fn verifier(keys: &[&RsaPublicKey]) -> Verifier {
    Verifier::new(
        &VerifierSettings {
            issuer: "https://issuer.test".into(),
            audience: "resource-service".into(),
            leeway_secs: 5,
        },
        KeySet::from_public_keys(keys.iter().copied()),
    )
}

/// Plants `claims` in the cache as if `token` had been verified by `signer` (twice: the
/// cache stores a token on its second verification).
fn plant(verifier: &Verifier, token: &str, signer: &RsaPublicKey, claims: &AccessClaims) {
    let cache = verifier.cache.as_ref().unwrap();
    for _ in 0..2 {
        let claims = std::sync::Arc::new(claims.clone());
        cache.remember(VerifiedTokens::digest(token), &signer.thumbprint(), &claims);
    }
}

const NOT_A_JWT: &str = "planted";

#[test]
fn a_cached_token_is_served_without_verifying_again() {
    let signer = key(0xc1);
    let verifier = verifier(&[&signer]);
    let now = now();
    plant(&verifier, NOT_A_JWT, &signer, &claims(now));

    let served = verifier.verify_at(NOT_A_JWT, now).0.unwrap();

    assert_eq!(served.preferred_username, "alice");
    assert_eq!(verifier.verify_at(NOT_A_JWT, now).1, CacheLookup::Hit);
    assert_eq!(verifier.cached_tokens(), 1);
}

#[test]
fn an_expired_token_is_refused_on_a_cache_hit() {
    let signer = key(0xc1);
    let verifier = verifier(&[&signer]);
    let now = now();
    plant(&verifier, NOT_A_JWT, &signer, &claims(now));

    // Past exp + leeway: the entry is still there (moka expires it at exp in real time),
    // but the clock check on the hit refuses it.
    assert_eq!(
        verifier.verify_at(NOT_A_JWT, now + 300 + 6).0,
        Err(TokenError::Expired)
    );
    // Within the leeway it is still accepted, as a fresh verification would.
    assert!(verifier.verify_at(NOT_A_JWT, now + 300 + 5).0.is_ok());
}

#[test]
fn verification_reads_the_injected_clock() {
    let signer = key(0xc1);
    let clock = crate::protocol::TestClock::new();
    let verifier = verifier(&[&signer]).with_clock(clock.clone());
    plant(&verifier, NOT_A_JWT, &signer, &claims(now()));
    assert!(verifier.verify(NOT_A_JWT).is_ok());

    clock.advance(std::time::Duration::from_secs(300 + 6));

    assert_eq!(verifier.verify(NOT_A_JWT), Err(TokenError::Expired));
}

#[test]
fn a_token_not_yet_valid_or_issued_in_the_future_is_refused_on_a_cache_hit() {
    let signer = key(0xc1);
    let verifier = verifier(&[&signer]);
    let now = now();
    plant(&verifier, NOT_A_JWT, &signer, &claims(now));

    assert_eq!(
        verifier.verify_at(NOT_A_JWT, now - 6).0,
        Err(TokenError::NotYetValid)
    );
    let mut issued_later = claims(now);
    issued_later.nbf = now - 60;
    issued_later.iat = now + 60;
    plant(&verifier, "issued-later", &signer, &issued_later);
    assert_eq!(
        verifier.verify_at("issued-later", now).0,
        Err(TokenError::IssuedInFuture)
    );
}

#[test]
fn a_token_of_a_withdrawn_key_is_refused_after_the_key_set_changes() {
    let (withdrawn, kept) = (key(0xc1), key(0xc2));
    let verifier = verifier(&[&withdrawn, &kept]);
    let now = now();
    plant(&verifier, NOT_A_JWT, &withdrawn, &claims(now));
    plant(&verifier, "by-kept-key", &kept, &claims(now));
    assert!(verifier.verify_at(NOT_A_JWT, now).0.is_ok());

    verifier.set_keys(KeySet::from_public_keys([&kept]));

    // No hit any more: the planted token is judged for what it is.
    assert_eq!(
        verifier.verify_at(NOT_A_JWT, now),
        (Err(TokenError::Malformed), CacheLookup::Miss)
    );
    assert!(verifier.verify_at("by-kept-key", now).0.is_ok());
    assert_eq!(verifier.cached_tokens(), 1);
}

#[test]
fn a_hit_whose_key_is_no_longer_trusted_is_a_miss_even_before_invalidation() {
    // A verification that started before a key change may store its result after the
    // change was applied; the key check on every hit keeps that entry unusable.
    let (withdrawn, kept) = (key(0xc1), key(0xc2));
    let verifier = verifier(&[&kept]);
    let now = now();
    plant(&verifier, NOT_A_JWT, &withdrawn, &claims(now));

    assert_eq!(
        verifier.verify_at(NOT_A_JWT, now).0,
        Err(TokenError::Malformed)
    );
}

#[test]
fn without_a_cache_every_token_is_verified_in_full() {
    let signer = key(0xc1);
    let verifier = verifier(&[&signer]).with_cache_entries(0);

    assert!(verifier.cache.is_none());
    assert_eq!(
        verifier.verify_at(NOT_A_JWT, now()).0,
        Err(TokenError::Malformed)
    );
    assert_eq!(verifier.cached_tokens(), 0);
}

/// A real key, its verifier and a token it signed in our issuer's own header form.
fn signed() -> (crate::RsaSigningKey, Verifier, AccessClaims) {
    use secrecy::ExposeSecret as _;
    let pem = crate::generate_rsa_pkcs8_pem(2048).unwrap();
    let signer = crate::RsaSigningKey::from_pkcs8_pem(pem.expose_secret()).unwrap();
    let verifier = verifier(&[signer.public_key()]).with_cache_entries(0);
    (signer, verifier, claims(now()))
}

#[test]
fn a_token_in_our_issuers_header_form_verifies_and_any_change_to_it_does_not() {
    let (signer, verifier, claims) = signed();
    let token = signer.sign(&claims).unwrap();
    assert_eq!(verifier.verify(&token).unwrap().jti, claims.jti);

    // The header is recognised byte for byte: the signature still covers all of it.
    let (header, rest) = token.split_once('.').unwrap();
    let mut forged_payload = rest.to_owned();
    forged_payload.replace_range(0..1, if rest.starts_with('e') { "f" } else { "e" });
    assert_eq!(
        verifier.verify(&format!("{header}.{forged_payload}")),
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        verifier.verify(&format!("{header}.{}.", rest.split_once('.').unwrap().0)),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn a_header_in_another_form_is_parsed_and_held_to_the_same_rules() {
    let (signer, verifier, claims) = signed();
    let kid = signer.kid();
    let reordered = format!(r#"{{"kid":"{kid}","typ":"at+jwt","alg":"RS256"}}"#);
    let token = signer.sign_with_header(&reordered, &claims).unwrap();
    assert_eq!(verifier.verify(&token).unwrap().jti, claims.jti);

    for (header, refusal) in [
        (
            format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{kid}","jku":"https://x.test"}}"#),
            TokenError::KeyInHeader("jku"),
        ),
        (
            format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":"{kid}","crit":["b64"]}}"#),
            TokenError::CriticalHeader,
        ),
        (
            format!(r#"{{"alg":"HS256","typ":"at+jwt","kid":"{kid}"}}"#),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{kid}"}}"#),
            TokenError::WrongType,
        ),
        (
            r#"{"alg":"RS256","typ":"at+jwt","kid":"someone-else"}"#.to_owned(),
            TokenError::UnknownKeyId,
        ),
    ] {
        let token = signer.sign_with_header(&header, &claims).unwrap();
        assert_eq!(verifier.verify(&token), Err(refusal), "{header}");
    }
}

#[test]
fn signatures_of_any_length_are_refused_for_what_they_are() {
    let (signer, verifier, claims) = signed();
    let token = signer.sign(&claims).unwrap();
    let signing_input = token.rsplit_once('.').unwrap().0;
    let with_signature = |signature: &str| format!("{signing_input}.{signature}");

    // 1366 characters decode to 1024 bytes, the longest signature of an 8192-bit key;
    // longer well-formed ones cannot verify; a length of 4n + 1 is never base64url.
    for (characters, refusal) in [
        (1366, TokenError::BadSignature),
        (1368, TokenError::BadSignature),
        (1372, TokenError::BadSignature),
        (1369, TokenError::Malformed),
        (5, TokenError::Malformed),
    ] {
        assert_eq!(
            verifier.verify(&with_signature(&"A".repeat(characters))),
            Err(refusal),
            "{characters} characters"
        );
    }
    // A non-canonical last character (its unused bits set) is not base64url either.
    assert_eq!(
        verifier.verify(&with_signature(&format!("{}B", "A".repeat(1370)))),
        Err(TokenError::Malformed)
    );
}
