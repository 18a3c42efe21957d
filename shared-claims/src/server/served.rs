//! What both services' `startup.rs` would otherwise repeat: binding with a clear error,
//! the actix server with the request span, the body deadline and the connection limits,
//! `/metrics` on the API port or on a listener of its own, the handle, signal handling,
//! and a run that stops both servers together.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, middleware, web};

use super::ServerLimits;
use crate::metrics::Metrics;
use crate::telemetry;

/// Binds `host:port`, naming the address when that fails (in use, not permitted).
pub fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind((host, port))
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {host}:{port}: {e}")))
}

/// A built, bound service: its API server and, with `metrics.bind`, a metrics server.
pub struct Served {
    name: &'static str,
    port: u16,
    server: Server,
    metrics: Option<(u16, Server)>,
    shutdown_grace: Duration,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("name", &self.name)
            .field("port", &self.port)
            .field("metrics_port", &self.metrics_port())
            .finish()
    }
}

impl Served {
    /// Starts (but does not run) service `name` on `listener`: every request in a span
    /// with its id and counted in `metrics`, bodies under the read deadline, `limits`
    /// applied. `configure` mounts the routes and app data; its flag says whether to mount
    /// `/metrics` too (`metrics_bind` empty) or not (it gets a listener of its own).
    pub fn start<F>(
        name: &'static str,
        listener: TcpListener,
        limits: &ServerLimits,
        metrics: Arc<Metrics>,
        metrics_bind: &str,
        configure: F,
    ) -> std::io::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig, bool) + Send + Clone + 'static,
    {
        let port = listener.local_addr()?.port();
        let metrics_server = match crate::metrics::bind_listener(metrics_bind).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on metrics.bind {metrics_bind}: {e}"),
            )
        })? {
            Some(listener) => {
                let port = listener.local_addr()?.port();
                tracing::info!(port, "metrics listening on their own port");
                Some((
                    port,
                    crate::metrics::serve_alone(listener, Arc::clone(&metrics))?,
                ))
            }
            None => None,
        };
        let with_metrics = metrics_server.is_none();
        let metrics = web::Data::from(metrics);
        let server = HttpServer::new(move || {
            let configure = configure.clone();
            App::new()
                .wrap(middleware::from_fn(telemetry::request_span))
                .wrap(middleware::from_fn(super::guard_requests))
                .app_data(metrics.clone())
                .configure(move |cfg| configure(cfg, with_metrics))
        });
        let server = limits.apply(server).listen(listener)?.run();
        tracing::info!(port, "{name} listening");
        Ok(Self {
            name,
            port,
            server,
            metrics: metrics_server,
            shutdown_grace: limits.shutdown_grace,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate `/metrics` listener, when `metrics.bind` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// A handle to stop the API server (tests, embedding).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Makes SIGTERM and SIGINT stop the service gracefully (see [`super::shutdown`]).
    /// For the binaries; tests stop through [`Self::handle`].
    pub fn stop_on_signals(&self) -> std::io::Result<()> {
        super::shutdown::stop_on_signals(self.server.handle(), self.shutdown_grace)
    }

    /// Serves until the API server stops, then stops the metrics server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = match self.metrics {
            Some((_, metrics)) => {
                let metrics_handle = metrics.handle();
                let metrics = tokio::spawn(metrics);
                let served = self.server.await;
                metrics_handle.stop(true).await;
                let _ = metrics.await;
                served
            }
            None => self.server.await,
        };
        tracing::info!("{} stopped", self.name);
        served
    }
}
