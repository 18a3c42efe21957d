//! A few Postgres connections kept out of the pool, for the user store's reads (one in
//! every refresh, one in every login), each used by the thread that opened it.
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
//! A connection's socket is driven by the runtime of the thread that opened it, and actix
//! runs one single-threaded runtime per worker: a query on another worker's connection
//! wakes that worker twice (to send, and to hand the answer over). A read therefore takes
//! an idle connection its own thread opened, else opens one while fewer than the bound
//! exist; with all opened, it closes one that another thread left unused for
//! [`RECLAIM_IF_UNUSED_FOR`] and opens its own in its place (so connections follow the
//! threads that use them: after a burst on one worker, or the reads of start-up on the
//! main thread), else borrows another thread's idle one, else runs on the pool.
//! Connections are opened here, not taken from the pool, whose connections were opened by
//! whichever thread asked first.
//!
//! At most [`HeldConnections::new`]'s `held` connections exist at once. They are made
//! with the pool's connect options and within its acquisition deadline, and follow its
//! lifetime rules when next used: one idle for [`PING_IF_IDLE_FOR`] is pinged first, one
//! older than the pool's `max_lifetime` or idle longer than its `idle_timeout` is closed
//! instead. They come on top of the pool's own connections (`crate::users`).

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgArguments, PgDatabaseError, PgRow, PgSeverity};
use sqlx::query::QueryAs;
use sqlx::{Connection as _, FromRow, PgConnection, PgPool, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A connection idle this long is pinged before its next query, held or pooled: it may
/// have been closed by a Postgres restart meanwhile. Far below any restart's duration, far
/// above the gap between two uses under load.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_millis(100);

/// A connection its thread has not used for this long may be closed to make room for one
/// of a thread that reads: long enough that threads in use do not take connections from
/// each other (each take costs a new Postgres connection), short enough that the
/// connections of start-up and of a burst move to the workers that read.
pub const RECLAIM_IF_UNUSED_FOR: Duration = Duration::from_secs(5);

/// How long the ping after a cancelled query may wait for Postgres to finish it (it ends
/// within the `statement_timeout`); past that the connection is closed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The held connections; clones share them.
#[derive(Debug, Clone)]
pub struct HeldConnections {
    pool: PgPool,
    state: Arc<Mutex<State>>,
    /// One permit per connection that exists: idle, running a query or being drained.
    permits: Arc<Semaphore>,
    /// `statement_timeout` of every held connection, in milliseconds.
    statement_timeout_ms: u128,
    /// [`RECLAIM_IF_UNUSED_FOR`] (shorter in tests).
    reclaim_if_unused_for: Duration,
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

/// A connection and what its next user must know about it.
#[derive(Debug)]
struct Owned {
    connection: PgConnection,
    created: Instant,
    /// The thread whose runtime drives its socket.
    thread: ThreadId,
    /// Its place among the `held`, given up when the connection is dropped.
    _place: OwnedSemaphorePermit,
}

#[derive(Debug)]
struct Idle {
    owned: Owned,
    since: Instant,
}

/// A connection taken for one query. Dropped before [`InUse::finish`] (the query was
/// cancelled), it hands its connection to a draining task.
struct InUse {
    held: HeldConnections,
    owned: Option<Owned>,
    generation: u64,
}

/// Why a read failed.
#[derive(Debug)]
pub enum ReadFailure {
    /// No connection could be opened (Postgres unreachable, starting up, refusing): a
    /// second attempt now would meet the same.
    Connect(sqlx::Error),
    /// The query failed on a connection (or on the pool): [`connection_was_closed`] says
    /// whether another connection could do better.
    Query(sqlx::Error),
}

impl ReadFailure {
    /// The error itself, for the caller's error mapping.
    pub fn into_inner(self) -> sqlx::Error {
        match self {
            Self::Connect(e) | Self::Query(e) => e,
        }
    }
}

/// What a thread's next query runs on, in order of preference.
enum Choice {
    /// An idle connection this thread opened.
    Own(Idle),
    /// A free place: a new connection, opened on this thread.
    Open(OwnedSemaphorePermit),
    /// Another thread's connection left unused for [`RECLAIM_IF_UNUSED_FOR`]: closed, and
    /// its place taken for a connection of this thread.
    Replace(Idle),
    /// Another thread's idle connection, in steady use there: borrowed for this query.
    Borrow(Idle),
    /// Every connection is busy: the pool.
    Pool,
}

impl HeldConnections {
    /// Up to `held` connections opened as they are needed, each running queries with
    /// `statement_timeout`.
    pub fn new(pool: PgPool, held: usize, statement_timeout: Duration) -> Self {
        Self {
            pool,
            state: Arc::new(Mutex::new(State {
                idle: Vec::with_capacity(held),
                ..State::default()
            })),
            permits: Arc::new(Semaphore::new(held)),
            statement_timeout_ms: statement_timeout.as_millis(),
            reclaim_if_unused_for: RECLAIM_IF_UNUSED_FOR,
        }
    }

    /// Runs the query `make` builds on a held connection, or on the pool when none is
    /// free; the row, if any.
    pub async fn fetch_optional<'q, O>(
        &self,
        make: impl Fn() -> QueryAs<'q, Postgres, O, PgArguments>,
    ) -> Result<Option<O>, ReadFailure>
    where
        O: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let Some(mut in_use) = self.take().await? else {
            return make()
                .fetch_optional(&self.pool)
                .await
                .map_err(ReadFailure::Query);
        };
        let result = make()
            .fetch_optional(in_use.connection().map_err(ReadFailure::Query)?)
            .await;
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
        result.map_err(ReadFailure::Query)
    }

    /// Closes the idle connections at shutdown (a goodbye to Postgres where the thread
    /// that opened one still runs; after the workers stopped, their connections are
    /// simply dropped); connections still in use are dropped when their query ends, and
    /// later reads use the pool.
    pub async fn close(&self) {
        self.permits.close();
        let idle = {
            let mut state = self.lock_state();
            state.closed = true;
            std::mem::take(&mut state.idle)
        };
        for Idle { owned, .. } in idle {
            let _ = owned.connection.close().await;
        }
    }

    /// A connection for this thread's next query (see [`Choice`]); `None` when all are
    /// busy.
    async fn take(&self) -> Result<Option<InUse>, ReadFailure> {
        let here = std::thread::current().id();
        // Every turn but the last takes one connection out of the idle list.
        loop {
            let (choice, generation) = self.choose(here);
            let idle = match choice {
                Choice::Own(idle) | Choice::Borrow(idle) => idle,
                Choice::Open(permit) => return self.open(permit, here).await.map(Some),
                Choice::Replace(idle) => {
                    let Owned {
                        connection,
                        _place: permit,
                        ..
                    } = idle.owned;
                    let _ = connection.close().await;
                    return self.open(permit, here).await.map(Some);
                }
                Choice::Pool => return Ok(None),
            };
            if let Some(in_use) = self.revive(idle, generation).await {
                return Ok(Some(in_use));
            }
        }
    }

    /// What this thread's next query runs on, decided in one look at the idle list; with
    /// the generation of that moment.
    fn choose(&self, here: ThreadId) -> (Choice, u64) {
        let mut state = self.lock_state();
        let generation = state.generation;
        if let Some(at) = state
            .idle
            .iter()
            .rposition(|idle| idle.owned.thread == here)
        {
            return (Choice::Own(state.idle.remove(at)), generation);
        }
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return (Choice::Open(permit), generation);
        }
        let unused = state
            .idle
            .iter()
            .enumerate()
            .filter(|(_, idle)| idle.since.elapsed() >= self.reclaim_if_unused_for)
            .min_by_key(|(_, idle)| idle.since)
            .map(|(at, _)| at);
        let choice = match unused {
            Some(at) => Choice::Replace(state.idle.remove(at)),
            None => state.idle.pop().map_or(Choice::Pool, Choice::Borrow),
        };
        (choice, generation)
    }

    /// `idle` in use again, unless the pool would have closed it by now or it does not
    /// answer a ping after a long idle spell (then it is closed, freeing its place).
    async fn revive(&self, idle: Idle, generation: u64) -> Option<InUse> {
        let Idle { mut owned, since } = idle;
        if self.outlived(&owned, since) {
            let _ = owned.connection.close().await;
            return None;
        }
        if since.elapsed() < PING_IF_IDLE_FOR || owned.connection.ping().await.is_ok() {
            return Some(self.in_use(owned, generation));
        }
        None
    }

    /// A new connection on this thread, with the pool's options and deadline.
    async fn open(
        &self,
        permit: OwnedSemaphorePermit,
        thread: ThreadId,
    ) -> Result<InUse, ReadFailure> {
        let options = self.pool.connect_options().as_ref().clone().options([(
            "statement_timeout",
            format!("{}ms", self.statement_timeout_ms),
        )]);
        let connection = tokio::time::timeout(
            self.pool.options().get_acquire_timeout(),
            PgConnection::connect_with(&options),
        )
        .await
        .map_err(|_| ReadFailure::Connect(sqlx::Error::PoolTimedOut))?
        .map_err(ReadFailure::Connect)?;
        let generation = self.lock_state().generation;
        let owned = Owned {
            connection,
            created: Instant::now(),
            thread,
            _place: permit,
        };
        Ok(self.in_use(owned, generation))
    }

    fn in_use(&self, owned: Owned, generation: u64) -> InUse {
        InUse {
            held: self.clone(),
            owned: Some(owned),
            generation,
        }
    }

    /// Whether the pool would have closed this connection by now.
    fn outlived(&self, owned: &Owned, idle_since: Instant) -> bool {
        let options = self.pool.options();
        options
            .get_max_lifetime()
            .is_some_and(|max| owned.created.elapsed() >= max)
            || options
                .get_idle_timeout()
                .is_some_and(|max| idle_since.elapsed() >= max)
    }

    /// Puts a connection back unless one closed since it was taken, or the service is
    /// shutting down.
    fn put_back(&self, owned: Owned, generation: u64) {
        let mut state = self.lock_state();
        if state.generation == generation && !state.closed {
            state.idle.push(Idle {
                owned,
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
        self.owned
            .as_mut()
            .map(|owned| &mut owned.connection)
            .ok_or(sqlx::Error::PoolClosed)
    }

    /// The query completed: the connection goes back if `reusable`, else it is dropped
    /// (which closes its socket and frees its place).
    fn finish(mut self, reusable: bool) {
        if let Some(owned) = self.owned.take()
            && reusable
        {
            self.held.put_back(owned, self.generation);
        }
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        // Still here: the query was cancelled half way. Postgres finishes (or, past the
        // statement timeout, ends) it and then answers a ping; only then is the
        // connection ready for another query. It keeps its place meanwhile.
        let Some(mut owned) = self.owned.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let held = self.held.clone();
        let generation = self.generation;
        runtime.spawn(async move {
            if tokio::time::timeout(DRAIN_TIMEOUT, drain(&mut owned.connection))
                .await
                .is_ok_and(|drained| drained)
            {
                held.put_back(owned, generation);
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

/// Whether `e`, the failure of a query, says its connection is gone, so that the query
/// may do better on another (a failure to connect is told apart by [`ReadFailure`]).
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

    type Pid = QueryAs<'static, Postgres, (i32,), PgArguments>;

    fn backend_pid() -> Pid {
        sqlx::query_as("SELECT pg_backend_pid()")
    }

    async fn pid_of(held: &HeldConnections) -> i32 {
        held.fetch_optional(backend_pid).await.unwrap().unwrap().0
    }

    /// A runtime for the pool's own tasks (the test's main thread), none of whose sockets
    /// the worker threads below use.
    fn test_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    }

    /// Runs `work` on a thread of its own with a single-threaded runtime, as an actix
    /// worker has; the thread waits asynchronously, so its runtime keeps driving the
    /// sockets it opened while the other thread runs.
    fn on_a_worker<'scope, T: Send + 'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        work: impl std::future::Future<Output = T> + Send + 'scope,
    ) -> impl FnOnce() -> T + 'scope {
        let handle = scope.spawn(move || test_runtime().block_on(work));
        move || handle.join().expect("the worker panicked")
    }

    #[test]
    fn each_thread_reads_on_a_connection_it_opened() {
        let main = test_runtime();
        let _context = main.enter();
        let held = HeldConnections::new(pool(), 2, Duration::from_secs(10));
        let (a_read, b_may_read) = tokio::sync::oneshot::channel::<()>();
        let (b_read, a_may_read) = tokio::sync::oneshot::channel::<()>();
        let ((a1, a2), (b1, b2)) = std::thread::scope(|scope| {
            let a = on_a_worker(scope, async {
                let first = pid_of(&held).await;
                a_read.send(()).unwrap();
                a_may_read.await.unwrap();
                (first, pid_of(&held).await)
            });
            let b = on_a_worker(scope, async {
                b_may_read.await.unwrap();
                let first = pid_of(&held).await;
                b_read.send(()).unwrap();
                (first, pid_of(&held).await)
            });
            (a(), b())
        });
        assert_ne!(a1, b1, "the second thread opened a connection of its own");
        assert_eq!(a1, a2);
        assert_eq!(b1, b2);
        assert_eq!(held.idle_count(), 2);
    }

    #[test]
    fn with_every_connection_opened_a_thread_borrows_another_threads_idle_one() {
        let main = test_runtime();
        let _context = main.enter();
        let held = HeldConnections::new(pool(), 1, Duration::from_secs(10));
        let (a_read, b_may_read) = tokio::sync::oneshot::channel::<i32>();
        let (b_read, a_may_end) = tokio::sync::oneshot::channel::<()>();
        let (a, b) = std::thread::scope(|scope| {
            let a = on_a_worker(scope, async {
                let pid = pid_of(&held).await;
                a_read.send(pid).unwrap();
                a_may_end.await.unwrap();
                pid
            });
            let b = on_a_worker(scope, async {
                b_may_read.await.unwrap();
                let pid = pid_of(&held).await;
                b_read.send(()).unwrap();
                pid
            });
            (a(), b())
        });
        // The pool would have answered from another backend.
        assert_eq!(a, b);
        assert_eq!(held.idle_count(), 1);
    }

    #[test]
    fn a_connection_another_thread_left_unused_is_replaced_by_one_of_this_thread() {
        let main = test_runtime();
        let _context = main.enter();
        let mut held = HeldConnections::new(pool(), 1, Duration::from_secs(10));
        held.reclaim_if_unused_for = Duration::from_millis(150);
        let (a_read, b_may_read) = tokio::sync::oneshot::channel::<()>();
        let (b_read, a_may_end) = tokio::sync::oneshot::channel::<()>();
        let (a, (b1, b2)) = std::thread::scope(|scope| {
            let a = on_a_worker(scope, async {
                let pid = pid_of(&held).await;
                a_read.send(()).unwrap();
                a_may_end.await.unwrap();
                pid
            });
            let b = on_a_worker(scope, async {
                b_may_read.await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
                let first = pid_of(&held).await;
                let second = pid_of(&held).await;
                b_read.send(()).unwrap();
                (first, second)
            });
            (a(), b())
        });
        assert_ne!(a, b1, "the unused connection was not taken over");
        assert_eq!(b1, b2, "the new connection is this thread's");
        assert_eq!(held.idle_count(), 1, "still one connection in all");
    }

    #[tokio::test]
    async fn a_failure_to_connect_is_told_apart_from_a_failed_query() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let nowhere = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(1))
            .connect_lazy(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
            .expect("a valid URL");
        let held = HeldConnections::new(nowhere, 1, Duration::from_secs(10));

        let failed = held.fetch_optional(number(1)).await;

        assert!(matches!(failed, Err(ReadFailure::Connect(_))), "{failed:?}");
        assert_eq!(held.idle_count(), 0);
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
            matches!(&refused, Err(ReadFailure::Query(sqlx::Error::Database(db))) if db.code().as_deref() == Some("57014")),
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
            matches!(&failed, Err(ReadFailure::Query(e)) if connection_was_closed(e)),
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
            Err(ReadFailure::Query(sqlx::Error::Database(_)))
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
