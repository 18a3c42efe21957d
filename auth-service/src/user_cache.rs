//! The users that refreshes read, kept in memory while Postgres's change notifications
//! are known to be arriving, so that a refresh needs no database round trip.
//!
//! A refresh needs its session owner's roles and name (for the new access token) and
//! `sessions_valid_after` (the epoch check of `crate::flows`). Every change to a user row
//! is announced by triggers on the channel [`CHANNEL`] at commit (migration
//! `notify_user_changes`), whoever makes it: another instance, an operator's SQL. One task
//! per instance ([`listen`]) holds a connection that listens, drops the entry of every
//! announced id, and every [`HEARTBEAT_EVERY`] sends itself a notification on the same
//! channel, in a query that also reads the triggers' state (`HEARTBEAT`). Postgres
//! delivers a channel's notifications in commit order, so once the heartbeat is back every change committed
//! before it was sent has been applied here.
//!
//! The rule this gives: entries are served only while the last heartbeat that came back
//! was sent less than [`CONFIRMED_FOR`] ago, and the triggers were then enabled always. A
//! refresh that starts later than that after a change committed therefore sees the
//! change, whatever happened to the listening connection (closed, black-holed, Postgres
//! down); normally it sees it within
//! milliseconds, and this instance's own changes at once ([`UserCache::changed`]). With
//! Postgres down, refreshes of cached users go on for at most that long, then get the
//! 503 of an unavailable database like every other request that needs it.
//!
//! A read that raced a change must not store what it read before the change. Every
//! announcement (and every loss of the connection) moves a generation counter; a read
//! notes the generation before it asks Postgres ([`UserCache::ticket`]) and what it read
//! is dropped again if the generation moved meanwhile ([`UserCache::fill`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use uuid::Uuid;

use crate::users::User;

/// The notification channel of the triggers: a user id (that user changed), `all`
/// (`TRUNCATE`), or a heartbeat of an instance.
pub const CHANNEL: &str = "users_changed";

/// At most this many users are kept: with a refresh every few minutes per client, the
/// users active in the last hour of a large deployment, in a few megabytes.
const MAX_ENTRIES: u64 = 10_000;

/// An entry is read again from Postgres after this long even without a change: memory
/// hygiene only, the notifications keep entries right.
const ENTRY_TTL: Duration = Duration::from_secs(3600);

/// How often the listening connection proves that announcements arrive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(200);

/// A heartbeat query not answered within this is a lost connection.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(500);

/// Entries are served only while the last heartbeat that came back was sent less than
/// this ago: the longest a change can go unseen by this instance's refreshes.
pub const CONFIRMED_FOR: Duration = Duration::from_secs(1);

/// Wait between attempts to listen again after the connection was lost.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What an access token says about its user, and what decides whether one of the user's
/// sessions may still refresh: a user row without its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The `sub` of its tokens.
    pub id: Uuid,
    /// The `preferred_username` of its tokens.
    pub username: String,
    /// Copied into access tokens.
    pub roles: Vec<String>,
    /// Registration time (the epoch of sessions that recorded none).
    pub created_at: DateTime<Utc>,
    /// Moved by every role or password change.
    pub sessions_valid_after: DateTime<Utc>,
}

impl Subject {
    /// The `sessions_valid_after` a session opened now records, in microseconds.
    pub fn session_epoch(&self) -> i64 {
        self.sessions_valid_after.timestamp_micros()
    }

    /// Whether a session that recorded `epoch` (or nothing: opened before epochs were
    /// recorded, so under `created_at`) may still be refreshed.
    pub fn accepts_session_epoch(&self, epoch: Option<i64>) -> bool {
        epoch.unwrap_or_else(|| self.created_at.timestamp_micros()) == self.session_epoch()
    }
}

impl From<&User> for Subject {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            roles: user.roles.clone(),
            created_at: user.created_at,
            sessions_valid_after: user.sessions_valid_after,
        }
    }
}

