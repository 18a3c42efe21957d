//! Graceful shutdown on SIGTERM (what `docker stop` and orchestrators send) and SIGINT
//! (Ctrl-C): the listener closes at once, so new connections go elsewhere; requests in
//! flight finish, kept-alive connections are closed after their current response, and
//! whatever is still running when the grace period (`server.shutdown_grace_secs`) ends
//! is cut. A second signal ends the process at once (exit status 1).

use std::time::Duration;

use actix_web::dev::ServerHandle;
use tokio::signal::unix::{SignalKind, signal};

/// Stops the server behind `handle` gracefully at the first SIGTERM or SIGINT, and ends
/// the process at the second. Returns after installing the handlers; the server's own
/// future completes when it has stopped.
pub fn stop_on_signals(handle: ServerHandle, grace: Duration) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    actix_web::rt::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(
            signal = name,
            grace_secs = grace.as_secs(),
            "shutting down: no new connections; requests in flight may finish"
        );
        let graceful = handle.stop(true);
        tokio::select! {
            () = graceful => {}
            _ = terminate.recv() => forced(),
            _ = interrupt.recv() => forced(),
        }
    });
    Ok(())
}

/// A graceful stop cannot be turned into a forced one once started (actix finishes the
/// first stop command before it reads another), so the second signal ends the process.
fn forced() {
    tracing::warn!("second signal: exiting at once, cutting requests in flight");
    std::process::exit(1);
}
