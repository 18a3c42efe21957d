//! The DPoP row: each virtual client holds its own ES256 key and an access token bound to
//! it (`cnf.jkt`), and signs a fresh proof (new `jti`, `iat` now, `ath` of its token) for
//! every request, as RFC 9449 clients do.

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::json;
use shared_claims::protocol::{Clock as _, SystemClock};

use super::mint::Minter;
use super::{Outcome, run_clients, timed};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sha256_b64(text: &str) -> String {
    b64(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

/// A client's DPoP key, the token bound to it and the parts of its proofs that never
/// change.
#[derive(Debug)]
struct DpopClient {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// `base64url(header)`: typ, alg and the public JWK.
    header: String,
    token: String,
    /// `ath`: the hash of the token (RFC 9449 §4.2).
    ath: String,
}

impl DpopClient {
    fn new(minter: &Minter, ttl_secs: i64) -> anyhow::Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("cannot generate a P-256 key"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow::anyhow!("cannot load the P-256 key"))?;
        // Uncompressed point: 0x04 ‖ x ‖ y.
        let point = key.public_key().as_ref();
        let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
        // RFC 7638: required members in lexicographic order, no whitespace.
        let jkt = sha256_b64(&format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#
        ));
        let header = json!({
            "typ": "dpop+jwt",
            "alg": "ES256",
            "jwk": {"kty": "EC", "crv": "P-256", "x": x, "y": y},
        });
        let token = minter.token(ttl_secs, Some(&jkt))?;
        Ok(Self {
            key,
            rng,
            header: b64(header.to_string()),
            ath: sha256_b64(&token),
            token,
        })
    }

    /// A fresh proof for `GET htu`.
    fn proof(&self, htu: &str) -> anyhow::Result<String> {
        let iat = SystemClock.now_secs();
        let claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": "GET",
            "htu": htu,
            "iat": iat,
            "ath": self.ath,
        });
        let input = format!("{}.{}", self.header, b64(claims.to_string()));
        let signature = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| anyhow::anyhow!("signing failed"))?;
        Ok(format!("{input}.{}", b64(signature)))
    }
}

/// `count` requests to `url` (the resource-service's `/api/me` as its `public_url` names
/// it) by `clients` concurrent clients, each with its own key and bound token.
pub async fn me(
    http: &reqwest::Client,
    minter: &Minter,
    url: &str,
    count: usize,
    clients: usize,
) -> anyhow::Result<Outcome> {
    let dpop_clients = (0..clients)
        .map(|_| DpopClient::new(minter, 600))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("cannot set up the DPoP clients")?;
    let dpop_clients: Vec<_> = dpop_clients.into_iter().map(std::sync::Arc::new).collect();
    Ok(run_clients(clients, |c| {
        let (http, url, me) = (http.clone(), url.to_owned(), dpop_clients[c].clone());
        async move {
            let mut outcome = Outcome::default();
            for _ in (c..count).step_by(clients) {
                let Ok(proof) = me.proof(&url) else {
                    outcome.errors += 1;
                    continue;
                };
                let request = http
                    .get(&url)
                    .header("Authorization", format!("DPoP {}", me.token))
                    .header("DPoP", proof);
                timed(&mut outcome, request).await;
            }
            outcome
        }
    })
    .await)
}