/// The cached users and what decides whether they may be served; clones share them.
#[derive(Debug, Clone)]
pub struct UserCache {
    /// Each with the [`State::emptied`] count it was stored under.
    entries: moka::sync::Cache<Uuid, (u64, Arc<Subject>)>,
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Moves on every announced change and whenever everything is dropped (a lost
    /// connection, the trigger not enabled always, the table recreated, `TRUNCATE`).
    generation: AtomicU64,
    /// Moves whenever everything is dropped: an entry stored under an older count is
    /// never served, whatever the cache's own bookkeeping of `invalidate_all`.
    emptied: AtomicU64,
    /// Held while a read is stored (checking the generation, then inserting) and while a
    /// change moves the generation and drops entries, so that no lookup can see a read
    /// from before a change once the change was applied.
    storing: Mutex<()>,
    /// When the last heartbeat that came back was sent, while listening without a break.
    confirmed_at: Mutex<Option<Instant>>,
}

/// The generation a read started under, for [`UserCache::fill`]; `None` when nothing may
/// be stored.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(Option<u64>);

impl Default for UserCache {
    fn default() -> Self {
        Self::new()
    }
}

impl UserCache {
    /// An empty cache that serves nothing until [`listen`] confirms its first heartbeat.
    pub fn new() -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(ENTRY_TTL)
                .build(),
            state: Arc::default(),
        }
    }

    fn confirmed(&self) -> bool {
        self.state
            .confirmed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|sent| sent.elapsed() < CONFIRMED_FOR)
    }

    /// The cached user `id`, if changes are known to be arriving.
    pub fn get(&self, id: &Uuid) -> Option<Arc<Subject>> {
        if !self.confirmed() {
            return None;
        }
        let emptied = self.state.emptied.load(Ordering::SeqCst);
        self.entries
            .get(id)
            .and_then(|(stored, subject)| (stored == emptied).then_some(subject))
    }

    /// To be taken before the read whose result goes to [`UserCache::fill`].
    pub fn ticket(&self) -> Ticket {
        // The generation first: a loss of the connection after it moves it on.
        let generation = self.state.generation.load(Ordering::SeqCst);
        Ticket(self.confirmed().then_some(generation))
    }

    /// Keeps `subject`, read under `ticket`, unless a change was announced (or the
    /// connection lost) since the ticket was taken.
    pub fn fill(&self, ticket: Ticket, subject: Arc<Subject>) {
        let Ticket(Some(generation)) = ticket else {
            return;
        };
        let _storing = self.lock_storing();
        if self.state.generation.load(Ordering::SeqCst) == generation {
            let emptied = self.state.emptied.load(Ordering::SeqCst);
            self.entries.insert(subject.id, (emptied, subject));
        }
    }

    fn lock_storing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.state
            .storing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// User `id` changed: drop it, and what reads in flight may bring back of it.
    pub fn changed(&self, id: &Uuid) {
        let _storing = self.lock_storing();
        self.state.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate(id);
    }

    /// Every user may have changed (a notification that names nobody in particular):
    /// drop everything, and what reads in flight may bring back.
    fn changed_all(&self) {
        let _storing = self.lock_storing();
        self.state.generation.fetch_add(1, Ordering::SeqCst);
        self.state.emptied.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
    }

    /// A heartbeat sent at `sent` came back, with every notification before it applied.
    fn confirm(&self, sent: Instant) {
        let mut confirmed = self
            .state
            .confirmed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if confirmed.is_none_or(|at| at < sent) {
            *confirmed = Some(sent);
        }
    }

    /// The listening connection is gone: notifications may be missed from now on.
    fn suspend(&self) {
        *self
            .state
            .confirmed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        self.changed_all();
    }

    /// Applies one notification of [`CHANNEL`]; says when it was heartbeat `beat` of the
    /// instance `instance`.
    fn apply(&self, payload: &str, instance: &str) -> Option<u64> {
        if let Some(beat) = payload.strip_prefix(HEARTBEAT_PREFIX) {
            // Heartbeats of other instances change nothing.
            let (from, seq) = beat.split_once(' ')?;
            return (from == instance).then(|| seq.parse().ok()).flatten();
        }
        match Uuid::parse_str(payload) {
            Ok(id) => self.changed(&id),
            // `TRUNCATE` (the payload `all`), or anything this version does not know.
            Err(_) => self.changed_all(),
        }
        None
    }
}

/// How heartbeat notifications start: `heartbeat <instance> <sequence number>`.
const HEARTBEAT_PREFIX: &str = "heartbeat ";

/// One heartbeat: a notification to ourselves on [`CHANNEL`] (Postgres delivers a channel's
/// notifications in commit order, so once it is back every change committed before it has
/// been delivered), and what decides whether announcements are made at all: both
/// triggers enabled always (`A`, also for sessions in `replica` mode), the row versions
/// of the table's triggers and the identity of the `users` table ([`Announcing`]).
const HEARTBEAT: &str = "SELECT \
     (SELECT count(*) FILTER (WHERE t.tgenabled = 'A') = 2 \
             AND count(*) = 2 \
      FROM pg_trigger t \
      WHERE t.tgrelid = 'users'::regclass \
        AND t.tgname IN ('users_changed', 'users_truncated')), \
     (SELECT string_agg(t.oid::text || ':' || t.xmin::text, ',' ORDER BY t.oid) \
      FROM pg_trigger t WHERE t.tgrelid = 'users'::regclass), \
     'users'::regclass::oid::bigint \
     FROM (SELECT pg_notify($1, $2)) AS beat";

