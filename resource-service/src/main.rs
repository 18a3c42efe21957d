//! The resource-service binary: read settings, log, serve; `resource-service healthcheck`
//! asks the running service's `/healthz` instead (see [`shared_claims::service::main`]).

use std::process::ExitCode;

use resource_service::configuration::LayeredSettings as _;
use resource_service::configuration::Settings;
use resource_service::startup::Application;

const USAGE: &str = "usage: resource-service [healthcheck]\n\nWithout arguments, serves. Configuration comes from config/*.toml and\nRESOURCE__SECTION__KEY environment variables (see README.md).";

fn main() -> ExitCode {
    shared_claims::service::main(USAGE, Settings::load, |s| s.server.listen(), serve)
}

#[actix_web::main]
async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.stop_on_signals()?;
    app.run_until_stopped().await?;
    Ok(())
}
