//! Verification keys from the auth-service's JWKS: fetched at start with retries and
//! backoff, refetched periodically, and on an unknown `kid` at most once per interval so
//! that a flood of made-up `kid`s cannot turn this service into a load generator against
//! the auth-service.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::{FetchOutcome, ResourceMetrics};
use anyhow::{Context as _, bail};
use shared_claims::{JwkSet, KeyRefresher, KeySet, Verifier};

/// A JWKS larger than this is refused (ours is well under 2 KiB per key).
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The JWKS endpoint and the verifier whose keys it keeps current.
#[derive(Debug)]
pub struct JwksSource {
    url: String,
    http: reqwest::Client,
    verifier: Arc<Verifier>,
    min_refetch_interval: Duration,
    /// When the last on-demand refetch started; `None` until the first.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    metrics: ResourceMetrics,
}

impl JwksSource {
    /// A source for `url` feeding `verifier`.
    pub fn new(
        url: &str,
        verifier: Arc<Verifier>,
        min_refetch_interval: Duration,
        metrics: ResourceMetrics,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            url: url.to_owned(),
            http,
            verifier,
            min_refetch_interval,
            last_refetch: tokio::sync::Mutex::new(None),
            metrics,
        })
    }

    /// Fetches the JWKS once and installs its usable keys; keeps the old keys on failure.
    pub async fn fetch(&self) -> anyhow::Result<usize> {
        let fetched = self.fetch_keys().await;
        self.metrics.jwks_fetched(if fetched.is_ok() {
            FetchOutcome::success
        } else {
            FetchOutcome::failure
        });
        fetched
    }

    async fn fetch_keys(&self) -> anyhow::Result<usize> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .context("JWKS request failed")?;
        if !response.status().is_success() {
            bail!("JWKS answered {}", response.status());
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
        {
            bail!("JWKS is larger than {MAX_JWKS_BYTES} bytes");
        }
        let mut response = response;
        let mut body = Vec::new();
        // Read in chunks and stop at the limit: a body without Content-Length must not be
        // buffered whole before it is measured.
        while let Some(chunk) = response.chunk().await.context("JWKS body unreadable")? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                bail!("JWKS is larger than {MAX_JWKS_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        let set: JwkSet = serde_json::from_slice(&body).context("JWKS is not a JWK Set")?;
        let (keys, skipped) = KeySet::from_jwks(&set);
        if keys.is_empty() {
            bail!("JWKS holds no usable RS256 key ({skipped} skipped)");
        }
        let count = keys.len();
        self.verifier.set_keys(keys);
        tracing::info!(keys = count, skipped, "verification keys loaded from JWKS");
        Ok(count)
    }

    /// Fetches until it succeeds, backing off from 250 ms to 10 s between attempts.
    pub async fn fetch_until_loaded(&self) {
        let mut delay = Duration::from_millis(250);
        loop {
            match self.fetch().await {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), retry_in_ms = delay.as_millis() as u64, "JWKS not loaded yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Loads the keys, then refetches every `period` for as long as the service runs.
    pub async fn keep_current(self: Arc<Self>, period: Duration) {
        self.fetch_until_loaded().await;
        let mut ticker = tokio::time::interval(period.max(Duration::from_secs(1)));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(e) = self.fetch().await {
                tracing::warn!(error = %format!("{e:#}"), "periodic JWKS refetch failed; keeping the current keys");
            }
        }
    }
}

impl KeyRefresher for JwksSource {
    /// One refetch per interval whatever the traffic. Callers that waited behind a
    /// refetch, or come within the interval, are told to retry against the current keys:
    /// a lookup, no network.
    fn refresh(&self) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            let mut last = self.last_refetch.lock().await;
            if last.is_some_and(|at| at.elapsed() < self.min_refetch_interval) {
                return true;
            }
            *last = Some(Instant::now());
            match self.fetch().await {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "JWKS refetch for an unknown kid failed");
                    false
                }
            }
        })
    }
}
