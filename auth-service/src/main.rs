//! The auth-service binary: read settings, log, serve. `auth-service healthcheck` instead
//! asks the running service's `/healthz` and exits 0 or 1 (the container health check).

use std::process::ExitCode;

use auth_service::configuration::Settings;
use auth_service::startup::Application;
use shared_claims::healthcheck::{self, Invocation};
use shared_claims::telemetry;

const USAGE: &str = "usage: auth-service [healthcheck]\n\nWithout arguments, serves. Configuration comes from config/*.toml and\nAUTH__SECTION__KEY environment variables (see README.md).";

fn main() -> anyhow::Result<ExitCode> {
    let invocation = match healthcheck::invocation(USAGE) {
        Ok(invocation) => invocation,
        Err(code) => return Ok(code),
    };
    let settings = Settings::load()?;
    if invocation == Invocation::Healthcheck {
        return Ok(healthcheck::exit_code(
            &settings.server.host,
            settings.server.port,
        ));
    }
    telemetry::init("info");
    serve(settings)?;
    Ok(ExitCode::SUCCESS)
}

#[actix_web::main]
async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
