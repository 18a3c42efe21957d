//! DPoP proofs at the token endpoints (RFC 9449 §5): checked by the shared verifier,
//! `htu` against the public URL (`jwt.issuer`) and the request path, and each proof's
//! `jti` used once across every replica — a Redis `SET NX` that expires when the proof
//! could no longer pass the `iat` check anyway.

use std::sync::Arc;

use shared_claims::dpop::{DpopError, DpopVerifier, PublicUrl, VerifiedProof};

use crate::error::ApiError;
use crate::redis_conn::RedisConn;

/// Checks the proofs that come with logins and refreshes.
#[derive(Debug)]
pub struct DpopProofs {
    verifier: Arc<DpopVerifier>,
    public_url: PublicUrl,
    redis: Arc<RedisConn>,
    prefix: String,
    required: bool,
}

impl DpopProofs {
    /// Proofs checked by `verifier` for URLs under `public_url`; with `required`, a
    /// request without one is refused.
    pub fn new(
        verifier: Arc<DpopVerifier>,
        public_url: PublicUrl,
        redis: Arc<RedisConn>,
        prefix: &str,
        required: bool,
    ) -> Self {
        Self {
            verifier,
            public_url,
            redis,
            prefix: prefix.to_owned(),
            required,
        }
    }

    /// Checks the `proof` of a `POST` to `path` made `now_secs`; `None` when there is
    /// none (and none is required). A proof is good once: its `jti` is recorded.
    pub async fn check(
        &self,
        proof: Option<&str>,
        path: &str,
        now_secs: i64,
    ) -> Result<Option<VerifiedProof>, ApiError> {
        let Some(proof) = proof else {
            return if self.required {
                Err(DpopError::Missing.into())
            } else {
                Ok(None)
            };
        };
        let expected = self.public_url.join(path);
        let verified = self
            .verifier
            .verify(proof, "POST", &expected, None, now_secs)
            .map_err(|e| match e {
                // The public URL is no secret, and naming it saves a client that reached
                // this service by another name (127.0.0.1 for localhost) a long search.
                DpopError::WrongUrl => {
                    ApiError::InvalidDpopProof(format!("{e}; proofs here must name {expected}"))
                }
                other => other.into(),
            })?;
        let key = format!("{}dpop:{}:{}", self.prefix, verified.jkt, verified.jti);
        let ttl = u64::try_from(verified.usable_until.saturating_sub(now_secs))
            .unwrap_or(0)
            .saturating_add(1);
        // A nonce of ours as the value: if the command is retried after a lost reply, the
        // key it finds is ours and the proof is still used only once.
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let previous: Option<String> = self
            .redis
            .run(|mut conn| {
                let (key, nonce) = (key.clone(), nonce.clone());
                async move {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(&nonce)
                        .arg("NX")
                        .arg("GET")
                        .arg("EX")
                        .arg(ttl)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        if previous.is_some_and(|value| value != nonce) {
            return Err(DpopError::Replayed.into());
        }
        Ok(Some(verified))
    }
}
