//! Refresh sessions in Redis (`DESIGN.md` § Refresh token): opaque rotating tokens, the
//! grace window for concurrent retries, reuse detection, inactivity and absolute limits,
//! and the per-user session index.
//!
//! # Token format
//! A refresh token is `base64url(version ‖ sid ‖ generation ‖ HMAC-SHA256(secret, …))`.
//! The session's hash in Redis holds only the *current generation*; the token of a
//! generation is recomputed with the secret, which lives in the key directory and never in
//! Redis. So a copy of Redis cannot refresh anything, and the server can hand a concurrent
//! retry the very same successor token without storing it.
//!
//! # Rotation
//! One Lua script per refresh decides atomically, on the session's hash alone:
//! * presented generation = current: rotate (generation + 1);
//! * = current − 1, within the grace window and under the grace count: return the same
//!   successor (no fork, no revocation); over the count: refuse without revoking;
//! * any other retired generation: reuse, so the whole session is deleted (RFC 9700
//!   §4.14.2).
//!
//! Keys of one session are `<prefix>session:{<sid>}`, so with Redis Cluster every script
//! touches one hash slot. The per-user index `<prefix>user:{<uid>}:sessions` lives in the
//! user's slot and is maintained in separate, non-atomic steps; readers prune entries
//! whose session is gone, so it can lag but never shows a dead session.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redis::{AsyncCommands as _, Script};
use ring::hmac;
use uuid::Uuid;

use crate::redis_conn::{RedisConn, RedisFailure};

/// Length of a refresh token's binary form: version, sid, generation, MAC.
const TOKEN_BYTES: usize = 1 + 16 + 8 + 32;
const TOKEN_VERSION: u8 = 1;
const MAC_CONTEXT: &[u8] = b"refresh-token/v1";

/// Mints and opens refresh tokens with the server-side secret.
pub struct RefreshTokens {
    key: hmac::Key,
}

impl std::fmt::Debug for RefreshTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshTokens(..)")
    }
}

impl RefreshTokens {
    /// Uses `secret` (at least 32 bytes) as the HMAC-SHA256 key.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    fn mac(&self, sid: &Uuid, generation: u64) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(MAC_CONTEXT);
        ctx.update(sid.as_bytes());
        ctx.update(&generation.to_be_bytes());
        ctx.sign()
    }

    /// The token of `generation` of session `sid`; the same inputs give the same token.
    pub fn mint(&self, sid: &Uuid, generation: u64) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_BYTES);
        bytes.push(TOKEN_VERSION);
        bytes.extend_from_slice(sid.as_bytes());
        bytes.extend_from_slice(&generation.to_be_bytes());
        bytes.extend_from_slice(self.mac(sid, generation).as_ref());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The session and generation a token names, if we minted it; constant-time check.
    pub fn open(&self, token: &str) -> Option<(Uuid, u64)> {
        if token.len() != (TOKEN_BYTES * 4).div_ceil(3) {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != TOKEN_BYTES || bytes[0] != TOKEN_VERSION {
            return None;
        }
        let sid = Uuid::from_slice(&bytes[1..17]).ok()?;
        let generation = u64::from_be_bytes(bytes[17..25].try_into().ok()?);
        let mut ctx = Vec::with_capacity(MAC_CONTEXT.len() + 24);
        ctx.extend_from_slice(MAC_CONTEXT);
        ctx.extend_from_slice(&bytes[1..25]);
        hmac::verify(&self.key, &ctx, &bytes[25..]).ok()?;
        Some((sid, generation))
    }
}

/// Session lifetimes and the grace window, in milliseconds.
#[derive(Debug, Clone)]
pub struct SessionRules {
    /// Inactivity limit (`jwt.refresh_ttl_secs`).
    pub idle_ms: i64,
    /// Absolute limit (`jwt.session_max_ttl_secs`).
    pub absolute_ms: i64,
    /// Grace window after a rotation (`jwt.refresh_reuse_grace_secs`); 0 disables it.
    pub grace_ms: i64,
    /// Retries served inside the window (`jwt.refresh_reuse_grace_count`).
    pub grace_count: u32,
    /// Live sessions per user (`jwt.max_sessions_per_user`).
    pub max_per_user: u32,
}

