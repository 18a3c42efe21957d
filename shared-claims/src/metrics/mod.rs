//! Prometheus metrics (`GET /metrics`, text format) through `prometheus-client`: what
//! every service exports alike — requests by route pattern, method and status with their
//! latency, process figures ([`process`]), build information — plus the domain metrics a
//! service registers as typed handles ([`labelled::CountersBy`]: a label's values are an
//! enum that names the label, so a misspelt metric, label or value does not compile).
//!
//! Label values are bounded by construction: the route is the matched pattern (or
//! `unmatched`), never the raw path, and the method one of a fixed list, so a scan of
//! random URLs cannot grow the label set.

pub mod labelled;
pub mod process;
pub mod verification;

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::Method;
use actix_web::{App, HttpResponse, HttpServer, web};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::protocol::{ErrorBody, ErrorCode};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 2.5,
];

/// The version of the service binaries.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the binaries were built from (`GIT_SHA` at build time, else `unknown`).
const GIT_SHA: &str = match option_env!("GIT_SHA") {
    Some(sha) => sha,
    None => "unknown",
};

/// An HTTP method as a label: the standard ones, everything else `other`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum MethodLabel {
    /// `GET`.
    GET,
    /// `HEAD`.
    HEAD,
    /// `POST`.
    POST,
    /// `PUT`.
    PUT,
    /// `PATCH`.
    PATCH,
    /// `DELETE`.
    DELETE,
    /// `OPTIONS`.
    OPTIONS,
    /// Any other method.
    other,
}

impl From<&Method> for MethodLabel {
    fn from(method: &Method) -> Self {
        match *method {
            Method::GET => Self::GET,
            Method::HEAD => Self::HEAD,
            Method::POST => Self::POST,
            Method::PUT => Self::PUT,
            Method::PATCH => Self::PATCH,
            Method::DELETE => Self::DELETE,
            Method::OPTIONS => Self::OPTIONS,
            _ => Self::other,
        }
    }
}

/// The labels of a finished request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The matched route pattern, or `unmatched`.
    pub route: String,
    /// The method.
    pub method: MethodLabel,
    /// The response status.
    pub status: u16,
}

/// `build_info{version, git_sha} 1`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    git_sha: &'static str,
}

type HistogramFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// A service's metrics: the shared ones and what the service registered.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: HistogramFamily,
}

impl Metrics {
    /// The shared metrics of `service` (a `service` label on every series), and the
    /// domain metrics' handles `register` adds to the registry.
    pub fn new<T>(service: &'static str, register: impl FnOnce(&mut Registry) -> T) -> (Self, T) {
        let mut registry = Registry::with_labels([("service".into(), service.into())].into_iter());
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route pattern, method and status",
            requests.clone(),
        );
        let durations: HistogramFamily = Family::new_with_constructor(|| Histogram::new(BUCKETS));
        registry.register_with_unit(
            "http_request_duration",
            "HTTP request latency by route pattern, method and status",
            prometheus_client::registry::Unit::Seconds,
            durations.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: VERSION,
                git_sha: GIT_SHA,
            })
            .set(1);
        registry.register("build_info", "The running build: version and commit", build);
        registry.register_collector(Box::new(process::ProcessCollector));
        let domain = register(&mut registry);
        (
            Self {
                registry,
                requests,
                durations,
            },
            domain,
        )
    }

    /// Records one finished request. `route` is the matched pattern, never the raw path.
    pub fn observe(&self, route: &str, method: &Method, status: u16, elapsed: Duration) {
        let labels = RequestLabels {
            route: route.to_owned(),
            method: method.into(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("metrics could not be encoded");
        }
        out
    }
}

/// `GET /metrics`: the exposition text of the app's [`Metrics`], in the OpenMetrics text
/// format (which Prometheus reads, and plain-text tools too).
pub async fn endpoint(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(metrics.render())
}

/// Serves `/metrics` alone on `listener` (`metrics.bind`), so operators can keep it off
/// the published port; every other path is a JSON 404.
pub fn serve_alone(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
) -> std::io::Result<Server> {
    let metrics = web::Data::from(metrics);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .route("/metrics", web::get().to(endpoint))
            .default_service(web::to(|| async {
                HttpResponse::NotFound()
                    .json(ErrorBody::new(ErrorCode::NotFound, "no such resource"))
            }))
    })
    .workers(1)
    .shutdown_timeout(5)
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

    #[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Outcome {
        outcome: &'static str,
    }

    #[test]
    fn rendering_shows_requests_latency_process_build_and_domain_metrics() {
        let logins = Family::<Outcome, Counter>::default();
        let (metrics, ()) = Metrics::new("svc", |registry| {
            registry.register("logins", "Logins.", logins.clone());
        });
        metrics.observe("/a", &Method::GET, 200, Duration::from_millis(3));
        metrics.observe("/a", &Method::GET, 200, Duration::from_millis(300));
        metrics.observe(
            "unmatched",
            &Method::from_bytes(b"BREW").unwrap(),
            404,
            Duration::ZERO,
        );
        logins.get_or_create(&Outcome { outcome: "success" }).inc();

        let text = metrics.render();

        assert!(
            text.contains(
                r#"http_requests_total{service="svc",route="/a",method="GET",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"method="other",status="404""#), "{text}");
        assert!(
            text.contains(
                r#"http_request_duration_seconds_bucket{service="svc",le="0.005",route="/a",method="GET",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"logins_total{service="svc",outcome="success"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("build_info{service=\"svc\",version=\""),
            "{text}"
        );
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
        assert!(text.contains("process_open_fds"), "{text}");
        assert!(text.contains("process_cpu_seconds_total"), "{text}");
    }
}
