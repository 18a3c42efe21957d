//! The resource-service binary: read settings, log, serve. `resource-service healthcheck` instead
//! asks the running service's `/healthz` and exits 0 or 1 (the container health check).

use resource_service::configuration::Settings;
use resource_service::startup::Application;
use shared_claims::telemetry;

const USAGE: &str = "usage: resource-service [healthcheck]\n\nWithout arguments, serves. Configuration comes from config/*.toml and\nRESOURCE__SECTION__KEY environment variables (see README.md).";

fn main() -> anyhow::Result<std::process::ExitCode> {
    let command = std::env::args().nth(1);
    if command.is_some() && command.as_deref() != Some("healthcheck") {
        eprintln!("{USAGE}");
        return Ok(std::process::ExitCode::from(2));
    }
    let settings = Settings::load()?;
    if command.is_some() {
        let healthy =
            shared_claims::healthcheck::probe(&settings.server.host, settings.server.port);
        return Ok(if healthy {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        });
    }
    telemetry::init("info");
    serve(settings)?;
    Ok(std::process::ExitCode::SUCCESS)
}

#[actix_web::main]
async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
