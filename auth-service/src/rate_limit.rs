//! Limits on password guessing, counted in Redis so every replica shares them. Counting
//! happens before the Argon2 check, so a flood is refused cheaply.
//!
//! Refusals (429) are scoped to the client address, so that nobody can lock someone else
//! out of their account:
//! * per address, password attempts at any username (`attempts_per_ip`);
//! * per (username, address), failed logins (`attempts_per_username`); a successful login
//!   clears this pair's count.
//!
//! Across all addresses a username is only ever *slowed down*: beyond
//! `delay_after_failures_per_username` failures in a window, each further attempt at it
//! waits a little longer (up to `max_delay_ms`) before its password is checked, the right
//! password included. This is the trade-off: a distributed guesser (many addresses) is
//! slowed for everyone, including the owner, instead of being able to lock the owner out.
//!
//! Counting is retried once when Redis closed the cached connection (see
//! [`crate::redis_conn`]). If the first run counted and only its reply was lost, the
//! attempt is counted twice: one extra count in a window, in the direction of limiting,
//! and rare (it needs a connection to break between a command and its reply). That is
//! better than turning every Redis restart into failed logins. The one operation that
//! gives attempts *back* ([`RateLimiter::record_success`]) is not retried, so a lost reply
//! can never hand out more attempts.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crate::configuration::RateLimitSettings;
use crate::error::ApiError;
use crate::metrics::{AuthMetrics, RateLimit};
use crate::redis_conn::{RedisConn, RedisFailure};

/// Each failure beyond the threshold adds this much delay.
const DELAY_STEP_MS: u64 = 50;

/// Counts password attempts and failures.
#[derive(Debug)]
pub struct RateLimiter {
    redis: Arc<RedisConn>,
    prefix: String,
    window_ms: u64,
    rules: RateLimitSettings,
    metrics: AuthMetrics,
}

/// A login allowed to go ahead, possibly after a delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginGate {
    /// How long to wait before checking the password.
    pub delay: Duration,
}

