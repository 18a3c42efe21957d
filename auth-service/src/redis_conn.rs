//! Multiplexed Redis connections, one per calling thread, re-established on demand, with a
//! hard deadline on every operation, and one retry when the cached connection turns out
//! to be dead.
//!
//! A request must get a 503 within 2 s when Redis is down or black-holed, and the service
//! must recover by itself when Redis returns. Every operation therefore runs under one
//! deadline ([`OPERATION_TIMEOUT`]) that covers connecting, the command and any retry,
//! and any transport failure drops the cached connection so the next attempt dials again.
//!
//! A connection that Redis closed while it sat idle (a restart, a fail-over, the server's
//! `timeout` reaping idle clients) is only noticed by the next command sent on it. That
//! command is not the caller's fault and Redis may be healthy again, so an operation whose
//! *cached* connection fails with a closed-connection error (broken pipe, reset, EOF) is
//! run once more on a freshly dialled connection, within the same deadline. A fresh
//! connection that fails, a refused dial or a timeout is not retried: Redis is really
//! down, and the caller gets its quick 503.
//!
//! Whether an operation may run twice is the caller's decision, made per call:
//! * [`RedisConn::run`]: operations for which a second run is harmless (reads, deletes,
//!   scripts that set the same state again, counters where one extra count is acceptable);
//! * [`RedisConn::run_once`]: operations a second run would change the answer of;
//! * [`RedisConn::run_with_retry`]: operations that must know they are the retry (the
//!   refresh rotation, which then asks Redis to recognise its own earlier run).
//!
//! Each thread that talks to Redis gets its own multiplexed connection. A connection's
//! I/O runs as a task on the runtime that opened it, and actix runs one single-threaded
//! runtime per worker: with one shared connection, every command of every worker would
//! wake the thread that happened to open it (twice: to send, and to hand the reply
//! back), which costs more CPU than the command itself. With one per thread, a worker's
//! commands never leave its thread. The number of threads that run requests is small and
//! fixed (the workers, plus the main thread at start-up).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::ThreadId;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, ServerErrorKind};
use tokio::time::{Instant, timeout_at};

/// Deadline for connecting plus running one command or script, retry included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);

/// Why a Redis operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisFailure {
    /// Redis is unreachable, slow or dropped the connection: a 503 for the caller.
    #[error("redis is unavailable: {cause}")]
    Unavailable {
        /// What went wrong, for the log.
        cause: String,
        /// Whether the command may have run although no reply came (a timeout or a
        /// connection lost after sending), as opposed to surely not (refused, loading).
        /// After a retry, whether *either* attempt may have run.
        outcome_unknown: bool,
    },
    /// Redis answered with an error: our bug (a script or a type mismatch).
    #[error("redis refused the command: {0}")]
    Command(#[source] RedisError),
}

impl RedisFailure {
    /// Whether the failed command may nevertheless have run.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::Unavailable {
                outcome_unknown: true,
                ..
            }
        )
    }
}

/// Which run of an operation this is (see [`RedisConn::run_with_retry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The first run.
    First,
    /// The one retry, on a fresh connection, after the cached one was found closed. The
    /// first run may have executed in Redis although its reply was lost: the connection
    /// may have broken after the command was written.
    Retry,
}

/// A connection handed to one attempt, with what is needed to judge its failure.
struct Lease {
    conn: MultiplexedConnection,
    /// Identifies the cached connection, so that a failure drops only the connection
    /// that failed, never a fresh one another request has just dialled.
    epoch: u64,
    /// Whether it was dialled before this operation (and so may have died unseen).
    reused: bool,
}

/// One attempt's failure, before classification.
struct AttemptFailure {
    error: RedisError,
    /// Whether the attempt ran on a connection that was dialled before it.
    reused: bool,
}

/// A lazily connected, self-healing handle to Redis, one connection per calling thread.
pub struct RedisConn {
    client: Client,
    config: AsyncConnectionConfig,
    current: Mutex<HashMap<ThreadId, (u64, MultiplexedConnection)>>,
    epochs: AtomicU64,
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: do not print the client.
        f.debug_struct("RedisConn").finish_non_exhaustive()
    }
}

