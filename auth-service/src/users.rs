//! Users: the parsed input types and the Postgres store. Password hashing lives in
//! [`crate::passwords`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::QueryAs;
use sqlx::{FromRow, PgPool, Postgres};
use uuid::Uuid;

use crate::held_connections::{HeldConnections, ReadFailure, connection_was_closed};
use crate::user_cache::{Subject, UserCache};

/// Deadline for one database round trip; beyond it the caller gets a 503.
const QUERY_TIMEOUT: Duration = Duration::from_millis(1500);

/// A username as the API allows it (README § Prerequisites): 3–64 of
/// `[A-Za-z0-9_.-]`, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Checks the rules; the error says which one was broken.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let len = raw.chars().count();
        if !(3..=64).contains(&len) {
            return Err("username must be 3 to 64 characters long".into());
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err("username may only contain letters, digits, '_', '.' and '-'".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// As typed, for display.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form names compare in (usernames are case-insensitive).
    pub fn folded(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A password of 8–128 characters, kept out of logs and `Debug`.
#[derive(Debug)]
pub struct Password(SecretString);

/// The characters the strength estimate looks at: zxcvbn's search grows steeply with
/// length (seconds for some 128-character inputs), and a password whose first 40
/// characters are strong is strong.
const STRENGTH_PREFIX_CHARS: usize = 40;

impl Password {
    /// Checks the length rule.
    pub fn parse(raw: SecretString) -> Result<Self, String> {
        let len = raw.expose_secret().chars().count();
        if !(8..=128).contains(&len) {
            return Err("password must be 8 to 128 characters long".into());
        }
        Ok(Self(raw))
    }

    /// Refuses common and easily guessed passwords (NIST SP 800-63B §5.1.1.2): zxcvbn must
    /// rate it at least 3 of 4 ("safely unguessable"), with the username counted as
    /// known to an attacker. The error says why and what would pass. Takes up to tens of
    /// milliseconds: call it off the async executor.
    pub fn check_strength(&self, username: &Username) -> Result<(), String> {
        let prefix: String = self
            .0
            .expose_secret()
            .chars()
            .take(STRENGTH_PREFIX_CHARS)
            .collect();
        let estimate = zxcvbn::zxcvbn(&prefix, &[username.as_str()]);
        if estimate.score() >= zxcvbn::Score::Three {
            return Ok(());
        }
        let feedback = estimate.feedback();
        let why = feedback.and_then(|f| f.warning()).map_or_else(
            || "it is easy to guess".to_owned(),
            |w| lowercase_first(&w.to_string()),
        );
        let hint = feedback
            .map(|f| {
                f.suggestions()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "Add another word or two.".to_owned());
        Err(format!(
            "password is too easy to guess: {why} {hint} A passphrase of four or more \
             uncommon words, or 12+ random characters, passes."
        ))
    }

    /// [`Self::check_strength`] on a blocking thread, handing the password back when it
    /// passes; the outer error is a failed task, the inner one the reason it is weak.
    pub async fn checked_for_strength(
        self,
        username: &Username,
    ) -> Result<Result<Self, String>, tokio::task::JoinError> {
        let username = username.clone();
        tokio::task::spawn_blocking(move || self.check_strength(&username).map(|()| self)).await
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

/// A stored user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    /// The `sub` of its tokens.
    pub id: Uuid,
    /// As registered.
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Roles, copied into access tokens.
    pub roles: Vec<String>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Moved by every role or password change; sessions opened under another value are
    /// not refreshed.
    pub sessions_valid_after: DateTime<Utc>,
}

/// What `POST /auth/register` returns: the user without its hash.
impl From<User> for shared_claims::protocol::UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            roles: u.roles,
            created_at: u.created_at,
        }
    }
}

pub use crate::passwords::{HashError, Passwords};

impl Password {
    /// The password itself, for [`Passwords::hash`] only.
    pub(crate) fn into_secret(self) -> SecretString {
        self.0
    }
}

/// Users in Postgres.
#[derive(Debug, Clone)]
pub struct UserStore {
    pool: PgPool,
    /// For the reads ([`UserStore::find_by_id`], [`UserStore::find_by_username`]).
    held: HeldConnections,
    /// The users refreshes read ([`UserStore::subject`]).
    cache: UserCache,
}

/// Connections held out of the pool for the reads (every refresh's and every login's):
/// enough for the reads in flight at once under load on a few cores. A worker runs other
/// requests (a signature takes a quarter of a millisecond) before it reads an answer that
/// has arrived, so a read occupies its connection for several of them; with four, reads
/// spilled over to the pool and its extra round trip. Writes use the pool.
const HELD_CONNECTIONS: u32 = 8;

/// The pool's size: with the held connections, the service opens at most twelve
/// connections to Postgres for requests (and one more that listens for user changes,
/// `crate::user_cache`).
pub const POOLED_CONNECTIONS: u32 = 12 - HELD_CONNECTIONS;

/// Why the user store could not answer; mapped to HTTP in [`crate::error`].
#[derive(Debug, thiserror::Error)]
pub enum UserStoreError {
    /// The username exists already, in any letter case.
    #[error("the username is taken")]
    UsernameTaken,
    /// Postgres is unreachable, restarting, overloaded or too slow.
    #[error("the user database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else: our bug (a query or a type mismatch).
    #[error("the user database refused the query")]
    Query(#[source] sqlx::Error),
}

impl From<sqlx::Error> for UserStoreError {
    /// Unreachable, restarting or overloaded is unavailability; anything else a bug.
    fn from(e: sqlx::Error) -> Self {
        let unavailable = match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            // Class 08 (connection exception), 53 (insufficient resources), 57P01–57P03
            // (shutdown, crash recovery, starting up), 57014 (the statement timeout of
            // held connections: as slow as the query deadline).
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(&*code, "57P01" | "57P02" | "57P03" | "57014")
            }),
            _ => false,
        };
        if unavailable {
            Self::Unavailable(e.to_string())
        } else if e
            .as_database_error()
            .is_some_and(|db| db.is_unique_violation())
        {
            Self::UsernameTaken
        } else {
            Self::Query(e)
        }
    }
}