/// What a new session records.
#[derive(Debug)]
pub struct NewSession<'a> {
    /// Owner.
    pub user_id: Uuid,
    /// The client it was opened with.
    pub client_id: &'a str,
    /// Granted scope.
    pub scope: &'a str,
    /// The login request's User-Agent, for the session list.
    pub user_agent: &'a str,
}

/// A session that accepted a refresh: the token to hand out and what to mint with.
#[derive(Debug, Clone)]
pub struct Granted {
    /// The generation of the refresh token to return.
    pub generation: u64,
    /// Owner.
    pub user_id: Uuid,
    /// Client it was opened with.
    pub client_id: String,
    /// Granted scope.
    pub scope: String,
    /// Milliseconds the returned refresh token stays usable (inactivity and absolute).
    pub ttl_ms: i64,
}

/// Why a refresh was refused; every case is `invalid_grant` to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such session: never existed, expired, logged out or revoked.
    Unknown,
    /// The session passed its inactivity or absolute limit.
    Expired,
    /// The previous token was retried more often than the grace count allows.
    GraceExhausted,
    /// A retired token was presented: the session has been revoked.
    Reused {
        /// Owner of the revoked session, for the audit log.
        user_id: Option<Uuid>,
    },
}

/// The outcome of a refresh.
#[derive(Debug, Clone)]
pub enum Rotation {
    /// The presented token was current and is now retired.
    Rotated(Granted),
    /// A retry of the just-retired token inside the grace window: same successor.
    Retried(Granted),
    /// Refused.
    Refused(Refusal),
}

/// A live session as listed to its owner.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Session id (`sid`).
    pub sid: Uuid,
    /// Opened, ms since the epoch.
    pub created_ms: i64,
    /// Last refresh (or login), ms since the epoch.
    pub last_used_ms: i64,
    /// When it ends unless refreshed, ms since the epoch.
    pub expires_ms: i64,
    /// User-Agent of the login.
    pub user_agent: String,
}

/// Lua prelude: the Redis server's clock in milliseconds. Every session decision uses
/// this one clock, so replicas whose clocks drift cannot stretch a grace window or an
/// expiry.
const REDIS_NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_text = string.format('%d', now)
";

/// KEYS[1] = session. ARGV = uid, client id, scope, user agent, idle ms, absolute ms.
const CREATE: &str = r"
local idle = tonumber(ARGV[5])
local absolute = tonumber(ARGV[6])
redis.call('HSET', KEYS[1], 'uid', ARGV[1], 'cid', ARGV[2], 'scope', ARGV[3], 'ua', ARGV[4],
  'gen', '0', 'rot', '0', 'grace', '0', 'created', now_text, 'used', now_text,
  'abs', string.format('%d', now + absolute))
local ttl = math.min(idle, absolute)
redis.call('PEXPIRE', KEYS[1], ttl)
return {now_text, tostring(ttl)}
";

/// KEYS[1] = session. ARGV = presented generation, grace ms, grace count, idle ms.
const ROTATE: &str = r"
local s = redis.call('HMGET', KEYS[1], 'gen', 'rot', 'grace', 'abs', 'used', 'uid', 'cid', 'scope')
if not s[1] then return {'unknown'} end
local presented = tonumber(ARGV[1])
local grace_ms = tonumber(ARGV[2])
local grace_count = tonumber(ARGV[3])
local idle_ms = tonumber(ARGV[4])
local gen = tonumber(s[1])
local abs = tonumber(s[4])
if now >= abs or now >= tonumber(s[5]) + idle_ms then
  redis.call('DEL', KEYS[1])
  return {'expired'}
