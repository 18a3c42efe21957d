//! Closed-loop load clients for the rows `wrk` cannot drive: each keeps state per virtual
//! client (a refresh session's current token, a DPoP key making a fresh proof per
//! request). A fixed number of clients each send their next request as soon as the
//! previous one is answered, for a fixed number of requests in all; every request's
//! latency is kept for the percentiles.
//!
//! Each run prints one `result` line that `bench/run` parses, in the same format as the
//! `wrk` scripts in `bench/wrk/`.

pub mod auth;
pub mod dpop;
pub mod http1;
pub mod mint;

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// What one row's run measured on the client side.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Requests answered with a 2xx.
    pub ok: u64,
    /// Requests answered otherwise, or not at all.
    pub errors: u64,
    /// Wall time from the first request sent to the last answer.
    pub elapsed: Duration,
    /// The latency of every answered request.
    pub latencies: Vec<Duration>,
}

impl Outcome {
    /// `result requests=… secs=… p50_ms=… p99_ms=… errors=…`, the line `bench/run` reads.
    pub fn line(&mut self) -> String {
        self.latencies.sort_unstable();
        let secs = self.elapsed.as_secs_f64();
        format!(
            "result requests={} secs={secs:.3} p50_ms={:.3} p99_ms={:.3} errors={}",
            self.ok + self.errors,
            millis(percentile(&self.latencies, 50.0)),
            millis(percentile(&self.latencies, 99.0)),
            self.errors,
        )
    }

    /// Turns the last success into an error: a 2xx whose body was not what it should be.
    pub fn unreadable(&mut self) {
        self.ok = self.ok.saturating_sub(1);
        self.errors += 1;
    }

    fn absorb(&mut self, other: Outcome) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `p`th percentile (nearest rank) of sorted values; zero for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// An HTTP/1.1 client for loopback load: keeps a connection per virtual client.
pub fn http_client(clients: usize) -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")
}

/// Runs one task per virtual client, each given its index, and adds up what they
/// measured; `elapsed` spans the whole run.
pub async fn run_clients<F, Fut>(clients: usize, client: F) -> Outcome
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients).map(|i| tokio::spawn(client(i))).collect();
    let mut total = Outcome::default();
    for task in tasks {
        match task.await {
            Ok(outcome) => total.absorb(outcome),
            Err(_) => total.errors += 1,
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// Times one request and records it; returns the response when it was a 2xx.
pub async fn timed(
    outcome: &mut Outcome,
    request: reqwest::RequestBuilder,
) -> Option<reqwest::Response> {
    let sent = Instant::now();
    let response = request.send().await;
    let answered = sent.elapsed();
    match response {
        Ok(response) if response.status().is_success() => {
            outcome.ok += 1;
            outcome.latencies.push(answered);
            Some(response)
        }
        Ok(response) => {
            outcome.errors += 1;
            outcome.latencies.push(answered);
            if outcome.errors <= 3 {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                eprintln!("unexpected {status}: {body}");
            }
            None
        }
        Err(e) => {
            outcome.errors += 1;
            if outcome.errors <= 3 {
                eprintln!("request failed: {e}");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&values[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }
}
