//! `<service> healthcheck`: asks the service's own `/healthz` over loopback, so container
//! images need no curl. Plain HTTP/1.1 on a socket, with short timeouts. Reached through
//! [`crate::service::main`].

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

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
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n",
        crate::protocol::paths::HEALTHZ
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