/// What a heartbeat saw of the table and its triggers: when it differs from one
/// heartbeat to the next, the table was recreated or a trigger altered (switched off and
/// on again, say) in between, and changes may have gone unannounced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Announcing {
    table: i64,
    triggers: Option<String>,
}

/// Listens for user changes on a connection of its own (made with `pool`'s options) and
/// keeps `cache` confirmed, for as long as it is polled; reconnects after every loss.
pub async fn listen(pool: &PgPool, cache: UserCache) {
    // Whether the last attempt's failure was logged, so that an outage logs once.
    let mut failure_logged = false;
    let mut seen = None;
    loop {
        // A pool of one for the listening connection alone, so it never takes one of the
        // requests' connections; a new one per attempt, so that a connection lost to a
        // black hole (whose release would wait on it) cannot hold up the next. Postgres
        // is asked to drop the session itself soon after its client stops answering.
        let options = pool.connect_options().as_ref().clone().options([
            ("tcp_keepalives_idle", "5"),
            ("tcp_keepalives_interval", "2"),
            ("tcp_keepalives_count", "3"),
            ("tcp_user_timeout", "10000"),
        ]);
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(HEARTBEAT_TIMEOUT.saturating_mul(3))
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options);
        match subscribe(&own).await {
            Ok(mut listener) => {
                tracing::info!("listening for user changes");
                let (error, confirmed) = follow(&mut listener, &cache, &mut seen).await;
                cache.suspend();
                if confirmed || !failure_logged {
                    tracing::warn!(
                        error = %error,
                        "user change notifications lost; refreshes read users from Postgres until they resume"
                    );
                }
                // A connection that fails at once, again and again, logs once.
                failure_logged = !confirmed;
            }
            Err(error) => {
                cache.suspend();
                if !failure_logged {
                    tracing::warn!(error = %error, "cannot listen for user changes; refreshes read users from Postgres");
                    failure_logged = true;
                }
            }
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, String> {
    let attempt = async {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.eager_reconnect(false);
        listener.ignore_pool_close_event(true);
        listener.listen(CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    match tokio::time::timeout(HEARTBEAT_TIMEOUT.saturating_mul(4), attempt).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Applies notifications and confirms heartbeats until the connection fails; says why,
/// and whether any heartbeat confirmed the cache. `seen` is what the last heartbeat saw
/// of the table and its triggers, kept across connections.
async fn follow(
    listener: &mut PgListener,
    cache: &UserCache,
    seen: &mut Option<Announcing>,
) -> (String, bool) {
    let instance = Uuid::new_v4().simple().to_string();
    let mut trigger_warned = false;
    let mut confirmed = false;
    let mut beat: u64 = 0;
    loop {
        beat += 1;
        let sent = Instant::now();
        let payload = format!("{HEARTBEAT_PREFIX}{instance} {beat}");
        let query = sqlx::query_as::<_, (Option<bool>, Option<String>, i64)>(HEARTBEAT)
            .bind(CHANNEL)
            .bind(&payload)
            .fetch_one(&mut *listener);
        let (enabled, triggers, table) = match tokio::time::timeout(HEARTBEAT_TIMEOUT, query).await
        {
            Ok(Ok(row)) => row,
            Ok(Err(error)) => return (error.to_string(), confirmed),
            Err(_) => return ("heartbeat timed out".into(), confirmed),
        };
        let now_seen = Announcing { table, triggers };
        if seen.as_ref().is_some_and(|before| *before != now_seen) {
            cache.changed_all();
        }
        *seen = Some(now_seen);
        // Whether this heartbeat, once back, confirms the cache.
        let awaited = enabled == Some(true);
        if awaited {
            trigger_warned = false;
        } else {
            // Changes may go unannounced: serve nothing, keep nothing.
            cache.suspend();
            if !trigger_warned {
                tracing::warn!(
                    "the triggers users_changed and users_truncated are not both enabled \
                     always (ALTER TABLE users ENABLE ALWAYS TRIGGER …): refreshes read users \
                     from Postgres"
                );
                trigger_warned = true;
            }
        }
        let mut heard = |payload: &str| {
            if let Some(seq) = cache.apply(payload, &instance)
                && awaited
                && seq == beat
            {
                cache.confirm(sent);
                confirmed = true;
            }
        };
        while let Some(notification) = listener.next_buffered() {
            heard(notification.payload());
        }
        let next = tokio::time::Instant::from_std(sent + HEARTBEAT_EVERY);
        loop {
            // Cancel-safe: a message is consumed only once whole.
            match tokio::time::timeout_at(next, listener.try_recv()).await {
                Err(_) => break,
                Ok(Ok(Some(notification))) => heard(notification.payload()),
                Ok(Ok(None)) => return ("connection closed".into(), confirmed),
                Ok(Err(error)) => return (error.to_string(), confirmed),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(roles: &[&str]) -> Arc<Subject> {
        let at = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        Arc::new(Subject {
            id: Uuid::from_u128(7),
            username: "alice".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            created_at: at,
            sessions_valid_after: at,
        })
    }

    fn confirmed_cache() -> UserCache {
        let cache = UserCache::new();
        cache.confirm(Instant::now());
        cache
    }

    #[test]
    fn nothing_is_kept_or_served_before_a_heartbeat_is_confirmed() {
        let cache = UserCache::new();
        cache.fill(cache.ticket(), subject(&["user"]));
        cache.confirm(Instant::now());
        assert_eq!(cache.get(&Uuid::from_u128(7)), None);
        cache.fill(cache.ticket(), subject(&["user"]));
        assert_eq!(cache.get(&Uuid::from_u128(7)), Some(subject(&["user"])));
    }

    #[test]
    fn an_old_confirmation_serves_nothing() {
        let cache = UserCache::new();
        let Some(long_ago) = Instant::now().checked_sub(CONFIRMED_FOR) else {
            return; // a machine up for less than a second
        };
        cache.confirm(long_ago);
        cache.fill(Ticket(Some(0)), subject(&["user"]));
        assert_eq!(cache.get(&Uuid::from_u128(7)), None);
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let cache = confirmed_cache();
        let ticket = cache.ticket();
        // The change is announced while the read is in flight, before it is stored…
        cache.changed(&Uuid::from_u128(7));
        cache.fill(ticket, subject(&["user"]));
        assert_eq!(cache.get(&Uuid::from_u128(7)), None);
        // …and a change of anyone else, or a lost connection, counts alike.
        let ticket = cache.ticket();
        cache.apply(&Uuid::from_u128(8).to_string(), "me");
        cache.fill(ticket, subject(&["user"]));
        assert_eq!(cache.get(&Uuid::from_u128(7)), None);
        // A read under the current generation is kept, and dropped by the next change.
        cache.fill(cache.ticket(), subject(&["user", "admin"]));
        assert_eq!(
            cache.get(&Uuid::from_u128(7)),
            Some(subject(&["user", "admin"]))
        );
        cache.apply(&Uuid::from_u128(7).to_string(), "me");
        assert_eq!(cache.get(&Uuid::from_u128(7)), None);
    }

    #[test]
    fn losing_the_connection_drops_everything_and_serves_nothing() {
        let cache = confirmed_cache();
        cache.fill(cache.ticket(), subject(&["user"]));
        let ticket = cache.ticket();
        cache.suspend();
        assert_eq!(cache.get(&Uuid::from_u128(7)), None);
        cache.confirm(Instant::now());
        assert_eq!(cache.get(&Uuid::from_u128(7)), None, "dropped, not hidden");
        cache.fill(ticket, subject(&["user"]));
        assert_eq!(
            cache.get(&Uuid::from_u128(7)),
            None,
            "a read from before the loss"
        );
    }

    #[test]
    fn heartbeats_are_told_apart_and_change_nothing() {
        let cache = confirmed_cache();
        cache.fill(cache.ticket(), subject(&["user"]));
        assert_eq!(cache.apply("heartbeat me 41", "me"), Some(41));
        assert_eq!(cache.apply("heartbeat other 41", "me"), None);
        assert_eq!(cache.get(&Uuid::from_u128(7)), Some(subject(&["user"])));
    }

    #[test]
    fn a_payload_that_is_not_a_user_id_drops_everything() {
        let cache = confirmed_cache();
        cache.fill(cache.ticket(), subject(&["user"]));
        cache.apply("all", "me");
        assert_eq!(cache.get(&Uuid::from_u128(7)), None);
    }
}
