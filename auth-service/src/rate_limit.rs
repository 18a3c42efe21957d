//! Fixed-window limits on password attempts, counted in Redis so every replica shares
//! them. Counting happens before the Argon2 check, so a flood is refused cheaply.

use std::sync::Arc;

use crate::error::ApiError;
use crate::redis_conn::RedisConn;

/// Counts attempts per client address and per username.
#[derive(Debug)]
pub struct RateLimiter {
    redis: Arc<RedisConn>,
    prefix: String,
    window_ms: u64,
    per_ip: u32,
    per_username: u32,
}

impl RateLimiter {
    /// A limiter allowing `per_ip` and `per_username` attempts per `window_secs`.
    pub fn new(
        redis: Arc<RedisConn>,
        prefix: &str,
        window_secs: u64,
        per_ip: u32,
        per_username: u32,
    ) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            window_ms: window_secs.max(1) * 1000,
            per_ip,
            per_username,
        }
    }

    /// Records one attempt from `ip` (and for `username`, folded) and refuses it with
    /// [`ApiError::RateLimited`] when a limit is exceeded.
    pub async fn attempt(&self, ip: &str, username: Option<&str>) -> Result<(), ApiError> {
        self.count(format!("{}ratelimit:ip:{ip}", self.prefix), self.per_ip)
            .await?;
        if let Some(username) = username {
            self.count(
                format!("{}ratelimit:user:{username}", self.prefix),
                self.per_username,
            )
            .await?;
        }
        Ok(())
    }

    async fn count(&self, key: String, limit: u32) -> Result<(), ApiError> {
        let window_ms = self.window_ms;
        let (count, ttl_ms): (u64, i64) = self
            .redis
            .run(|mut conn| async move {
                redis::pipe()
                    .atomic()
                    .incr(&key, 1)
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(window_ms)
                    .arg("NX")
                    .ignore()
                    .pttl(&key)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        if count > u64::from(limit) {
            let retry_after = u64::try_from(ttl_ms).unwrap_or(0).div_ceil(1000).max(1);
            return Err(ApiError::RateLimited(retry_after));
        }
        Ok(())
    }
}