impl RedisConn {
    /// Prepares a handle; nothing is dialled until the first operation.
    pub fn new(url: &str) -> Result<Self, RedisError> {
        Ok(Self {
            client: Client::open(url)?,
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(OPERATION_TIMEOUT))
                .set_response_timeout(Some(OPERATION_TIMEOUT)),
            current: Mutex::new(HashMap::new()),
            epochs: AtomicU64::new(0),
        })
    }

    /// Runs `op` on a live connection within [`OPERATION_TIMEOUT`], once more (a clone of
    /// it) on a fresh connection if the cached one turns out closed. Only for operations
    /// that may run twice: the first run may have executed although its reply was lost.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, RedisFailure>
    where
        F: FnOnce(MultiplexedConnection) -> Fut + Clone,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.run_with_retry(|conn, _| op.clone()(conn)).await
    }

    /// Runs `op` at most once, within [`OPERATION_TIMEOUT`]: for operations whose second
    /// run would change the answer, so that a closed connection is a 503 instead.
    pub async fn run_once<T, F, Fut>(&self, op: F) -> Result<T, RedisFailure>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        let outcome = timeout_at(deadline, self.attempt(op)).await;
        classify(self.forget_on_failure(outcome))
    }

    /// Like [`Self::run`], but `op` is told which [`Attempt`] it is, so that a retry can
    /// ask Redis to recognise an earlier run whose reply was lost.
    pub async fn run_with_retry<T, F, Fut>(&self, mut op: F) -> Result<T, RedisFailure>
    where
        F: FnMut(MultiplexedConnection, Attempt) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let deadline = Instant::now() + OPERATION_TIMEOUT;
        let first = timeout_at(deadline, self.attempt(|conn| op(conn, Attempt::First))).await;
        match self.forget_on_failure(first) {
            Ok(Err(failure)) if failure.reused && found_closed(&failure.error) => {
                tracing::info!(
                    cause = %failure.error,
                    "the cached redis connection was closed; retrying once on a fresh one"
                );
            }
            first => return classify(first),
        }
        let second = timeout_at(deadline, self.attempt(|conn| op(conn, Attempt::Retry))).await;
        classify(self.forget_on_failure(second)).map_err(|failure| match failure {
            // Whatever the retry's outcome, the first run may have happened.
            RedisFailure::Unavailable { cause, .. } => RedisFailure::Unavailable {
                cause,
                outcome_unknown: true,
            },
            command => command,
        })
    }

    /// One attempt: a connection (cached or dialled) and `op` on it.
    async fn attempt<T, F, Fut>(&self, op: F) -> Result<T, AttemptFailure>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let lease = self.connection().await.map_err(|error| AttemptFailure {
            error,
            reused: false,
        })?;
        op(lease.conn).await.map_err(|error| {
            // A server that cannot serve (a replica after a fail-over, say) is dropped too:
            // the next dial may reach the new primary.
            if is_transport_failure(&error) || is_server_unable(&error) {
                self.forget(lease.epoch);
            }
            AttemptFailure {
                error,
                reused: lease.reused,
            }
        })
    }

    /// Drops the cached connection after a timeout (transport failures drop theirs in
    /// [`Self::attempt`], which knows which connection failed).
    fn forget_on_failure<T>(
        &self,
        outcome: Result<Result<T, AttemptFailure>, tokio::time::error::Elapsed>,
    ) -> Result<Result<T, AttemptFailure>, tokio::time::error::Elapsed> {
        if outcome.is_err() {
            // A black-holed connection: this thread's is suspect.
            self.lock().remove(&std::thread::current().id());
        }
        outcome
    }

    /// The server's version (`INFO server`), to refuse servers too old for our commands.
    pub async fn server_version(&self) -> Result<RedisVersion, RedisFailure> {
        let info: String = self
            .run(|mut conn| async move {
                redis::cmd("INFO")
                    .arg("server")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        RedisVersion::from_info(&info).ok_or_else(|| RedisFailure::Unavailable {
            cause: "INFO server names no redis_version".into(),
            outcome_unknown: false,
        })
    }

    /// Drops every cached connection (at shutdown: Redis sees the sockets close).
    pub fn close(&self) {
        self.lock().clear();
    }

    /// This thread's connection, dialled on first use. The lock is never held across an
    /// await.
    async fn connection(&self) -> Result<Lease, RedisError> {
        let thread = std::thread::current().id();
        if let Some((epoch, conn)) = self.lock().get(&thread) {
            return Ok(Lease {
                conn: conn.clone(),
                epoch: *epoch,
                reused: true,
            });
        }
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        let epoch = self.epochs.fetch_add(1, Ordering::Relaxed) + 1;
        // Requests of this thread that found no connection dial concurrently; the first
        // to finish is cached, the others serve their own request and are dropped.
        self.lock()
            .entry(thread)
            .or_insert_with(|| (epoch, conn.clone()));
        Ok(Lease {
            conn,
            epoch,
            reused: false,
        })
    }

    /// Drops this thread's cached connection if it is the one numbered `epoch`.
    fn forget(&self, epoch: u64) {
        let thread = std::thread::current().id();
        let mut current = self.lock();
        if current
            .get(&thread)
            .is_some_and(|(cached, _)| *cached == epoch)
        {
            current.remove(&thread);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ThreadId, (u64, MultiplexedConnection)>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Turns an attempt's outcome into the caller's result.
fn classify<T>(
    outcome: Result<Result<T, AttemptFailure>, tokio::time::error::Elapsed>,
) -> Result<T, RedisFailure> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(AttemptFailure { error, .. })) if is_transport_failure(&error) => {
            Err(RedisFailure::Unavailable {
                cause: error.to_string(),
                outcome_unknown: !error.is_connection_refusal(),
            })
        }
        Ok(Err(AttemptFailure { error, .. })) if is_server_unable(&error) => {
            Err(RedisFailure::Unavailable {
                cause: error.to_string(),
                outcome_unknown: false,
            })
        }
        Ok(Err(AttemptFailure { error, .. })) => Err(RedisFailure::Command(error)),
        Err(_elapsed) => Err(RedisFailure::Unavailable {
            cause: "operation timed out".into(),
            outcome_unknown: true,
        }),
    }
}

/// A Redis server version, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RedisVersion(pub u32, pub u32, pub u32);

/// The oldest Redis the service runs on: the rate limiter's `PEXPIRE … NX` needs 7.0.
pub const MINIMUM_REDIS: RedisVersion = RedisVersion(7, 0, 0);

impl RedisVersion {
    /// Reads `redis_version:x.y.z` from the text of `INFO server`.
    pub fn from_info(info: &str) -> Option<Self> {
        let version = info
            .lines()
            .find_map(|line| line.trim().strip_prefix("redis_version:"))?;
        let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().ok());
        Some(Self(
            parts.next()??,
            parts.next().flatten().unwrap_or(0),
            parts.next().flatten().unwrap_or(0),
        ))
    }
}

