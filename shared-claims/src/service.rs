//! The `main` of both service binaries: no argument serves, `healthcheck` probes the
//! running service (the container health check), anything else prints the usage.

use std::fmt::Debug;
use std::process::ExitCode;

use crate::settings::ServerSettings;
use crate::{healthcheck, telemetry};

/// Runs a service binary: loads its settings with `load`, then either probes the address
/// `server` names or initialises logging and hands the settings to `serve`.
pub fn main<S, E: Debug>(
    usage: &str,
    load: impl FnOnce() -> Result<S, config::ConfigError>,
    server: impl FnOnce(&S) -> ServerSettings,
    serve: impl FnOnce(S) -> Result<(), E>,
) -> ExitCode {
    let mut args = std::env::args().skip(1);
    let healthcheck = match (args.next().as_deref(), args.next()) {
        (None, _) => false,
        (Some("healthcheck"), None) => true,
        (Some("-h" | "--help"), None) => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let settings = match load() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    if healthcheck {
        let server = server(&settings);
        return if healthcheck::probe(&server.host, server.port) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    telemetry::init("info");
    match serve(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:?}");
            ExitCode::FAILURE
        }
    }
}

/// The whole `main.rs` of a service binary, so that the binaries do not repeat each other:
/// `service_main!(auth_service, "auth-service", "AUTH")` for a library crate that has
/// `configuration::Settings` (with [`crate::settings::LayeredSettings`] and a `server`
/// section) and `startup::Application` (`build`, `stop_on_signals`, `run_until_stopped`).
/// The binary needs `actix-web` and `anyhow` as dependencies.
#[macro_export]
macro_rules! service_main {
    ($lib:ident, $name:literal, $prefix:literal) => {
        fn main() -> std::process::ExitCode {
            use $lib::configuration::LayeredSettings as _;
            $crate::service::main(
                concat!(
                    "usage: ",
                    $name,
                    " [healthcheck]\n\nWithout arguments, serves. Configuration comes from \
                     config/*.toml and\n",
                    $prefix,
                    "__SECTION__KEY environment variables (see README.md)."
                ),
                $lib::configuration::Settings::load,
                |s| s.server.listen(),
                serve,
            )
        }

        #[actix_web::main]
        async fn serve(settings: $lib::configuration::Settings) -> anyhow::Result<()> {
            let app = $lib::startup::Application::build(settings).await?;
            app.stop_on_signals()?;
            app.run_until_stopped().await?;
            Ok(())
        }
    };
}
