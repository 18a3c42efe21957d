//! The resource-service binary: read settings, log, serve.

use resource_service::configuration::Settings;
use resource_service::startup::Application;
use shared_claims::telemetry;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("info");
    let settings = Settings::load()?;
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