impl std::fmt::Display for RedisVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

fn is_transport_failure(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

/// A connection Redis closed (restart, fail-over, idle reap): worth one retry on a fresh
/// connection. Timeouts are not (the deadline is spent, and Redis may be black-holed),
/// nor refusals (Redis is down: a second dial would be refused too).
fn found_closed(e: &RedisError) -> bool {
    (e.is_connection_dropped() || e.is_io_error() || e.is_unrecoverable_error())
        && !e.is_timeout()
        && !e.is_connection_refusal()
}

/// Redis is up but cannot serve now: loading its data, read-only replica after a
/// fail-over, out of memory, busy with a script, or a cluster in transition.
fn is_server_unable(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::BusyLoading
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
        )
    ) || matches!(e.code(), Some("OOM" | "BUSY" | "MISCONF" | "NOREPLICAS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_info_server() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n";
        assert_eq!(RedisVersion::from_info(info), Some(RedisVersion(7, 0, 15)));
        assert!(RedisVersion::from_info("redis_version:6.2.14\r\n").unwrap() < MINIMUM_REDIS);
        assert!(RedisVersion::from_info("redis_version:7.2\r\n").unwrap() >= MINIMUM_REDIS);
        assert_eq!(RedisVersion::from_info("# Server\r\n"), None);
    }
}
