//! `<service> healthcheck`: asks the service's own `/healthz` over loopback, so container
//! images need no curl. Plain HTTP/1.1 on a socket, with short timeouts.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::process::ExitCode;
use std::time::Duration;

/// What a service binary was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invocation {
    /// No arguments: serve.
    Serve,
    /// `healthcheck`: probe the running service and exit.
    Healthcheck,
}

/// Reads the command line of a service binary; prints `usage` and gives the exit code
/// for anything else.
pub fn invocation(usage: &str) -> Result<Invocation, ExitCode> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => Ok(Invocation::Serve),
        (Some("healthcheck"), None) => Ok(Invocation::Healthcheck),
        (Some("-h" | "--help"), None) => {
            println!("{usage}");
            Err(ExitCode::SUCCESS)
        }
        _ => {
            eprintln!("{usage}");
            Err(ExitCode::from(2))
        }
    }
}

/// The exit code of `healthcheck`: 0 when [`probe`] succeeds.
pub fn exit_code(host: &str, port: u16) -> ExitCode {
    if probe(host, port) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Whether `GET /healthz` on `host:port` answers 200 within two seconds. A wildcard
/// listen address (`0.0.0.0`, `::`) is probed on loopback.
pub fn probe(host: &str, port: u16) -> bool {
    let host = match host {
        "0.0.0.0" | "::" | "[::]" | "" => "127.0.0.1",
        other => other,
    };
    let timeout = Duration::from_secs(2);
    let Some(addr) = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request =
        format!("GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
