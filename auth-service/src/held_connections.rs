//! A few Postgres connections kept out of the pool, for the user store's reads (one in
//! every refresh, one in every login).
//!
//! sqlx's pool pings every connection it gets back (sqlx 0.9; no setting removes it): a
//! second round trip per query, which on the refresh path cost the service and Postgres
//! as much as the read itself. The ping guards against a query cancelled half way (a
//! deadline, a dropped request) leaving its connection mid-conversation. Here a
//! connection is out of the idle list for its whole query and goes back as soon as the
//! query completed; only a connection whose query was cancelled is pinged, by a task of
//! its own that still counts it against the bound, and goes back once Postgres answered.
//! Held connections run with a `statement_timeout`, so Postgres ends a cancelled query
//! itself instead of running it on for nobody.
//!
//! At most [`HeldConnections::new`]'s `held` connections exist at once; a read that finds
//! none free runs on the pool. They come from the pool (`detach`), so they are made with
//! its connect options and within its acquisition deadline, and follow its lifetime
//! rules when next used: one idle for [`PING_IF_IDLE_FOR`] is pinged first, one held
//! longer than the pool's `max_lifetime` (counted from when it left the pool) or idle
//! longer than its `idle_timeout` is closed instead.
//! `detach` frees the connection's place in the pool, so the pool is sized `held` fewer
//! (`crate::users`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgArguments, PgDatabaseError, PgRow, PgSeverity};
use sqlx::query::QueryAs;
use sqlx::{Connection as _, FromRow, PgConnection, PgPool, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A connection idle this long is pinged before its next query, held or pooled: it may
/// have been closed by a Postgres restart meanwhile. Far below any restart's duration, far
/// above the gap between two uses under load.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_millis(100);

/// How long the ping after a cancelled query may wait for Postgres to finish it (it ends
/// within the `statement_timeout`); past that the connection is closed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The held connections; clones share them.
#[derive(Debug, Clone)]
pub struct HeldConnections {
    pool: PgPool,
    state: Arc<Mutex<State>>,
    /// One permit per connection that may exist: idle, running a query or being drained.
    permits: Arc<Semaphore>,
    /// `SET statement_timeout` of every held connection, in milliseconds.
    statement_timeout_ms: u128,
}

/// The idle connections and what decides whether a taken one may come back.
#[derive(Debug, Default)]
struct State {
    idle: Vec<Idle>,
    /// Moves on when a connection turned out closed: connections taken before then are
    /// closed rather than put back (a Postgres restart most likely closed them all).
    generation: u64,
    /// Set at shutdown: nothing comes back any more.
    closed: bool,
}

#[derive(Debug)]
struct Idle {
    connection: PgConnection,
    created: Instant,
    since: Instant,
}

/// A connection taken for one query. Dropped before [`InUse::finish`] (the query was
/// cancelled), it hands its connection to a draining task.
struct InUse {
    held: HeldConnections,
    connection: Option<PgConnection>,
    created: Instant,
    generation: u64,
    permit: Option<OwnedSemaphorePermit>,
}

impl HeldConnections {
    /// Up to `held` connections taken from `pool` as they are needed, each running
    /// queries with `statement_timeout`.
    pub fn new(pool: PgPool, held: usize, statement_timeout: Duration) -> Self {
        Self {
            pool,
            state: Arc::new(Mutex::new(State {
                idle: Vec::with_capacity(held),
                ..State::default()
            })),
            permits: Arc::new(Semaphore::new(held)),
            statement_timeout_ms: statement_timeout.as_millis(),
        }
    }

    /// Runs the query `make` builds on a held connection, or on the pool when all are
    /// busy; the row, if any.
    pub async fn fetch_optional<'q, O>(
        &self,
        make: impl Fn() -> QueryAs<'q, Postgres, O, PgArguments>,
    ) -> Result<Option<O>, sqlx::Error>
    where
        O: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            return make().fetch_optional(&self.pool).await;
        };
        let mut in_use = self.take(permit).await?;
        let result = make().fetch_optional(in_use.connection()?).await;
        match &result {
            // Gone (a restart): the others most likely are too.
            Err(e) if connection_was_closed(e) => {
                let mut state = self.lock_state();
                state.generation += 1;
                state.idle.clear();
                drop(state);
                in_use.finish(false);
            }
            // The query completed, with a row, none, an SQL error or a row that did not
            // decode (sqlx reads the whole answer first): ready for the next.
            Ok(_)
            | Err(
                sqlx::Error::Database(_)
                | sqlx::Error::ColumnDecode { .. }
                | sqlx::Error::Decode(_)
                | sqlx::Error::Encode(_)
                | sqlx::Error::ColumnNotFound(_)
                | sqlx::Error::ColumnIndexOutOfBounds { .. }
                | sqlx::Error::TypeNotFound { .. },
            ) => in_use.finish(true),
            // Anything else (a protocol error): not worth knowing what state it is in.
            Err(_) => in_use.finish(false),
        }
        result
    }

    /// Closes the idle connections (a clean goodbye to Postgres), at shutdown; connections
    /// still in use are dropped when their query ends, and later reads use the pool.
    pub async fn close(&self) {
        self.permits.close();
        let idle = {
            let mut state = self.lock_state();
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        for Idle { connection, .. } in idle {
            let _ = connection.close().await;
        }
    }

    /// An idle connection that still answers, else a new one from the pool.
    async fn take(&self, permit: OwnedSemaphorePermit) -> Result<InUse, sqlx::Error> {
        loop {
            let (idle, generation) = {
                let mut state = self.lock_state();
                (state.idle.pop(), state.generation)
            };
            let Some(idle) = idle else {
                break;
            };
            if self.outlived(&idle) {
                let _ = idle.connection.close().await;
                continue;
            }
            let Idle {
                mut connection,
                created,
                since,
            } = idle;
            if since.elapsed() < PING_IF_IDLE_FOR || connection.ping().await.is_ok() {
                return Ok(self.in_use(connection, created, generation, permit));
            }
        }
        let mut connection = self.pool.acquire().await?.detach();
        sqlx::query("SELECT set_config('statement_timeout', $1, false)")
            .bind(format!("{}ms", self.statement_timeout_ms))
            .execute(&mut connection)
            .await?;
        let generation = self.lock_state().generation;
        Ok(self.in_use(connection, Instant::now(), generation, permit))
    }

    fn in_use(
        &self,
        connection: PgConnection,
        created: Instant,
        generation: u64,
        permit: OwnedSemaphorePermit,
    ) -> InUse {
        InUse {
            held: self.clone(),
            connection: Some(connection),
            created,
            generation,
            permit: Some(permit),
        }
    }

    /// Whether the pool would have closed this connection by now.
    fn outlived(&self, idle: &Idle) -> bool {
        let options = self.pool.options();
        options
            .get_max_lifetime()
            .is_some_and(|max| idle.created.elapsed() >= max)
            || options
                .get_idle_timeout()
                .is_some_and(|max| idle.since.elapsed() >= max)
    }

    /// Puts a connection back unless one closed since it was taken, or the service is
    /// shutting down.
    fn put_back(&self, connection: PgConnection, created: Instant, generation: u64) {
        let mut state = self.lock_state();
        if state.generation == generation && !state.closed {
            state.idle.push(Idle {
                connection,
                created,
                since: Instant::now(),
            });
        }
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl InUse {
    /// The connection; it is only taken away by [`InUse::finish`], which consumes the
    /// guard, so the error cannot happen.
    fn connection(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        self.connection.as_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// The query completed: the connection goes back if `reusable`, else it is dropped
    /// (which closes its socket).
    fn finish(mut self, reusable: bool) {
        if let Some(connection) = self.connection.take()
            && reusable
        {
            self.held
                .put_back(connection, self.created, self.generation);
        }
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        // Still here: the query was cancelled half way. Postgres finishes (or, past the
        // statement timeout, ends) it and then answers a ping; only then is the
        // connection ready for another query. The permit stays with it meanwhile.
        let Some(mut connection) = self.connection.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let held = self.held.clone();
        let (created, generation, permit) = (self.created, self.generation, self.permit.take());
        runtime.spawn(async move {
            let _permit = permit;
            if tokio::time::timeout(DRAIN_TIMEOUT, drain(&mut connection))
                .await
                .is_ok_and(|drained| drained)
            {
                held.put_back(connection, created, generation);
            }
        });
    }
}

/// Reads what a cancelled query left until Postgres is ready for the next: a ping answers
/// once the query ended, and fails first with the query's own SQL error (the statement
/// timeout, say), which leaves the ping's answer for the next one. Whether the connection
/// is ready.
async fn drain(connection: &mut PgConnection) -> bool {
    loop {
        match connection.ping().await {
            Ok(()) => return true,
            Err(e @ sqlx::Error::Database(_)) if !connection_was_closed(&e) => {}
            Err(_) => return false,
        }
    }
}

/// Whether `e` says the connection is gone (rather than the server being unreachable,
/// which a second attempt would only wait for again).
pub fn connection_was_closed(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => {
            // 57P01 admin_shutdown: the server ended this connection (restart, fail-over);
            // any FATAL ends the session too (idle_session_timeout, …).
            db.code().is_some_and(|code| code == "57P01")
                || db.try_downcast_ref::<PgDatabaseError>().is_some_and(|pg| {
                    matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic)
                })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use sqlx::postgres::PgPoolOptions;

    use super::*;

    impl HeldConnections {
        fn idle_count(&self) -> usize {
            self.lock_state().idle.len()
        }
    }

    type Query = QueryAs<'static, Postgres, (i32,), PgArguments>;

    /// The Postgres server the tests use, at its always-present `postgres` database.
    fn pool() -> PgPool {
        let url = std::env::var("AUTH__DATABASE__URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/auth".into());
        let server = url
            .rsplit_once('/')
            .map_or(url.as_str(), |(server, _)| server);
        PgPoolOptions::new()
            .max_connections(2)
            .connect_lazy(&format!("{server}/postgres"))
            .expect("a valid URL")
    }

    fn held(statement_timeout: Duration) -> HeldConnections {
        HeldConnections::new(pool(), 1, statement_timeout)
    }

    fn number(n: i32) -> impl Fn() -> Query {
        move || sqlx::query_as("SELECT $1::int4").bind(n)
    }

    fn slow() -> Query {
        sqlx::query_as("SELECT 0 FROM pg_sleep(0.5)")
    }

    async fn eventually(what: impl Fn() -> bool) {
        let start = Instant::now();
        while !what() {
            assert!(start.elapsed() < Duration::from_secs(5), "never happened");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_connection_whose_query_was_cancelled_comes_back_only_once_drained() {
        let held = held(Duration::from_secs(10));
        assert_eq!(held.fetch_optional(number(1)).await.unwrap(), Some((1,)));
        assert_eq!(held.idle_count(), 1);

        let cancelled =
            tokio::time::timeout(Duration::from_millis(100), held.fetch_optional(slow)).await;
        assert!(cancelled.is_err(), "the slow query was cut off");
        assert_eq!(held.idle_count(), 0, "not back while its query runs");

        // Back once Postgres finished the query, and answering its next query, not the
        // cancelled one's.
        eventually(|| held.idle_count() == 1).await;
        assert_eq!(held.fetch_optional(number(2)).await.unwrap(), Some((2,)));
        assert_eq!(held.idle_count(), 1);
    }

    #[tokio::test]
    async fn postgres_ends_a_held_query_past_the_statement_timeout_and_the_connection_stays() {
        let held = held(Duration::from_millis(100));

        let started = Instant::now();
        let refused = held.fetch_optional(slow).await;

        assert!(
            matches!(&refused, Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("57014")),
            "{refused:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(450));
        assert_eq!(held.idle_count(), 1);
        assert_eq!(held.fetch_optional(number(3)).await.unwrap(), Some((3,)));
    }

    #[tokio::test]
    async fn a_query_cancelled_here_and_then_by_the_statement_timeout_gives_its_connection_back() {
        let held = held(Duration::from_millis(150));
        // Connected first, so that the cut below falls into the query itself.
        assert_eq!(held.fetch_optional(number(5)).await.unwrap(), Some((5,)));
        let cancelled =
            tokio::time::timeout(Duration::from_millis(50), held.fetch_optional(slow)).await;
        assert!(cancelled.is_err());
        assert_eq!(held.idle_count(), 0);

        eventually(|| held.idle_count() == 1).await;
        assert_eq!(held.fetch_optional(number(6)).await.unwrap(), Some((6,)));
    }

    #[tokio::test]
    async fn after_close_nothing_comes_back_and_reads_use_the_pool() {
        let held = held(Duration::from_secs(10));
        assert_eq!(held.fetch_optional(number(7)).await.unwrap(), Some((7,)));
        assert_eq!(held.idle_count(), 1);

        held.close().await;

        assert_eq!(held.idle_count(), 0);
        assert_eq!(held.fetch_optional(number(8)).await.unwrap(), Some((8,)));
        assert_eq!(held.idle_count(), 0);
    }

    #[tokio::test]
    async fn a_connection_postgres_ended_is_dropped_and_the_next_read_gets_a_new_one() {
        let held = held(Duration::from_secs(10));
        // The pool connects first, so that the terminating query below takes less than
        // PING_IF_IDLE_FOR and the held connection is used without a ping.
        sqlx::query("SELECT 1").execute(&held.pool).await.unwrap();
        let pid = || sqlx::query_as::<_, (i32,)>("SELECT pg_backend_pid()");
        let (backend,) = held.fetch_optional(pid).await.unwrap().unwrap();
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(backend)
            .execute(&held.pool)
            .await
            .unwrap();

        let failed = held.fetch_optional(number(4)).await;

        assert!(
            failed.as_ref().is_err_and(connection_was_closed),
            "{failed:?}"
        );
        assert_eq!(held.idle_count(), 0);
        let (other,) = held.fetch_optional(pid).await.unwrap().unwrap();
        assert_ne!(other, backend);
    }

    #[tokio::test]
    async fn an_sql_error_keeps_the_connection_and_busy_ones_leave_reads_to_the_pool() {
        let held = held(Duration::from_secs(10));
        let failing = || sqlx::query_as::<_, (i32,)>("SELECT 1 / 0");
        assert!(matches!(
            held.fetch_optional(failing).await,
            Err(sqlx::Error::Database(_))
        ));
        assert_eq!(held.idle_count(), 1);

        // The one held connection is busy: the next read runs on the pool meanwhile.
        let started = Instant::now();
        let (slow_answer, (quick_answer, quick_after)) =
            tokio::join!(held.fetch_optional(slow), async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                (held.fetch_optional(number(5)).await, started.elapsed())
            });
        assert_eq!(slow_answer.unwrap(), Some((0,)));
        assert_eq!(quick_answer.unwrap(), Some((5,)));
        assert!(
            quick_after < Duration::from_millis(400),
            "waited for the held connection: {quick_after:?}"
        );
        assert_eq!(held.idle_count(), 1);
    }
}
