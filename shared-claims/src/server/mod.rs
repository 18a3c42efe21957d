//! What both services' HTTP servers share: limits on slow and abusive clients, and the
//! graceful shutdown.
//!
//! * [`ServerLimits`]: the `server.*` settings every service has (header and body read
//!   timeouts, keep-alive, a connection cap, the shutdown grace), checked at start and
//!   applied to an actix [`HttpServer`] by [`ServerLimits::apply`].
//! * [`connections`]: a watchdog per connection that drops a client dribbling the head of
//!   a *second* request on a kept-alive connection (actix times out only the first), and
//!   a middleware ([`guard_requests`]) that puts a deadline on reading a request body.
//! * [`Served`]: a started service (API server and, with `metrics.bind`, a metrics
//!   server), built the same way for both: request span, body deadline, limits.
//! * [`shutdown`]: SIGTERM or SIGINT stops accepting, lets requests in flight finish
//!   within the grace period, and a second signal stops at once.
//!
//! None of this holds a worker: actix serves every connection of a worker on one async
//! executor, so a slow client costs a connection slot (capped by `max_connections`) and a
//! little memory until one of the limits drops it.

pub mod connections;
mod served;
pub mod shutdown;

use std::time::Duration;

use actix_http::Request;
use actix_service::IntoServiceFactory;
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Response, Service, ServiceFactory};
use actix_web::http::KeepAlive;
use actix_web::{Error, HttpServer};

pub use connections::guard_requests;
pub use served::{Served, bind};

/// The limits a service's `server.*` settings ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// `server.shutdown_grace_secs`: how long requests in flight may take to finish after
    /// SIGTERM before the server closes their connections.
    pub shutdown_grace: Duration,
    /// `server.request_header_timeout_ms`: the whole request head (request line and
    /// headers) must arrive within this; otherwise 408 and the connection is closed.
    pub request_header_timeout: Duration,
    /// `server.body_read_timeout_ms`: the whole body must arrive within this once the
    /// head has; otherwise 408 and the connection is closed.
    pub body_read_timeout: Duration,
    /// `server.keep_alive_secs`: how long an idle connection is kept open for the next
    /// request; zero closes every connection after its response.
    pub keep_alive: Duration,
    /// `server.max_connections`: connections served at once; further clients wait in the
    /// listen backlog until one closes.
    pub max_connections: usize,
}

impl ServerLimits {
    /// Reads the settings' numbers (seconds and milliseconds as the keys name them).
    pub fn from_settings(
        shutdown_grace_secs: u64,
        request_header_timeout_ms: u64,
        body_read_timeout_ms: u64,
        keep_alive_secs: u64,
        max_connections: usize,
    ) -> Self {
        Self {
            shutdown_grace: Duration::from_secs(shutdown_grace_secs),
            request_header_timeout: Duration::from_millis(request_header_timeout_ms),
            body_read_timeout: Duration::from_millis(body_read_timeout_ms),
            keep_alive: Duration::from_secs(keep_alive_secs),
            max_connections,
        }
    }

    /// Every value that makes no sense, named by its setting (keep-alive 0 is allowed: it
    /// turns keep-alive off).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut positive = |name: &str, zero: bool| {
            if zero {
                problems.push(format!("server.{name} must be at least 1"));
            }
        };
        positive("shutdown_grace_secs", self.shutdown_grace.is_zero());
        positive(
            "request_header_timeout_ms",
            self.request_header_timeout.is_zero(),
        );
        positive("body_read_timeout_ms", self.body_read_timeout.is_zero());
        positive("max_connections", self.max_connections == 0);
        problems
    }

    /// Worker threads: one per available core, as actix would choose, but at most one
    /// per allowed connection so the cap can be split among them.
    pub fn workers(&self) -> usize {
        std::thread::available_parallelism()
            .map_or(2, std::num::NonZeroUsize::get)
            .clamp(1, self.max_connections.max(1))
    }

    /// Applies the limits to `server`, with OS signals left to [`shutdown`] (the binary
    /// installs them; tests stop servers through their handles).
    pub fn apply<F, I, S, B>(&self, server: HttpServer<F, I, S, B>) -> HttpServer<F, I, S, B>
    where
        F: Fn() -> I + Send + Clone + 'static,
        I: IntoServiceFactory<S, Request>,
        S: ServiceFactory<Request, Config = AppConfig> + 'static,
        S::Error: Into<Error> + 'static,
        S::InitError: std::fmt::Debug,
        S::Response: Into<Response<B>> + 'static,
        <S::Service as Service<Request>>::Future: 'static,
        S::Service: 'static,
        B: MessageBody + 'static,
    {
        let workers = self.workers();
        let keep_alive = if self.keep_alive.is_zero() {
            KeepAlive::Disabled
        } else {
            KeepAlive::Timeout(self.keep_alive)
        };
        let watch = connections::Watchdog::new(self);
        server
            .workers(workers)
            // actix counts per worker: split the service's cap among them.
            .max_connections(self.max_connections.div_ceil(workers))
            .client_request_timeout(self.request_header_timeout)
            .keep_alive(keep_alive)
            .shutdown_timeout(self.shutdown_grace.as_secs())
            .disable_signals()
            .on_connect(move |io, extensions| watch.on_connect(io, extensions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_refused_where_it_makes_no_sense_and_named_by_its_setting() {
        let limits = ServerLimits::from_settings(0, 0, 5000, 0, 0);
        let problems = limits.problems().join("; ");
        assert!(
            problems.contains("server.shutdown_grace_secs"),
            "{problems}"
        );
        assert!(
            problems.contains("server.request_header_timeout_ms"),
            "{problems}"
        );
        assert!(problems.contains("server.max_connections"), "{problems}");
        assert!(!problems.contains("body_read_timeout_ms"), "{problems}");
        assert!(!problems.contains("keep_alive"), "{problems}");
        assert!(
            ServerLimits::from_settings(10, 5000, 10000, 5, 10000)
                .problems()
                .is_empty()
        );
    }

    #[test]
    fn the_connection_cap_bounds_the_worker_count() {
        assert_eq!(ServerLimits::from_settings(1, 1, 1, 1, 1).workers(), 1);
        assert!(ServerLimits::from_settings(1, 1, 1, 1, 10_000).workers() >= 1);
    }
}
