//! A few Postgres connections kept out of the pool, for the one read every refresh makes.
//!
//! sqlx's pool pings every connection it gets back (sqlx 0.9; no setting removes it): a
//! second round trip per query, which on the refresh path cost the service and Postgres
//! as much as the read itself. The ping guards against a query cancelled half way (a
//! deadline, a dropped request) leaving its connection mid-conversation. Here a
//! connection is taken out of the idle list for the whole query and put back only after
//! the query completed, so a cancelled query drops its connection (closing it) instead of
//! returning it half used: what the ping guards against cannot happen.
//!
//! At most [`HeldConnections::new`]'s `held` connections exist at once; a read that finds
//! none free runs on the pool as before. Connections come from the pool (`detach`), so
//! they are made with its settings and its acquisition deadline, and one idle for
//! [`PING_IF_IDLE_FOR`] is pinged before use, as the pool does with its own.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::postgres::PgRow;
use sqlx::{Connection as _, FromRow, PgConnection, PgPool};
use tokio::sync::Semaphore;

/// A connection idle this long is pinged before its next query, held or pooled: it may
/// have been closed by a Postgres restart meanwhile. Far below any restart's duration, far
/// above the gap between two uses under load.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_millis(100);

/// The held connections; clones share them.
#[derive(Debug, Clone)]
pub struct HeldConnections {
    pool: PgPool,
    idle: Arc<Mutex<Vec<Idle>>>,
    /// One permit per connection that may exist: idle or running a query.
    permits: Arc<Semaphore>,
}

#[derive(Debug)]
struct Idle {
    connection: PgConnection,
    since: Instant,
}

impl HeldConnections {
    /// Up to `held` connections taken from `pool` as they are needed.
    pub fn new(pool: PgPool, held: usize) -> Self {
        Self {
            pool,
            idle: Arc::new(Mutex::new(Vec::with_capacity(held))),
            permits: Arc::new(Semaphore::new(held)),
        }
    }

    /// Runs the query `make` builds on a held connection, or on the pool when all are
    /// busy; the row, if any.
    pub async fn fetch_optional<O>(
        &self,
        make: impl Fn() -> sqlx::query::QueryAs<'static, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> Result<Option<O>, sqlx::Error>
    where
        O: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let Ok(_permit) = self.permits.try_acquire() else {
            return make().fetch_optional(&self.pool).await;
        };
        let mut connection = self.take().await?;
        let result = make().fetch_optional(&mut connection).await;
        match &result {
            // Gone (a restart): the others most likely are too, and are dropped with it.
            Err(e) if connection_was_closed(e) => self.lock_idle().clear(),
            // The query completed (an SQL error too): the connection is ready for the next.
            Ok(_) | Err(sqlx::Error::Database(_)) => self.lock_idle().push(Idle {
                connection,
                since: Instant::now(),
            }),
            // Anything else (a row that did not decode, a protocol error): not worth
            // knowing what state it is in; dropped, which closes it.
            Err(_) => drop(connection),
        }
        result
    }

    /// An idle connection that still answers, else a new one from the pool.
    async fn take(&self) -> Result<PgConnection, sqlx::Error> {
        let idle = self.lock_idle().pop();
        if let Some(Idle {
            mut connection,
            since,
        }) = idle
            && (since.elapsed() < PING_IF_IDLE_FOR || connection.ping().await.is_ok())
        {
            return Ok(connection);
        }
        Ok(self.pool.acquire().await?.detach())
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether `e` says the connection is gone (rather than the server being unreachable,
/// which a second attempt would only wait for again).
pub fn connection_was_closed(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        // 57P01 admin_shutdown: the server ended this connection (restart, fail-over).
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code == "57P01"),
        _ => false,
    }
}
