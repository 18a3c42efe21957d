//! Keys, token minting (honest and hostile) and service start-up for the tests.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use resource_service::configuration::LayeredSettings as _;
use resource_service::configuration::Settings;
use resource_service::startup::Application;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use serde_json::{Value, json};
use shared_claims::{JwkSet, RsaPublicKey, RsaSigningKey};

pub const ISSUER: &str = "http://auth.test";
pub const AUDIENCE: &str = "resource-service";

/// An RSA key pair with its public half and `kid`.
pub struct TestKey {
    pub pair: RsaKeyPair,
    pub public: RsaPublicKey,
    pub kid: String,
}

impl TestKey {
    fn from_pem(pem: &str) -> Self {
        let signing = RsaSigningKey::from_pkcs8_pem(pem).unwrap();
        let der = base64::engine::general_purpose::STANDARD
            .decode(
                pem.lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        Self {
            pair: RsaKeyPair::from_pkcs8(&der).unwrap(),
            public: signing.public_key().clone(),
            kid: signing.kid().to_owned(),
        }
    }

    pub fn jwks(keys: &[&TestKey]) -> JwkSet {
        JwkSet {
            keys: keys.iter().map(|k| k.public.to_jwk()).collect(),
        }
    }
}

/// The key the service trusts.
pub fn trusted_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::from_pem(auth_service::testing::shared_key_pem()))
}

/// A key it does not trust (until a test publishes it).
pub fn other_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::from_pem(&auth_service::testing::generate_key_pem()))
}

pub fn now() -> i64 {
    use shared_claims::protocol::Clock as _;
    shared_claims::protocol::SystemClock.now_secs()
}

/// Valid claims for a user, with `changes` merged over them (null removes a claim).
pub fn claims(changes: Value) -> Value {
    let now = now();
    let mut claims = json!({
        "iss": ISSUER,
        "sub": "6f1c2a3e-8d4b-4f5a-9c7e-1b2d3e4f5a6b",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "nbf": now,
        "jti": uuid::Uuid::new_v4(),
        "sid": "0b8e4c9a-1d2f-4e3a-8b7c-6d5e4f3a2b1c",
        "client_id": "client-cli",
        "scope": "read write",
        "roles": ["user"],
        "preferred_username": "alice",
    });
    merge(&mut claims, changes);
    claims
}

/// The honest header for `key`, with `changes` merged over it.
pub fn header(key: &TestKey, changes: Value) -> Value {
    let mut header = json!({"alg": "RS256", "typ": "at+jwt", "kid": key.kid});
    merge(&mut header, changes);
    header
}

fn merge(target: &mut Value, changes: Value) {
    if let (Some(target), Value::Object(changes)) = (target.as_object_mut(), changes) {
        for (k, v) in changes {
            if v.is_null() {
                target.remove(&k);
            } else {
                target.insert(k, v);
            }
        }
    }
}