end
if presented == gen then
  local ttl = math.min(idle_ms, abs - now)
  redis.call('HSET', KEYS[1], 'gen', gen + 1, 'rot', now_text, 'grace', 0, 'used', now_text)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {'rotated', tostring(gen + 1), s[6], s[7], s[8], tostring(ttl), now_text}
end
if grace_ms > 0 and presented == gen - 1 and now - tonumber(s[2]) < grace_ms then
  if tonumber(s[3]) < grace_count then
    redis.call('HINCRBY', KEYS[1], 'grace', 1)
    return {'retried', tostring(gen), s[6], s[7], s[8], tostring(redis.call('PTTL', KEYS[1])), now_text}
  end
  return {'grace_exhausted'}
end
redis.call('DEL', KEYS[1])
return {'reused', s[6]}
";

/// KEYS[1] = session. ARGV[1] = the user that must own it.
const REVOKE_IF_OWNER: &str = r"
if redis.call('HGET', KEYS[1], 'uid') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The session store.
pub struct SessionStore {
    redis: Arc<RedisConn>,
    prefix: String,
    rules: SessionRules,
    create: Script,
    rotate: Script,
    revoke_if_owner: Script,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("prefix", &self.prefix)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl SessionStore {
    /// A store writing keys under `prefix`.
    pub fn new(redis: Arc<RedisConn>, prefix: &str, rules: SessionRules) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            rules,
            create: Script::new(&format!("{REDIS_NOW}{CREATE}")),
            rotate: Script::new(&format!("{REDIS_NOW}{ROTATE}")),
            revoke_if_owner: Script::new(REVOKE_IF_OWNER),
        }
    }

    fn session_key(&self, sid: &Uuid) -> String {
        format!("{}session:{{{sid}}}", self.prefix)
    }

    fn index_key(&self, user_id: &Uuid) -> String {
        format!("{}user:{{{user_id}}}:sessions", self.prefix)
    }

    /// Opens a session at generation 0 and returns its id and the token TTL; evicts the
    /// least recently used sessions beyond the per-user cap.
    #[tracing::instrument(skip(self, new), fields(user_id = %new.user_id))]
    pub async fn create(&self, new: NewSession<'_>) -> Result<(Uuid, i64), RedisFailure> {
        let sid = Uuid::new_v4();
        let key = self.session_key(&sid);
        let index = self.index_key(&new.user_id);
        let user_agent: String = new.user_agent.chars().take(256).collect();
        let rules = &self.rules;
        let (_, ttl_ms, live): (i64, i64, usize) = self
            .redis
            .run(|mut conn| async move {
                let (now, ttl): (String, String) = self
                    .create
                    .key(&key)
                    .arg(new.user_id.to_string())
                    .arg(new.client_id)
                    .arg(new.scope)
                    .arg(&user_agent)
                    .arg(rules.idle_ms)
                    .arg(rules.absolute_ms)
                    .invoke_async(&mut conn)
                    .await?;
                let now: i64 = now.parse().unwrap_or_default();
                let (live,): (usize,) = redis::pipe()
                    .zadd(&index, sid.to_string(), now)
                    .ignore()
                    .pexpire(&index, rules.absolute_ms)
                    .ignore()
                    .zcard(&index)
                    .query_async(&mut conn)
                    .await?;
                Ok((now, ttl.parse().unwrap_or_default(), live))
            })
            .await?;
        if live > self.rules.max_per_user as usize {
            self.enforce_cap(&new.user_id).await?;
        }
        Ok((sid, ttl_ms))
    }

    /// Evicts the least recently used live sessions until the cap holds.
    async fn enforce_cap(&self, user_id: &Uuid) -> Result<(), RedisFailure> {
        let mut live = self.live_sessions(user_id).await?;
        let excess = live.len().saturating_sub(self.rules.max_per_user as usize);
        if excess == 0 {
            return Ok(());
        }
        live.sort_by_key(|s| s.last_used_ms);
        tracing::info!(%user_id, evicted = excess, "session cap reached; evicting least recently used");
        for session in live.iter().take(excess) {
            self.revoke_owned(user_id, &session.sid).await?;
        }
        Ok(())
    }

    /// The user's live sessions, newest first. Index entries whose session is gone
    /// (expired, revoked) are pruned on the way.
    #[tracing::instrument(skip(self))]
    pub async fn live_sessions(&self, user_id: &Uuid) -> Result<Vec<SessionInfo>, RedisFailure> {
        let now_ms = self.redis_now_ms().await?;
        let index = self.index_key(user_id);
        let sids = self.indexed_sids(user_id).await?;
        if sids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = sids.iter().map(|sid| self.session_key(sid)).collect();
        type Fields = (
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<String>,
        );
        let records: Vec<Fields> = self
            .redis
            .run(|mut conn| async move {
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.cmd("HMGET")
                        .arg(key)
                        .arg(&["uid", "created", "used", "abs", "ua"]);
                }
                pipe.query_async(&mut conn).await
            })
            .await?;
        let owner = user_id.to_string();
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for (sid, (uid, created, used, abs, ua)) in sids.iter().zip(records) {
            let session = match (uid, created, used, abs) {
                (Some(uid), Some(created_ms), Some(last_used_ms), Some(abs)) if uid == owner => {
                    SessionInfo {
                        sid: *sid,
                        created_ms,
                        last_used_ms,
                        expires_ms: abs.min(last_used_ms + self.rules.idle_ms),
                        user_agent: ua.unwrap_or_default(),
                    }
                }
                _ => {
                    dead.push(sid.to_string());
                    continue;
                }
            };
            if session.expires_ms > now_ms {
                live.push(session);
            } else {
                dead.push(sid.to_string());
            }
        }
        if !dead.is_empty() {
            self.redis
                .run(|mut conn| async move { conn.zrem::<_, _, ()>(&index, &dead).await })
                .await?;
        }
        live.sort_by_key(|s| std::cmp::Reverse(s.created_ms));
        Ok(live)
    }

    /// Deletes `sid` if `user_id` owns it; returns whether it did. Never reveals whether
    /// a session of someone else exists.
    pub async fn revoke_owned(&self, user_id: &Uuid, sid: &Uuid) -> Result<bool, RedisFailure> {
        let key = self.session_key(sid);
        let owner = user_id.to_string();
        let deleted: i64 = self
            .redis
            .run(|mut conn| async move {
                self.revoke_if_owner
                    .key(&key)
                    .arg(&owner)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let index = self.index_key(user_id);
        let member = sid.to_string();
        self.redis
            .run(|mut conn| async move { conn.zrem::<_, _, ()>(&index, member).await })
            .await?;
        Ok(deleted == 1)
    }

    /// The Redis server's clock, the one every session decision uses.
    async fn redis_now_ms(&self) -> Result<i64, RedisFailure> {
        let (secs, micros): (i64, i64) = self
            .redis
            .run(|mut conn| async move { redis::cmd("TIME").query_async(&mut conn).await })
            .await?;
        Ok(secs * 1000 + micros / 1000)
    }

    /// The owner of a live session, if any: checked before a rotation, so that nothing
    /// after the rotation can fail and lose the successor token.
    pub async fn owner(&self, sid: &Uuid) -> Result<Option<Uuid>, RedisFailure> {
        let key = self.session_key(sid);
        let owner: Option<String> = self
            .redis
            .run(|mut conn| async move { conn.hget(&key, "uid").await })
            .await?;
        Ok(owner.and_then(|o| Uuid::parse_str(&o).ok()))
    }

    /// The session ids in the user's index, live or not.
    async fn indexed_sids(&self, user_id: &Uuid) -> Result<Vec<Uuid>, RedisFailure> {
        let index = self.index_key(user_id);
        let members: Vec<String> = self
            .redis
            .run(|mut conn| async move { conn.zrange(&index, 0, -1).await })
            .await?;
        Ok(members
            .iter()
            .filter_map(|m| Uuid::parse_str(m).ok())
            .collect())
    }

    /// Deletes every session of `user_id`; returns how many there were. Only the index
    /// entries read are removed: a session opened concurrently stays listed (and so stays
    /// revocable) instead of becoming an invisible orphan.
    pub async fn revoke_all(&self, user_id: &Uuid) -> Result<usize, RedisFailure> {
        let index = self.index_key(user_id);
        let sids = self.indexed_sids(user_id).await?;
        if sids.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = sids.iter().map(|sid| self.session_key(sid)).collect();
        let members: Vec<String> = sids.iter().map(Uuid::to_string).collect();
        self.redis
            .run(|mut conn| async move {
                let mut deleted = 0;
                // One DEL per key: the sessions live in different cluster slots.
                for key in &keys {
                    deleted += conn.del::<_, usize>(key).await?;
                }
                let () = conn.zrem(&index, &members).await?;
                Ok(deleted)
            })
            .await
    }

    /// Runs the rotation script for a presented `(sid, generation)`.
    #[tracing::instrument(skip(self))]
    pub async fn rotate(&self, sid: &Uuid, generation: u64) -> Result<Rotation, RedisFailure> {
        let key = self.session_key(sid);
        let rules = &self.rules;
        let reply: Vec<String> = self
            .redis
            .run(|mut conn| async move {
                self.rotate
                    .key(&key)
                    .arg(generation)
                    .arg(rules.grace_ms)
                    .arg(rules.grace_count)
                    .arg(rules.idle_ms)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let rotation = parse_rotation(&reply);
        if let Rotation::Rotated(granted) = &rotation {
            // Keeps the index ordered by last use, for least-recently-used eviction. Best
            // effort: the rotation is done, and failing now would lose its token.
            let index = self.index_key(&granted.user_id);
            let used = reply.get(6).cloned().unwrap_or_default();
            let updated = self
                .redis
                .run(|mut conn| async move {
                    redis::cmd("ZADD")
                        .arg(&index)
                        .arg("XX")
                        .arg(used)
                        .arg(sid.to_string())
                        .exec_async(&mut conn)
                        .await
                })
                .await;
            if let Err(e) = updated {
                tracing::warn!(error = %e, "session index not updated after rotation");
            }
        }
        Ok(rotation)
    }

    /// Deletes a session; returns its owner if it existed.
    pub async fn revoke(&self, sid: &Uuid) -> Result<Option<Uuid>, RedisFailure> {
        let key = self.session_key(sid);
        let (owner,): (Option<String>,) = self
            .redis
            .run(|mut conn| async move {
                redis::pipe()
                    .atomic()
                    .hget(&key, "uid")
                    .del(&key)
                    .ignore()
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let owner = owner.and_then(|o| Uuid::parse_str(&o).ok());
        if let Some(user_id) = owner {
            let index = self.index_key(&user_id);
            let member = sid.to_string();
            self.redis
                .run(|mut conn| async move { conn.zrem::<_, _, ()>(&index, member).await })
                .await?;
        }
        Ok(owner)
    }

    /// Whether Redis answers, for `/readyz`.
    pub async fn ping(&self) -> bool {
        self.redis
            .run(
                |mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await },
            )
            .await
            .is_ok()
    }
}

fn parse_rotation(reply: &[String]) -> Rotation {
    let granted = || -> Option<Granted> {
        Some(Granted {
            generation: reply.get(1)?.parse().ok()?,
            user_id: Uuid::parse_str(reply.get(2)?).ok()?,
            client_id: reply.get(3)?.clone(),
            scope: reply.get(4)?.clone(),
            ttl_ms: reply.get(5)?.parse().ok()?,
        })
    };
    match reply.first().map(String::as_str) {
        Some("rotated") => granted().map_or(Rotation::Refused(Refusal::Unknown), Rotation::Rotated),
        Some("retried") => granted().map_or(Rotation::Refused(Refusal::Unknown), Rotation::Retried),
        Some("expired") => Rotation::Refused(Refusal::Expired),
        Some("grace_exhausted") => Rotation::Refused(Refusal::GraceExhausted),
        Some("reused") => Rotation::Refused(Refusal::Reused {
            user_id: reply.get(1).and_then(|u| Uuid::parse_str(u).ok()),
        }),
        _ => Rotation::Refused(Refusal::Unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store on the real Redis (`AUTH__REDIS__URL` or the default) under a fresh prefix.
    fn store(max_per_user: u32) -> (SessionStore, String) {
        let url =
            std::env::var("AUTH__REDIS__URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("test:{}:", Uuid::new_v4().simple());
        let rules = SessionRules {
            idle_ms: 60_000,
            absolute_ms: 600_000,
            grace_ms: 5_000,
            grace_count: 3,
            max_per_user,
        };
        let store = SessionStore::new(Arc::new(RedisConn::new(&url).unwrap()), &prefix, rules);
        (store, url)
    }

    async fn delete_prefix(url: &str, prefix: &str) {
        let mut conn = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let () = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn sessions_opened_while_all_are_revoked_stay_listed() {
        let (store, url) = store(10_000);
        let user = Uuid::new_v4();
        let new = || NewSession {
            user_id: user,
            client_id: "test",
            scope: "read",
            user_agent: "race",
        };
        for _ in 0..20 {
            store.create(new()).await.unwrap();
        }

        let creates = futures_util::future::join_all((0..200).map(|_| store.create(new())));
        let (created, revoked) = tokio::join!(creates, store.revoke_all(&user));
        revoked.unwrap();

        // Every session that survived the revocation is in the index, so the next
        // logout-all (or the list, or the cap) reaches it.
        let listed: Vec<Uuid> = store
            .live_sessions(&user)
            .await
            .unwrap()
            .iter()
            .map(|s| s.sid)
            .collect();
        for (sid, _) in created.into_iter().map(Result::unwrap) {
            if store.owner(&sid).await.unwrap().is_some() {
                assert!(listed.contains(&sid), "live session {sid} is not indexed");
            }
        }
        store.revoke_all(&user).await.unwrap();
        assert!(store.live_sessions(&user).await.unwrap().is_empty());
        delete_prefix(&url, &store.prefix).await;
    }

    fn tokens() -> RefreshTokens {
        RefreshTokens::new(&[7u8; 32])
    }

    #[test]
    fn a_minted_token_opens_to_its_session_and_generation() {
        let sid = Uuid::new_v4();
        let token = tokens().mint(&sid, 42);
        assert_eq!(tokens().open(&token), Some((sid, 42)));
        // The same inputs give the same token: the basis of the grace window.
        assert_eq!(tokens().mint(&sid, 42), token);
        assert_ne!(tokens().mint(&sid, 43), token);
        // ≥ 256 bits of MAC, URL-safe.
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn tampered_or_foreign_tokens_do_not_open() {
        let sid = Uuid::new_v4();
        let token = tokens().mint(&sid, 1);
        let mut tampered = token.clone().into_bytes();
        tampered[30] = if tampered[30] == b'A' { b'B' } else { b'A' };
        assert_eq!(tokens().open(&String::from_utf8(tampered).unwrap()), None);
        assert_eq!(RefreshTokens::new(&[8u8; 32]).open(&token), None);
        assert_eq!(tokens().open(""), None);
        assert_eq!(tokens().open(&"A".repeat(10_000)), None);
        assert_eq!(tokens().open("not a token"), None);
    }
}
