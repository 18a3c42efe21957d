//! Prometheus text-format metrics (`GET /metrics`), without a metrics framework: request
//! counts by route and status, a latency histogram, and named counters a service declares.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::error_body::ErrorBody;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// A service's metrics.
#[derive(Debug)]
pub struct Metrics {
    service: &'static str,
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_micros: AtomicU64,
    counters: Vec<(&'static str, &'static str, AtomicU64)>,
}

impl Metrics {
    /// Metrics for `service` with the given `(name, help)` counters, all starting at 0.
    pub fn new(service: &'static str, counters: &[(&'static str, &'static str)]) -> Self {
        Self {
            service,
            requests: Mutex::default(),
            buckets: Default::default(),
            latency_count: AtomicU64::new(0),
            latency_micros: AtomicU64::new(0),
            counters: counters
                .iter()
                .map(|(name, help)| (*name, *help, AtomicU64::new(0)))
                .collect(),
        }
    }

    /// Adds one to a declared counter; unknown names are ignored.
    pub fn inc(&self, name: &str) {
        self.add(name, 1);
    }

    /// Adds `amount` to a declared counter; unknown names are ignored.
    pub fn add(&self, name: &str, amount: u64) {
        if let Some((_, _, value)) = self.counters.iter().find(|(n, _, _)| *n == name) {
            value.fetch_add(amount, Ordering::Relaxed);
        }
    }

    /// The current value of a declared counter.
    pub fn get(&self, name: &str) -> u64 {
        self.counters
            .iter()
            .find(|(n, _, _)| *n == name)
            .map_or(0, |(_, _, v)| v.load(Ordering::Relaxed))
    }

    /// Records one finished request. `route` is the matched pattern, never the raw path,
    /// so random paths cannot grow the label set.
    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route.to_owned(), status))
            .or_insert(0) += 1;
        let secs = elapsed.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let service = self.service;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE http_requests_total counter");
        for ((route, status), count) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "http_requests_total{{service=\"{service}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP http_request_duration_seconds HTTP request latency."
        );
        let _ = writeln!(out, "# TYPE http_request_duration_seconds histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{service=\"{service}\",le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "http_request_duration_seconds_bucket{{service=\"{service}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "http_request_duration_seconds_sum{{service=\"{service}\"}} {}",
            self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "http_request_duration_seconds_count{{service=\"{service}\"}} {count}"
        );
        for (name, help, value) in &self.counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(
                out,
                "{name}{{service=\"{service}\"}} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// `GET /metrics`: the exposition text of the app's [`Metrics`].
pub async fn endpoint(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}

/// Serves `/metrics` alone on `listener` (`metrics.bind`), so operators can keep it off
/// the published port; every other path is a JSON 404.
pub fn serve_alone(
    listener: std::net::TcpListener,
    metrics: std::sync::Arc<Metrics>,
) -> std::io::Result<Server> {
    let metrics = web::Data::from(metrics);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .route("/metrics", web::get().to(endpoint))
            .default_service(web::to(|| async {
                HttpResponse::NotFound().json(ErrorBody::new("not_found", "no such resource"))
            }))
    })
    .workers(1)
    .shutdown_timeout(5)
    // The service stops it after its API server (see `server::shutdown`), so that it can
    // be scraped while requests drain.
    .disable_signals()
    .listen(listener)?
    .run())
}

/// Binds `metrics.bind` when it names an address; `None` when metrics share the main port.
pub fn bind_listener(bind: &str) -> std::io::Result<Option<std::net::TcpListener>> {
    if bind.trim().is_empty() {
        return Ok(None);
    }
    std::net::TcpListener::bind(bind.trim()).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_shows_requests_latency_and_declared_counters() {
        let metrics = Metrics::new("svc", &[("logins_total", "Logins.")]);
        metrics.observe("/a", 200, Duration::from_millis(3));
        metrics.observe("/a", 200, Duration::from_millis(300));
        metrics.inc("logins_total");
        metrics.inc("undeclared");

        let text = metrics.render();

        assert!(
            text.contains(r#"http_requests_total{service="svc",route="/a",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"http_request_duration_seconds_bucket{service="svc",le="0.005"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"http_request_duration_seconds_count{service="svc"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"logins_total{service="svc"} 1"#), "{text}");
        assert!(!text.contains("undeclared"));
        assert_eq!(metrics.get("logins_total"), 1);
    }
}
