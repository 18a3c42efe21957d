//! Multiplexed Redis connections, re-established on demand, with a hard deadline on
//! every operation.
//!
//! A request must get a 503 within 2 s when Redis is down or black-holed, and the service
//! must recover by itself when Redis returns. Every operation therefore runs under one
//! timeout that covers connecting and the command, and any transport failure drops the
//! cached connection so the next request dials again.
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
use std::thread::ThreadId;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, ErrorKind, RedisError, ServerErrorKind};

/// Deadline for connecting plus running one command or script.
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

/// A lazily connected, self-healing handle to Redis, one connection per calling thread.
pub struct RedisConn {
    client: Client,
    config: AsyncConnectionConfig,
    current: Mutex<HashMap<ThreadId, MultiplexedConnection>>,
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
        })
    }

    /// Runs `op` on a live connection within [`OPERATION_TIMEOUT`].
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, RedisFailure>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let attempt = async {
            let conn = self.connection().await?;
            op(conn).await
        };
        match tokio::time::timeout(OPERATION_TIMEOUT, attempt).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if is_transport_failure(&e) => {
                self.forget();
                Err(RedisFailure::Unavailable {
                    cause: e.to_string(),
                    outcome_unknown: !e.is_connection_refusal(),
                })
            }
            Ok(Err(e)) if is_server_unable(&e) => Err(RedisFailure::Unavailable {
                cause: e.to_string(),
                outcome_unknown: false,
            }),
            Ok(Err(e)) => Err(RedisFailure::Command(e)),
            Err(_elapsed) => {
                self.forget();
                Err(RedisFailure::Unavailable {
                    cause: "operation timed out".into(),
                    outcome_unknown: true,
                })
            }
        }
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

    /// This thread's connection, dialled on first use. The lock is never held across an
    /// await.
    async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        let thread = std::thread::current().id();
        if let Some(conn) = self.lock().get(&thread) {
            return Ok(conn.clone());
        }
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&self.config)
            .await?;
        self.lock().insert(thread, conn.clone());
        Ok(conn)
    }

    /// Drops this thread's connection after a transport failure; other threads find out
    /// about theirs on their next command.
    fn forget(&self) {
        self.lock().remove(&std::thread::current().id());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ThreadId, MultiplexedConnection>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
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
