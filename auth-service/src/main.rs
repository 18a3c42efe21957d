//! The auth-service binary: read settings, log, serve; `auth-service healthcheck` asks the
//! running service's `/healthz` instead (see [`shared_claims::service::main`]).

shared_claims::service_main!(auth_service, "auth-service", "AUTH");
