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

#[cfg(test)]
mod tests {
    use sqlx::postgres::PgPoolOptions;

    use super::*;

    impl HeldConnections {
        fn idle_count(&self) -> usize {
            self.lock_idle().len()
        }
    }

    /// The Postgres server the tests use, at its always-present `postgres` database.
    fn pool(max_connections: u32) -> PgPool {
        let url = std::env::var("AUTH__DATABASE__URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/auth".into());
        let (server, _) = url.rsplit_once('/').expect("a database name");
        PgPoolOptions::new()
            .max_connections(max_connections)
            .connect_lazy(&format!("{server}/postgres"))
            .expect("a valid URL")
    }

    fn number(
        n: i32,
    ) -> impl Fn() -> sqlx::query::QueryAs<'static, sqlx::Postgres, (i32,), sqlx::postgres::PgArguments>
    {
        move || sqlx::query_as("SELECT $1::int4").bind(n)
    }

    fn slow() -> sqlx::query::QueryAs<'static, sqlx::Postgres, (i32,), sqlx::postgres::PgArguments>
    {
        sqlx::query_as("SELECT 0 FROM pg_sleep(1)")
    }

    #[tokio::test]
    async fn a_connection_is_kept_after_its_query_and_dropped_with_a_cancelled_one() {
        let held = HeldConnections::new(pool(2), 1);

        assert_eq!(held.fetch_optional(number(1)).await.unwrap(), Some((1,)));
        assert_eq!(held.idle_count(), 1);

        let cancelled =
            tokio::time::timeout(Duration::from_millis(100), held.fetch_optional(slow)).await;
        assert!(cancelled.is_err(), "the slow query was cut off");
        assert_eq!(held.idle_count(), 0, "the half-used connection is not kept");

        assert_eq!(held.fetch_optional(number(2)).await.unwrap(), Some((2,)));
        assert_eq!(held.idle_count(), 1);
    }

    #[tokio::test]
    async fn an_sql_error_keeps_the_connection_and_busy_ones_leave_reads_to_the_pool() {
        let held = HeldConnections::new(pool(2), 1);
        let failing = || sqlx::query_as::<_, (i32,)>("SELECT 1 / 0");
        assert!(matches!(
            held.fetch_optional(failing).await,
            Err(sqlx::Error::Database(_))
        ));
        assert_eq!(held.idle_count(), 1);

        // The one held connection is busy: the next read runs on the pool meanwhile.
        let started = Instant::now();
        let (slow_answer, quick_answer) = tokio::join!(held.fetch_optional(slow), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let answer = held.fetch_optional(number(3)).await;
            (answer, started.elapsed())
        });
        assert_eq!(slow_answer.unwrap(), Some((0,)));
        assert_eq!(quick_answer.0.unwrap(), Some((3,)));
        assert!(
            quick_answer.1 < Duration::from_millis(900),
            "did not wait for the held connection: {:?}",
            quick_answer.1
        );
    }
}