async fn deadline<T>(
    query: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, UserStoreError> {
    match tokio::time::timeout(QUERY_TIMEOUT, query).await {
        Ok(result) => result.map_err(UserStoreError::from),
        Err(_) => Err(UserStoreError::Unavailable("query timed out".into())),
    }
}

impl UserStore {
    /// A store over `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self {
            held: HeldConnections::new(pool.clone(), HELD_CONNECTIONS as usize, QUERY_TIMEOUT),
            pool,
            cache: UserCache::new(),
        }
    }

    /// Keeps the users refreshes read in memory while Postgres announces every change to
    /// them (`crate::user_cache`), for as long as it is polled: spawn it once per store.
    pub fn follow_changes(&self) -> impl Future<Output = ()> + Send + 'static {
        let pool = self.pool.clone();
        let cache = self.cache.clone();
        async move { crate::user_cache::listen(&pool, cache).await }
    }

    /// Inserts a user; a name taken in any letter case is [`UserStoreError::UsernameTaken`].
    #[tracing::instrument(skip(self, password_hash), fields(username = %username.as_str()))]
    pub async fn insert(
        &self,
        username: &Username,
        password_hash: &str,
        roles: &[&str],
    ) -> Result<User, UserStoreError> {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        deadline(
            sqlx::query_as::<_, User>(
                "INSERT INTO users (id, username, password_hash, roles) VALUES ($1, $2, $3, $4) \
                 RETURNING id, username, password_hash, roles, created_at, sessions_valid_after",
            )
            .bind(Uuid::new_v4())
            .bind(username.as_str())
            .bind(password_hash)
            .bind(&roles)
            .fetch_one(&self.pool),
        )
        .await
    }

    /// Looks a user up by name, in any letter case.
    pub async fn find_by_username(&self, username: &str) -> Result<Option<User>, UserStoreError> {
        self.read(|| {
            sqlx::query_as(
                "SELECT id, username, password_hash, roles, created_at, sessions_valid_after \
                 FROM users WHERE lower(username) = lower($1)",
            )
            .bind(username)
        })
        .await
    }

    /// What a refresh needs of user `id` (roles, name, epoch; `None`: deleted), from
    /// memory when the cache may serve it, else from Postgres.
    pub async fn subject(&self, id: Uuid) -> Result<Option<Arc<Subject>>, UserStoreError> {
        if let Some(subject) = self.cache.get(&id) {
            return Ok(Some(subject));
        }
        self.subject_from_database(id).await
    }

    /// [`Self::subject`] read from Postgres whatever memory holds (and kept there): for a
    /// decision that must not rest on a change that has not reached this instance yet.
    pub async fn subject_from_database(
        &self,
        id: Uuid,
    ) -> Result<Option<Arc<Subject>>, UserStoreError> {
        let ticket = self.cache.ticket();
        let Some(user) = self.find_by_id(id).await? else {
            return Ok(None);
        };
        let subject = Arc::new(Subject::from(&user));
        self.cache.fill(ticket, Arc::clone(&subject));
        Ok(Some(subject))
    }

    /// Looks a user up by id, in Postgres.
    async fn find_by_id(&self, id: Uuid) -> Result<Option<User>, UserStoreError> {
        self.read(|| {
            sqlx::query_as(
                "SELECT id, username, password_hash, roles, created_at, sessions_valid_after \
                 FROM users WHERE id = $1",
            )
            .bind(id)
        })
        .await
    }

    /// A read (the query `make` builds), on the held connections: made again once when
    /// the connection it ran on turned out to be closed (a Postgres restart noticed by a
    /// connection in steady use, which is not pinged before use), both attempts within
    /// one [`QUERY_TIMEOUT`]. The broken connection is dropped, with every held one taken
    /// before it, so the second attempt runs on another one.
    async fn read<'q, O>(
        &self,
        make: impl Fn() -> QueryAs<'q, Postgres, O, PgArguments>,
    ) -> Result<Option<O>, UserStoreError>
    where
        O: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        deadline(async {
            match self.held.fetch_optional(&make).await {
                Err(ReadFailure::Query(e)) if connection_was_closed(&e) => {
                    tracing::info!(error = %e, "postgres connection closed; reading again on another");
                    self.held
                        .fetch_optional(&make)
                        .await
                        .map_err(ReadFailure::into_inner)
                }
                other => other.map_err(ReadFailure::into_inner),
            }
        })
        .await
    }

    /// Gives an existing user a role and, when given, a new password hash. When either
    /// changes, `sessions_valid_after` moves in the same statement, so every session opened
    /// before stops refreshing: whoever held this account before cannot mint tokens with
    /// the new role, whatever happens to Redis.
    pub async fn grant_role(
        &self,
        id: Uuid,
        role: &str,
        new_password_hash: Option<&str>,
    ) -> Result<(), UserStoreError> {
        let changed = deadline(
            sqlx::query(
                "UPDATE users SET \
                   roles = CASE WHEN $2 = ANY(roles) THEN roles ELSE array_append(roles, $2) END, \
                   password_hash = COALESCE($3, password_hash), \
                   sessions_valid_after = CASE \
                     WHEN $2 = ANY(roles) AND $3 IS NULL THEN sessions_valid_after \
                     ELSE greatest(clock_timestamp(), \
                                   sessions_valid_after + interval '1 microsecond') END \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(role)
            .bind(new_password_hash)
            .execute(&self.pool),
        )
        .await;
        // At once here (every instance hears of it from Postgres), and after a failure too:
        // the statement may have committed although no answer came.
        self.cache.changed(&id);
        changed.map(|_| ())
    }

    /// Closes every connection, held and pooled, at shutdown.
    pub async fn close(&self) {
        self.held.close().await;
        self.pool.close().await;
    }

    /// Whether Postgres answers, for `/readyz`.
    pub async fn ping(&self) -> bool {
        deadline(sqlx::query("SELECT 1").execute(&self.pool))
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_documented_rules() {
        assert!(Username::parse("al").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
        assert!(Username::parse("bad name").is_err());
        assert!(Username::parse("émile").is_err());
        assert_eq!(
            Username::parse("Alice.B-2_x").unwrap().folded(),
            "alice.b-2_x"
        );
    }

    #[test]
    fn common_and_easily_guessed_passwords_are_refused_with_advice() {
        let alice = Username::parse("alice").unwrap();
        for weak in [
            "password",
            "12345678",
            "0123456789",
            "qwertyuiop123",
            "alice2024",
        ] {
            let error = Password::parse(weak.to_owned().into())
                .unwrap()
                .check_strength(&alice)
                .unwrap_err();
            assert!(
                error.starts_with("password is too easy to guess"),
                "{weak}: {error}"
            );
            assert!(error.contains("passes"), "{error}");
        }
        for strong in [
            "correct horse battery staple",
            "Tr0ub4dor&3 zebra",
            "mX7#qL2!vR9@kT4$wZ1%nB6^hJ3&pD8*sF5(gY0)cU",
        ] {
            assert_eq!(
                Password::parse(strong.to_owned().into())
                    .unwrap()
                    .check_strength(&alice),
                Ok(()),
                "{strong}"
            );
        }
    }

    #[test]
    fn passwords_must_be_8_to_128_characters() {
        assert!(Password::parse("short".to_owned().into()).is_err());
        assert!(Password::parse("x".repeat(129).into()).is_err());
        assert!(Password::parse("long enough".to_owned().into()).is_ok());
        // Characters, not bytes: eight two-byte letters are enough.
        assert!(Password::parse("éééééééé".to_owned().into()).is_ok());
    }
}
