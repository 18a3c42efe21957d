//! The verifier against honest proofs and each way RFC 9449 §4.3 says to refuse one.
//! Proofs are signed with ring's signing side here; the resource-service's black-box
//! tests sign with other libraries (p256, ed25519-dalek).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use super::key::ProofKey;
use super::*;

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://api.example/api/me";
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";

enum TestKey {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

impl TestKey {
    fn es256() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        TestKey::Es256(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap(),
        )
    }

    fn eddsa() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        TestKey::EdDsa(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
    }

    fn alg(&self) -> &'static str {
        match self {
            TestKey::Es256(_) => "ES256",
            TestKey::EdDsa(_) => "EdDSA",
        }
    }

    fn jwk(&self) -> Value {
        match self {
            TestKey::Es256(pair) => {
                let point = pair.public_key().as_ref();
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..]),
                })
            }
            TestKey::EdDsa(pair) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            }),
        }
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            TestKey::Es256(pair) => pair
                .sign(&SystemRandom::new(), input)
                .unwrap()
                .as_ref()
                .to_vec(),
            TestKey::EdDsa(pair) => pair.sign(input).as_ref().to_vec(),
        }
    }
}

fn merge(target: &mut Value, changes: Value) {
    let (Some(target), Value::Object(changes)) = (target.as_object_mut(), changes) else {
        panic!("both must be objects");
    };
    for (k, v) in changes {
        if v.is_null() {
            target.remove(&k);
        } else {
            target.insert(k, v);
        }
    }
}

