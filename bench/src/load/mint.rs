//! Access tokens signed here with the auth-service's own signing key, read from its key
//! directory by the service's own loader: what the resource-service receives is exactly
//! what the auth-service would issue, without paying a login (Argon2) per token.

use std::path::Path;

use anyhow::Context as _;
use auth_service::configuration::KeySettings;
use shared_claims::protocol::{Clock as _, SystemClock};
use shared_claims::{AccessClaims, Confirmation, RsaSigningKey};

/// Signs access tokens like the auth-service configured with `issuer` and `audience`.
#[derive(Debug)]
pub struct Minter {
    key: RsaSigningKey,
    issuer: String,
    audience: String,
}

impl Minter {
    /// The signing key of the auth-service whose key directory is `dir`.
    pub fn from_key_dir(dir: &Path, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let keys = auth_service::keys::load_or_generate(&KeySettings {
            dir: dir.to_owned(),
            generate_if_missing: false,
        })
        .with_context(|| format!("cannot load the keys in {}", dir.display()))?;
        Ok(Self {
            key: keys.signing,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// A token for a fresh user and session, valid for `ttl_secs`, bound to the DPoP key
    /// with thumbprint `jkt` when given.
    pub fn token(&self, ttl_secs: i64, jkt: Option<&str>) -> anyhow::Result<String> {
        let now = SystemClock.now_secs();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: uuid::Uuid::new_v4(),
            aud: self.audience.clone(),
            exp: now + ttl_secs,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4(),
            sid: uuid::Uuid::new_v4(),
            client_id: "bench".into(),
            scope: "read write".into(),
            roles: vec!["user".into()],
            preferred_username: "bench".into(),
            cnf: jkt.map(|jkt| Confirmation {
                jkt: jkt.to_owned(),
            }),
        };
        Ok(self.key.sign(&claims)?)
    }

    /// `count` distinct tokens, signed on every core.
    pub fn tokens(&self, count: usize, ttl_secs: i64) -> anyhow::Result<Vec<String>> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_thread = count.div_ceil(threads);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    let n = per_thread.min(count.saturating_sub(t * per_thread));
                    scope.spawn(move || {
                        (0..n)
                            .map(|_| self.token(ttl_secs, None))
                            .collect::<anyhow::Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut tokens = Vec::with_capacity(count);
            for worker in workers {
                let minted = worker
                    .join()
                    .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??;
                tokens.extend(minted);
            }
            Ok(tokens)
        })
    }
}
