//! The resource-service binary: read settings, log, serve; `resource-service healthcheck`
//! asks the running service's `/healthz` instead (see [`shared_claims::service::main`]).

shared_claims::service_main!(resource_service, "resource-service", "RESOURCE");
