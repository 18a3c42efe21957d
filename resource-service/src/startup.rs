//! Builds the resource-service: its key source and the HTTP server on a bound listener,
//! with the connection limits and graceful shutdown of `server.*`. Nothing on the request
//! path talks to the auth-service, Postgres or Redis.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web;
use anyhow::{Context as _, anyhow};
use shared_claims::dpop::{DpopVerifier, ReplayCache};
use shared_claims::metrics::Metrics;
use shared_claims::protocol::{SharedClock, SystemClock};
use shared_claims::server::{self, Served};
use shared_claims::{BearerAuth, KeySet, RsaPublicKey, Verifier};

use crate::configuration::{LayeredSettings as _, Settings};
use crate::jwks::JwksSource;
use crate::metrics::ResourceMetrics;
use crate::routes;

/// A built, bound resource-service.
#[derive(Debug)]
pub struct Application {
    served: Served,
}

impl Application {
    /// Loads the PEM key or starts the JWKS loader, and binds the listener. With a JWKS,
    /// the service answers at once and `/readyz` says 503 until keys arrive.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, SystemClock::shared()).await
    }

    /// The same with token times checked against `clock` (tests move a test clock
    /// forward instead of sleeping).
    pub async fn build_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        settings
            .validate()
            .map_err(|problems| anyhow!("invalid configuration: {problems}"))?;
        let limits = settings.server.limits();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (metrics, resource_metrics) =
            Metrics::new("resource-service", ResourceMetrics::register);
        let metrics = Arc::new(metrics);
        let verifier = Arc::new(
            Verifier::new(&settings.verifier_settings(), KeySet::default())
                .with_cache_entries(settings.cache.max_entries)
                .with_clock(clock),
        );
        let dpop = DpopVerifier::new(&settings.dpop_settings()).map_err(|e| anyhow!("{e}"))?;
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

        let listener = server::bind(&settings.server.host, settings.server.port)?;
        let bearer = web::Data::new(bearer);
        let served = Served::start(
            "resource-service",
            listener,
            &limits,
            metrics,
            &settings.metrics.bind,
            move |cfg, with_metrics| {
                cfg.app_data(bearer.clone());
                routes::configure(cfg, with_metrics);
                cfg.default_service(web::to(routes::not_found));
            },
        )?;
        Ok(Self { served })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.served.port()
    }

    /// The port of the separate `/metrics` listener, when `metrics.bind` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.served.metrics_port()
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.served.handle()
    }

    /// Makes SIGTERM and SIGINT stop the service gracefully (see
    /// [`shared_claims::server::shutdown`]). For the binary; tests stop through
    /// [`Self::handle`].
    pub fn stop_on_signals(&self) -> std::io::Result<()> {
        self.served.stop_on_signals()
    }

    /// Serves until stopped, then stops the metrics listener.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.served.run_until_stopped().await
    }
}
