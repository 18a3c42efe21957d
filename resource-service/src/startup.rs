//! Builds the resource-service: its key source and the HTTP server on a bound listener.
//! Nothing on the request path talks to the auth-service, Postgres or Redis.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, middleware, web};
use anyhow::{Context as _, anyhow, ensure};
use shared_claims::dpop::{DpopVerifier, ReplayCache};
use shared_claims::metrics::Metrics;
use shared_claims::{BearerAuth, KeySet, RsaPublicKey, Verifier, telemetry};

use crate::configuration::Settings;
use crate::jwks::JwksSource;
use crate::metrics::ResourceMetrics;
use crate::routes;

/// A built, bound resource-service.
pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on its own listener (`metrics.bind`), if configured.
    metrics: Option<(u16, Server)>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish()
    }
}

impl Application {
    /// Loads the PEM key or starts the JWKS loader, and binds the listener. With a JWKS,
    /// the service answers at once and `/readyz` says 503 until keys arrive.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (metrics, resource_metrics) =
            Metrics::new("resource-service", ResourceMetrics::register);
        let metrics = Arc::new(metrics);
        let verifier = Arc::new(
            Verifier::new(&settings.verifier_settings(), KeySet::default())
                .with_cache_entries(settings.cache.max_entries),
        );
        let dpop = DpopVerifier::new(&settings.dpop_settings()).map_err(|e| anyhow!("{e}"))?;
        ensure!(
            settings.dpop.replay_cache_entries > 0,
            "dpop.replay_cache_entries must be at least 1"
        );
        let public_url = settings
            .public_url()
            .map_err(|e| anyhow!("server.public_url: {e}"))?;
        let mut bearer = BearerAuth::new(Arc::clone(&verifier), "resource-service")
            .with_dpop(
                Arc::new(dpop),
                ReplayCache::new(settings.dpop.replay_cache_entries),
                public_url,
            )
            .with_metrics(resource_metrics.verification.clone());

        if settings.keys.public_key_path.as_os_str().is_empty() {
            let source = Arc::new(JwksSource::new(
                &settings.jwks.url,
                Arc::clone(&verifier),
                Duration::from_secs(settings.jwks.min_refetch_interval_secs),
                resource_metrics.clone(),
            )?);
            bearer = bearer.with_refresher(Arc::clone(&source) as _);
            tokio::spawn(
                source.keep_current(Duration::from_secs(settings.jwks.refresh_interval_secs)),
            );
            tracing::info!(url = %settings.jwks.url, "verification keys come from the JWKS");
        } else {
            let path = &settings.keys.public_key_path;
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read keys.public_key_path {}", path.display()))?;
            let key = RsaPublicKey::from_spki_pem(&pem)
                .with_context(|| format!("{} is not an RSA public key PEM", path.display()))?;
            tracing::info!(kid = %key.thumbprint(), "verification key loaded from PEM");
            verifier.set_keys(KeySet::from_public_keys([&key]));
        }

        let metrics_listener = shared_claims::metrics::bind_listener(&settings.metrics.bind)
            .with_context(|| format!("cannot listen on metrics.bind {}", settings.metrics.bind))?;
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| {
                format!(
                    "cannot listen on {}:{}",
                    settings.server.host, settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let with_metrics = metrics_listener.is_none();
        let metrics_server = match metrics_listener {
            Some(listener) => Some((
                listener.local_addr()?.port(),
                shared_claims::metrics::serve_alone(listener, Arc::clone(&metrics))?,
            )),
            None => None,
        };
        let bearer = web::Data::new(bearer);
        let metrics = web::Data::from(metrics);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::from_fn(telemetry::request_span))
                .app_data(bearer.clone())
                .app_data(metrics.clone())
                .configure(|cfg| routes::configure(cfg, with_metrics))
                .default_service(web::to(routes::not_found))
        })
        .shutdown_timeout(5)
        .listen(listener)?
        .run();
        tracing::info!(port, "resource-service listening");
        Ok(Self {
            port,
            server,
            metrics: metrics_server,
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

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        match self.metrics {
            Some((_, metrics)) => {
                let metrics_handle = metrics.handle();
                let metrics = tokio::spawn(metrics);
                let served = self.server.await;
                metrics_handle.stop(true).await;
                let _ = metrics.await;
                served
            }
            None => self.server.await,
        }
    }
}
