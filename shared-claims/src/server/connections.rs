//! Per-connection limits actix does not enforce by itself.
//!
//! * **A dribbled head on a kept-alive connection.** actix's `client_request_timeout`
//!   covers the head of the *first* request of a connection only; once a response has
//!   gone out, the next request's first byte stops the keep-alive timer and nothing times
//!   the rest of its head. A client sending one byte now and then would hold the
//!   connection for ever. So every connection gets a watchdog: when the connection has
//!   been between requests (no request being served) for longer than keep-alive plus the
//!   header timeout, the socket is shut down. In every honest case actix has closed it
//!   before: an idle connection at its keep-alive timeout, a slow first head at the
//!   header timeout.
//! * **A dribbled body.** Nothing in actix times the body once the head is in; a handler
//!   reading JSON would wait for ever. [`guard_requests`] gives the body a deadline
//!   (`server.body_read_timeout_ms`, counted from the end of the head): past it the read
//!   fails with a timeout error ([`is_body_timeout`] recognises it, for a 408), and the
//!   response closes the connection.
//!
//! The watchdog holds a duplicate of the connection's socket descriptor (made with safe
//! std calls) so that it can shut the socket down without owning actix's stream; it is
//! closed together with the connection's state, when actix drops the connection.

use std::any::Any;
use std::cell::Cell;
use std::io;
use std::net::Shutdown;
use std::os::fd::AsFd as _;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage as _};
use futures_util::Stream;
use tokio::time::{Instant, Sleep, sleep, sleep_until};

use super::ServerLimits;

/// Slack added to actix's own timers before the watchdog acts, so that it only ever
/// catches what they miss.
const WATCHDOG_SLACK: Duration = Duration::from_secs(1);

/// Installs the per-connection state and its watchdog (the `on_connect` hook).
#[derive(Debug, Clone, Copy)]
pub(super) struct Watchdog {
    /// Longest time a connection may spend between requests.
    between_requests: Duration,
    body_read_timeout: Duration,
}

impl Watchdog {
    pub(super) fn new(limits: &ServerLimits) -> Self {
        Self {
            between_requests: limits.keep_alive + limits.request_header_timeout + WATCHDOG_SLACK,
            body_read_timeout: limits.body_read_timeout,
        }
    }

    /// Called by actix on the worker thread for every accepted connection.
    pub(super) fn on_connect(&self, io: &dyn Any, extensions: &mut Extensions) {
        let Some(stream) = io.downcast_ref::<actix_web::rt::net::TcpStream>() else {
            return;
        };
        let socket = match stream.as_fd().try_clone_to_owned() {
            Ok(fd) => Some(std::net::TcpStream::from(fd)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch a connection for slow clients");
                None
            }
        };
        let state = Rc::new(ConnectionState {
            phase: Cell::new(Phase::Between(Instant::now())),
            socket,
            body_read_timeout: self.body_read_timeout,
            body_timed_out: Cell::new(false),
        });
        actix_web::rt::spawn(watch(Rc::downgrade(&state), self.between_requests));
        extensions.insert(ConnectionGuard(state));
    }
}

/// What one connection is doing, shared by the middleware and the watchdog. Everything of
/// a connection runs on its worker's thread, so plain cells suffice.
#[derive(Debug)]
struct ConnectionState {
    phase: Cell<Phase>,
    /// A duplicate of the connection's socket, to shut it down; `None` if it could not be
    /// made (the watchdog then only watches).
    socket: Option<std::net::TcpStream>,
    body_read_timeout: Duration,
    /// Set when the body deadline passed: the response must close the connection.
    body_timed_out: Cell<bool>,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// A request is being served.
    Serving,
    /// Between requests since then: waiting for (the rest of) the next head.
    Between(Instant),
}

/// The connection's state in its extensions; dropping it (with the connection) closes the
/// duplicate socket.
#[derive(Debug)]
struct ConnectionGuard(Rc<ConnectionState>);

async fn watch(state: Weak<ConnectionState>, between_requests: Duration) {
    loop {
        let Some(connection) = state.upgrade() else {
            return;
        };
        let wake = match connection.phase.get() {
            Phase::Serving => Instant::now() + between_requests,
            Phase::Between(since) if since.elapsed() >= between_requests => {
                // Debug, not info: under a slowloris attack this is one line per socket.
                tracing::debug!(
                    "dropping a connection that sent no complete request for {} s",
                    between_requests.as_secs()
                );
                if let Some(socket) = &connection.socket {
                    let _ = socket.shutdown(Shutdown::Both);
                }
                return;
            }
            Phase::Between(since) => since + between_requests,
        };
        drop(connection);
        sleep_until(wake).await;
    }
}

/// Middleware: marks the connection as serving, gives the body its deadline, and closes
/// the connection after a response to a body that came too slowly.
pub async fn guard_requests(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state = req.conn_data::<ConnectionGuard>().map(|g| Rc::clone(&g.0));
    if let Some(state) = &state {
        state.phase.set(Phase::Serving);
        let payload = req.take_payload();
        if !matches!(payload, Payload::None) {
            req.set_payload(Payload::Stream {
                payload: Box::pin(BodyDeadline {
                    inner: payload,
                    deadline: Box::pin(sleep(state.body_read_timeout)),
                    state: Rc::downgrade(state),
                    done: false,
                }),
            });
        }
    }
    let result = next.call(req).await;
    if let Some(state) = &state {
        state.phase.set(Phase::Between(Instant::now()));
    }
    result.map(|mut response| {
        if state.is_some_and(|s| s.body_timed_out.get()) {
            response
                .response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
        response
    })
}

/// Whether a payload error is the body deadline of [`guard_requests`].
pub fn is_body_timeout(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(e) if e.kind() == io::ErrorKind::TimedOut)
}

/// A request body that fails with [`io::ErrorKind::TimedOut`] once its deadline passes.
struct BodyDeadline {
    inner: Payload,
    deadline: Pin<Box<Sleep>>,
    state: Weak<ConnectionState>,
    done: bool,
}

impl Stream for BodyDeadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.done = true;
                if let Some(state) = self.state.upgrade() {
                    state.body_timed_out.set(true);
                }
                Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                )))))
            }
        }
    }
}