/// A compact JWS of `header` and `claims` signed by `key`.
fn sign(key: &TestKey, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// An honest proof by `key` for `GET URL` with `TOKEN` at `NOW`, changes merged over
/// header and claims (null removes).
fn proof(key: &TestKey, header_changes: Value, claims_changes: Value) -> String {
    let mut header = json!({"typ": "dpop+jwt", "alg": key.alg(), "jwk": key.jwk()});
    merge(&mut header, header_changes);
    let mut claims = json!({
        "jti": "4ba3e9ef-e98d-4644-9878-7160e2b5ea9a",
        "htm": "GET",
        "htu": URL,
        "iat": NOW,
        "ath": access_token_hash(TOKEN),
    });
    merge(&mut claims, claims_changes);
    sign(key, &header, &claims)
}

fn verifier() -> DpopVerifier {
    DpopVerifier::new(&DpopSettings::default()).unwrap()
}

fn check(proof: &str) -> Result<VerifiedProof, DpopError> {
    verifier().verify(proof, "GET", URL, Some(TOKEN), NOW)
}

#[test]
fn an_es256_proof_for_the_request_is_accepted_and_names_its_key() {
    let key = TestKey::es256();

    let verified = check(&proof(&key, json!({}), json!({}))).unwrap();

    let jwk = key.jwk();
    let expected = ProofKey::from_header(Some(&jwk), DpopAlgorithm::Es256).unwrap();
    assert_eq!(verified.jkt, expected.thumbprint());
    assert_eq!(verified.jti, "4ba3e9ef-e98d-4644-9878-7160e2b5ea9a");
    assert_eq!(verified.iat, NOW);
    assert_eq!(verified.usable_until, NOW + 60);
}

#[test]
fn an_eddsa_proof_for_the_request_is_accepted() {
    let key = TestKey::eddsa();

    let verified = check(&proof(&key, json!({}), json!({}))).unwrap();

    assert_eq!(verified.jkt.len(), 43);
}

#[test]
fn thumbprints_match_the_rfc_examples() {
    // RFC 8037 appendix A.3.
    let ed =
        json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    let ed = ProofKey::from_header(Some(&ed), DpopAlgorithm::EdDsa).unwrap();
    assert_eq!(
        ed.thumbprint(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    // RFC 9449 §6.1 (the key of the proof in §4.1).
    let ec = json!({
        "kty": "EC", "crv": "P-256",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
    });
    let ec = ProofKey::from_header(Some(&ec), DpopAlgorithm::Es256).unwrap();
    assert_eq!(
        ec.thumbprint(),
        "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    );
}

#[test]
fn ath_matches_the_rfc_example() {
    // RFC 9449 §7.1.
    assert_eq!(
        access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}

#[test]
fn a_proof_without_typ_or_with_another_typ_is_refused() {
    let key = TestKey::es256();
    for typ in [json!(null), json!("JWT"), json!("at+jwt"), json!(1)] {
        let refused = check(&proof(&key, json!({ "typ": typ }), json!({})));
        assert_eq!(refused, Err(DpopError::WrongType), "typ {typ}");
    }
    let media_type = proof(&key, json!({"typ": "application/DPoP+JWT"}), json!({}));
    assert!(check(&media_type).is_ok());
}

#[test]
fn alg_none_hmac_rsa_and_misspelt_algorithms_are_refused() {
    let key = TestKey::es256();
    for alg in ["none", "HS256", "RS256", "PS256", "ES384", "es256", "EDDSA"] {
        let refused = check(&proof(&key, json!({ "alg": alg }), json!({})));
        assert_eq!(refused, Err(DpopError::UnsupportedAlgorithm), "alg {alg}");
    }
    let unsigned = proof(&key, json!({"alg": "none"}), json!({}));
    let unsigned = format!("{}.", unsigned.rsplit_once('.').unwrap().0);
    assert_eq!(check(&unsigned), Err(DpopError::UnsupportedAlgorithm));
}

#[test]
fn an_algorithm_left_out_of_the_configuration_is_refused() {
    let only_eddsa = DpopVerifier::new(&DpopSettings {
        algorithms: vec!["EdDSA".into()],
        proof_max_age_secs: 60,
    })
    .unwrap();

    let es256 = proof(&TestKey::es256(), json!({}), json!({}));
    let eddsa = proof(&TestKey::eddsa(), json!({}), json!({}));

    assert_eq!(
        only_eddsa.verify(&es256, "GET", URL, Some(TOKEN), NOW),
        Err(DpopError::UnsupportedAlgorithm)
    );
    assert!(
        only_eddsa
            .verify(&eddsa, "GET", URL, Some(TOKEN), NOW)
            .is_ok()
    );
}

#[test]
fn a_proof_without_a_public_jwk_of_the_algorithms_type_is_refused() {
    let es = TestKey::es256();
    let ed = TestKey::eddsa();
    let cases = [
        (
            proof(&es, json!({"jwk": null}), json!({})),
            DpopError::MissingKey,
        ),
        (
            proof(&es, json!({"jwk": "key"}), json!({})),
            DpopError::BadKey("it is not a JSON object"),
        ),
        (
            proof(&es, json!({"jwk": ed.jwk()}), json!({})),
            DpopError::BadKey("ES256 needs an EC key on P-256"),
        ),
        (
            proof(&ed, json!({"jwk": es.jwk()}), json!({})),
            DpopError::BadKey("EdDSA needs an OKP key on Ed25519"),
        ),
    ];
    for (proof, expected) in cases {
        assert_eq!(check(&proof), Err(expected));
    }
    let mut short = es.jwk();
    short["x"] = json!("AAAA");
    assert!(matches!(
        check(&proof(&es, json!({"jwk": short}), json!({}))),
        Err(DpopError::BadKey(_))
    ));
    let mut other_curve = es.jwk();
    other_curve["crv"] = json!("P-384");
    assert!(matches!(
        check(&proof(&es, json!({"jwk": other_curve}), json!({}))),
        Err(DpopError::BadKey(_))
    ));
    let mut wrong_alg = ed.jwk();
    wrong_alg["alg"] = json!("ES256");
    assert!(matches!(
        check(&proof(&ed, json!({"jwk": wrong_alg}), json!({}))),
        Err(DpopError::BadKey(_))
    ));
}

#[test]
fn a_jwk_with_private_or_symmetric_material_is_refused() {
    let key = TestKey::es256();
    for member in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        let mut jwk = key.jwk();
        jwk[member] = json!("c2VjcmV0");
        let refused = check(&proof(&key, json!({ "jwk": jwk }), json!({})));
        assert_eq!(refused, Err(DpopError::PrivateKey), "member {member}");
    }
    let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
    assert_eq!(
        check(&proof(&key, json!({"jwk": oct}), json!({}))),
        Err(DpopError::PrivateKey)
    );
}

#[test]
fn crit_and_key_references_are_refused() {
    let key = TestKey::es256();
    let crit = proof(&key, json!({"crit": ["exp"], "exp": 1}), json!({}));
    assert_eq!(check(&crit), Err(DpopError::CriticalHeader));
    for name in ["jku", "x5u", "x5c"] {
        let refused = check(&proof(
            &key,
            json!({ name: "https://evil.example/k" }),
            json!({}),
        ));
        assert_eq!(refused, Err(DpopError::KeyReference(name)));
    }
}

#[test]
fn a_proof_signed_by_another_key_than_its_jwk_is_refused() {
    let key = TestKey::es256();
    let other = TestKey::es256();

    let forged = proof(&other, json!({"jwk": key.jwk()}), json!({}));

    assert_eq!(check(&forged), Err(DpopError::BadSignature));
    let (input, _) = forged.rsplit_once('.').unwrap();
    assert_eq!(check(&format!("{input}.")), Err(DpopError::BadSignature));
}

#[test]
fn garbage_and_oversized_proofs_are_refused_before_parsing() {
    let key = TestKey::eddsa();
    let honest = proof(&key, json!({}), json!({}));
    assert_eq!(
        check(&"a".repeat(MAX_PROOF_BYTES + 1)),
        Err(DpopError::TooLarge)
    );
    for garbage in ["", "a.b", "a.b.c.d", "!!.b.c", &format!("{honest}.x")] {
        assert_eq!(check(garbage), Err(DpopError::Malformed), "{garbage}");
    }
    let array_header = format!("{}.e30.AA", URL_SAFE_NO_PAD.encode("[]"));
    assert_eq!(check(&array_header), Err(DpopError::Malformed));
}

#[test]
fn a_missing_or_mistyped_claim_is_refused() {
    let key = TestKey::es256();
    for (claim, value) in [
        ("jti", json!(null)),
        ("jti", json!(42)),
        ("jti", json!("")),
        ("jti", json!("x".repeat(MAX_JTI_BYTES + 1))),
        ("htm", json!(null)),
        ("htu", json!(null)),
        ("iat", json!(null)),
        ("iat", json!(NOW.to_string())),
        ("iat", json!(NOW as f64 + 0.5)),
        ("ath", json!(null)),
    ] {
        let refused = check(&proof(&key, json!({}), json!({ claim: value })));
        assert_eq!(
            refused,
            Err(DpopError::InvalidClaim(claim)),
            "{claim}: {value}"
        );
    }
}

#[test]
fn a_proof_for_another_method_or_url_is_refused() {
    let key = TestKey::es256();
    let cases = [
        (json!({"htm": "POST"}), DpopError::WrongMethod),
        (json!({"htm": "get"}), DpopError::WrongMethod),
        (
            json!({"htu": "https://api.example/api/admin"}),
            DpopError::WrongUrl,
        ),
        (
            json!({"htu": "https://evil.example/api/me"}),
            DpopError::WrongUrl,
        ),
        (
            json!({"htu": "http://api.example/api/me"}),
            DpopError::WrongUrl,
        ),
        (
            json!({"htu": "https://api.example:8443/api/me"}),
            DpopError::WrongUrl,
        ),
        (json!({"htu": "/api/me"}), DpopError::WrongUrl),
    ];
    for (changes, expected) in cases {
        assert_eq!(
            check(&proof(&key, json!({}), changes.clone())),
            Err(expected),
            "{changes}"
        );
    }
}

#[test]
fn htu_ignores_query_fragment_case_default_port_and_dot_segments() {
    let key = TestKey::es256();
    for htu in [
        "https://api.example/api/me?page=2#top",
        "HTTPS://API.Example:443/api/me",
        "https://api.example/api/./x/../me",
        "https://api.example/api/%6De",
    ] {
        assert!(
            check(&proof(&key, json!({}), json!({ "htu": htu }))).is_ok(),
            "{htu}"
        );
    }
    let with_query = verifier().verify(
        &proof(&key, json!({}), json!({})),
        "GET",
        "https://api.example/api/me?x=1",
        Some(TOKEN),
        NOW,
    );
    assert!(with_query.is_ok());
}

#[test]
fn iat_must_be_within_the_window_either_way() {
    let key = TestKey::es256();
    for iat in [NOW - 60, NOW + 60] {
        assert!(check(&proof(&key, json!({}), json!({ "iat": iat }))).is_ok());
    }
    for iat in [NOW - 61, NOW + 61, 0] {
        let refused = check(&proof(&key, json!({}), json!({ "iat": iat })));
        assert_eq!(refused, Err(DpopError::Stale), "iat {iat}");
    }
}

#[test]
fn ath_must_hash_the_access_token_sent_with_it() {
    let key = TestKey::es256();
    let for_another_token = proof(&key, json!({}), json!({"ath": access_token_hash("other")}));

    assert_eq!(
        check(&for_another_token),
        Err(DpopError::AccessTokenMismatch)
    );
}

#[test]
fn without_an_access_token_ath_is_neither_needed_nor_checked() {
    let key = TestKey::eddsa();
    let verifier = verifier();

    let without = proof(&key, json!({}), json!({"ath": null}));
    let with = proof(&key, json!({}), json!({}));

    assert!(verifier.verify(&without, "GET", URL, None, NOW).is_ok());
    assert!(verifier.verify(&with, "GET", URL, None, NOW).is_ok());
}

#[test]
fn settings_refuse_unknown_algorithms_an_empty_list_and_a_zero_window() {
    let with = |algorithms: &[&str], age| {
        DpopVerifier::new(&DpopSettings {
            algorithms: algorithms.iter().map(|a| a.to_string()).collect(),
            proof_max_age_secs: age,
        })
    };
    let unknown = with(&["ES256", "RS256"], 60).unwrap_err();
    assert_eq!(unknown, DpopConfigError::UnknownAlgorithm("RS256".into()));
    assert!(unknown.to_string().contains("\"RS256\""), "{unknown}");
    assert_eq!(
        with(&["none"], 60).unwrap_err(),
        DpopConfigError::UnknownAlgorithm("none".into())
    );
    assert_eq!(with(&[], 60).unwrap_err(), DpopConfigError::NoAlgorithms);
    assert_eq!(
        with(&["EdDSA"], 0).unwrap_err(),
        DpopConfigError::BadMaxAge(0)
    );
    assert_eq!(
        with(&["EdDSA"], 3601).unwrap_err(),
        DpopConfigError::BadMaxAge(3601)
    );
    let defaults = verifier();
    assert_eq!(defaults.algorithms(), &DpopAlgorithm::ALL);
    assert_eq!(defaults.proof_max_age_secs(), 60);
    assert_eq!(algs_parameter(defaults.algorithms()), "ES256 EdDSA");
}