/// How to produce the signature segment.
pub enum Sign<'a> {
    Rs256(&'a TestKey),
    Rs384(&'a TestKey),
    Ps256(&'a TestKey),
    Hs256(&'a [u8]),
    Es256,
    Empty,
}

/// A compact JWS of `header` and `claims`, signed as told.
pub fn mint(header: &Value, claims: &Value, sign: Sign<'_>) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let rng = SystemRandom::new();
    let rsa = |key: &TestKey, alg: &'static dyn signature::RsaEncoding| {
        let mut sig = vec![0; key.pair.public().modulus_len()];
        key.pair
            .sign(alg, &rng, input.as_bytes(), &mut sig)
            .unwrap();
        sig
    };
    let signature = match sign {
        Sign::Rs256(key) => rsa(key, &signature::RSA_PKCS1_SHA256),
        Sign::Rs384(key) => rsa(key, &signature::RSA_PKCS1_SHA384),
        Sign::Ps256(key) => rsa(key, &signature::RSA_PSS_SHA256),
        Sign::Hs256(secret) => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
            ring::hmac::sign(&key, input.as_bytes()).as_ref().to_vec()
        }
        Sign::Es256 => {
            let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
            let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
            let _ = pair.public_key();
            pair.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec()
        }
        Sign::Empty => Vec::new(),
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// An honest token signed by the trusted key.
pub fn good_token(changes: Value) -> String {
    mint(
        &header(trusted_key(), json!({})),
        &claims(changes),
        Sign::Rs256(trusted_key()),
    )
}

/// A running resource-service.
pub struct TestResource {
    pub address: String,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl TestResource {
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

fn base_settings() -> Settings {
    let mut settings = Settings::load_with_env(std::env::vars().collect()).unwrap();
    settings.server.host = "127.0.0.1".into();
    settings.server.port = 0;
    settings.jwt.issuer = ISSUER.into();
    settings.jwt.audience = AUDIENCE.into();
    settings.jwt.leeway_secs = 5;
    settings
}

async fn start(settings: Settings, dir: tempfile::TempDir) -> TestResource {
    let app = Application::build(settings).await.unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestResource {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        _dir: dir,
    }
}

/// A resource-service trusting the trusted key through `keys.public_key_path`.
pub async fn spawn_with_pem() -> TestResource {
    spawn_with_pem_and(|_| {}).await
}

/// Like [`spawn_with_pem`], with settings adjusted first.
pub async fn spawn_with_pem_and(adjust: impl FnOnce(&mut Settings)) -> TestResource {
    let (settings, dir) = pem_settings(adjust);
    start(settings, dir).await
}

/// Settings trusting the trusted key through a PEM in the returned directory.
pub fn pem_settings(adjust: impl FnOnce(&mut Settings)) -> (Settings, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("public.pem");
    std::fs::write(&path, trusted_key().public.to_spki_pem().unwrap()).unwrap();
    let mut settings = base_settings();
    settings.keys.public_key_path = path;
    adjust(&mut settings);
    (settings, dir)
}

/// A resource-service reading keys from `jwks_url`.
pub async fn spawn_with_jwks(jwks_url: &str, adjust: impl FnOnce(&mut Settings)) -> TestResource {
    let mut settings = base_settings();
    settings.keys.public_key_path = Default::default();
    settings.jwks.url = jwks_url.to_owned();
    adjust(&mut settings);
    start(settings, tempfile::tempdir().unwrap()).await
}

/// Stands in for the auth-service's JWKS endpoint: a test publishes keys, takes it down
/// and counts how often it is asked.
pub struct JwksServer {
    pub url: String,
    keys: Arc<RwLock<JwkSet>>,
    hits: Arc<AtomicUsize>,
    up: Arc<AtomicBool>,
}

impl JwksServer {
    pub async fn start(keys: JwkSet, up: bool) -> Self {
        let keys = Arc::new(RwLock::new(keys));
        let hits = Arc::new(AtomicUsize::new(0));
        let up = Arc::new(AtomicBool::new(up));
        let state = (Arc::clone(&keys), Arc::clone(&hits), Arc::clone(&up));
        let server = HttpServer::new(move || {
            let state = state.clone();
            App::new().route(
                "/jwks.json",
                web::get().to(move || {
                    let (keys, hits, up) = state.clone();
                    async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        if !up.load(Ordering::SeqCst) {
                            return HttpResponse::ServiceUnavailable().finish();
                        }
                        HttpResponse::Ok().json(&*keys.read().unwrap())
                    }
                }),
            )
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Self {
            url: format!("http://127.0.0.1:{port}/jwks.json"),
            keys,
            hits,
            up,
        }
    }

    pub fn publish(&self, keys: JwkSet) {
        *self.keys.write().unwrap() = keys;
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Asserts a 401 `invalid_token` with an RFC 6750 challenge that gives a reason and does
/// not echo the token; returns the reason.
pub async fn assert_invalid_token(response: reqwest::Response, token: &str) -> String {
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_token", "{body}");
    assert!(
        challenge.starts_with(
            r#"Bearer realm="resource-service", error="invalid_token", error_description=""#
        ),
        "{challenge}"
    );
    let description = body["error_description"].as_str().unwrap().to_owned();
    assert!(
        challenge.contains(&description),
        "{challenge} vs {description}"
    );
    if token.len() > 16 {
        assert!(!challenge.contains(token) && !body.to_string().contains(token));
    }
    description
}