impl RateLimiter {
    /// A limiter with `rules`; keys go under `prefix`, refusals are counted in `metrics`.
    pub fn new(
        redis: Arc<RedisConn>,
        prefix: &str,
        rules: RateLimitSettings,
        metrics: AuthMetrics,
    ) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            window_ms: rules.window_secs.max(1).saturating_mul(1000),
            rules,
            metrics,
        }
    }

    /// Refuses the attempt with [`ApiError::RateLimited`] when `count` is over `limit`.
    fn refuse_over(
        &self,
        count: u64,
        limit: u32,
        ttl_ms: i64,
        which: RateLimit,
    ) -> Result<(), ApiError> {
        if count > u64::from(limit) {
            self.metrics.rate_limited(which);
            let retry_after = u64::try_from(ttl_ms).unwrap_or(0).div_ceil(1000).max(1);
            return Err(ApiError::RateLimited(retry_after));
        }
        Ok(())
    }

    fn ip_key(&self, ip: &str) -> String {
        format!("{}ratelimit:ip:{ip}", self.prefix)
    }

    fn pair_key(&self, username: &str, ip: &str) -> String {
        format!("{}ratelimit:pair:{username}:{ip}", self.prefix)
    }

    fn user_key(&self, username: &str) -> String {
        format!("{}ratelimit:user:{username}", self.prefix)
    }

    /// Records a password attempt from `ip` that names no known username form (a
    /// registration, or a login with an impossible username).
    pub async fn attempt(&self, ip: &str) -> Result<(), ApiError> {
        let key = self.ip_key(ip);
        let window_ms = self.window_ms;
        let (count, ttl_ms): (u64, i64) = self
            .redis
            .run(|mut conn| async move {
                let mut pipe = redis::pipe();
                count_in(&mut pipe, &key, window_ms);
                pipe.query_async(&mut conn).await
            })
            .await?;
        self.refuse_over(
            count,
            self.rules.attempts_per_ip,
            ttl_ms,
            RateLimit::address,
        )
    }

    /// Records a login attempt at `username` (folded) from `ip`, refusing it when the
    /// address or the pair is over its limit; otherwise says how long to delay it.
    pub async fn begin_login(&self, ip: &str, username: &str) -> Result<LoginGate, ApiError> {
        let (ip_key, pair_key, user_key) = (
            self.ip_key(ip),
            self.pair_key(username, ip),
            self.user_key(username),
        );
        let window_ms = self.window_ms;
        let (ip_count, ip_ttl, pair_count, pair_ttl, failures): (u64, i64, u64, i64, Option<u64>) =
            self.redis
                .run(|mut conn| async move {
                    // Not MULTI: the keys live in different cluster slots; each INCR and
                    // its PEXPIRE still run in order on this one connection.
                    let mut pipe = redis::pipe();
                    count_in(&mut pipe, &ip_key, window_ms);
                    count_in(&mut pipe, &pair_key, window_ms);
                    pipe.get(&user_key);
                    pipe.query_async(&mut conn).await
                })
                .await?;
        self.refuse_over(
            ip_count,
            self.rules.attempts_per_ip,
            ip_ttl,
            RateLimit::address,
        )?;
        self.refuse_over(
            pair_count,
            self.rules.attempts_per_username,
            pair_ttl,
            RateLimit::username_address,
        )?;
        Ok(LoginGate {
            delay: self.delay_for(failures.unwrap_or(0)),
        })
    }

    /// The progressive delay after `failures` failed logins at one username from all
    /// addresses.
    fn delay_for(&self, failures: u64) -> Duration {
        let threshold = u64::from(self.rules.delay_after_failures_per_username);
        let excess = failures.saturating_sub(threshold.saturating_sub(1));
        Duration::from_millis(
            excess
                .saturating_mul(DELAY_STEP_MS)
                .min(self.rules.max_delay_ms),
        )
    }

    /// A wrong password for `username`: counts towards its slow-down.
    pub async fn record_failure(&self, username: &str) -> Result<(), RedisFailure> {
        let key = self.user_key(username);
        let window_ms = self.window_ms;
        self.redis
            .run(|mut conn| async move {
                let mut pipe = redis::pipe();
                count_in(&mut pipe, &key, window_ms);
                pipe.query_async::<(u64, i64)>(&mut conn).await
            })
            .await
            .map(|_| ())
    }

    /// A successful login: the pair starts afresh, and the address gets its attempt back
    /// (its count is of failures). Run at most once: a retry after a lost reply would give
    /// the address two attempts back.
    pub async fn record_success(&self, ip: &str, username: &str) -> Result<(), RedisFailure> {
        let (ip_key, pair_key) = (self.ip_key(ip), self.pair_key(username, ip));
        self.redis
            .run_once(|mut conn| async move {
                // One round trip: the pair's counter goes, the address's is given back. A
                // script, not a pipeline around one: a pipeline's EVALSHA fails on a Redis
                // that has not seen the script yet (a fresh or restarted one), where
                // `invoke_async` loads it and runs it again.
                GIVE_BACK_ATTEMPT
                    .key(&pair_key)
                    .key(&ip_key)
                    .invoke_async::<()>(&mut conn)
                    .await
            })
            .await
    }
}

/// Deletes the (username, address) counter `KEYS[1]` and decrements the address counter
/// `KEYS[2]`, but only an existing one: a window that ended meanwhile must not leave a -1
/// behind, with no expiry, as a free attempt.
static GIVE_BACK_ATTEMPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "redis.call('DEL', KEYS[1]) \
         if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECR', KEYS[2]) end",
    )
});

/// Adds `INCR key`, `PEXPIRE key window NX` and `PTTL key` (two replies: count, ttl).
fn count_in(pipe: &mut redis::Pipeline, key: &str, window_ms: u64) {
    pipe.incr(key, 1)
        .cmd("PEXPIRE")
        .arg(key)
        .arg(window_ms)
        .arg("NX")
        .ignore()
        .pttl(key);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(threshold: u32, max_delay_ms: u64) -> RateLimiter {
        RateLimiter::new(
            Arc::new(RedisConn::new("redis://127.0.0.1:1").unwrap()),
            "t:",
            RateLimitSettings {
                window_secs: 60,
                attempts_per_ip: 30,
                attempts_per_username: 10,
                delay_after_failures_per_username: threshold,
                max_delay_ms,
            },
            AuthMetrics::default(),
        )
    }

    #[test]
    fn the_delay_starts_at_the_threshold_grows_and_is_capped() {
        let limiter = limiter(100, 2000);
        assert_eq!(limiter.delay_for(0), Duration::ZERO);
        assert_eq!(limiter.delay_for(99), Duration::ZERO);
        assert_eq!(limiter.delay_for(100), Duration::from_millis(50));
        assert_eq!(limiter.delay_for(109), Duration::from_millis(500));
        assert_eq!(limiter.delay_for(10_000), Duration::from_millis(2000));
    }
}
