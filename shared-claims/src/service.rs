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
