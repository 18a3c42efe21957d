//! The session store in Redis: sessions as hashes changed only by the scripts of
//! `scripts/`, and the per-user index (see the module documentation of [`super`]).

use std::sync::Arc;
use std::time::Duration;

use redis::{AsyncCommands as _, Script};
use uuid::Uuid;

use super::{NewSession, Refusal, Rotation, RotationId, SessionInfo, SessionRules};
use shared_claims::protocol::SharedClock;

use crate::redis_conn::{Attempt, RedisConn, RedisFailure};

/// The clock prelude every session script starts with.
const CLOCK: &str = include_str!("scripts/clock.lua");

/// How long the service keeps trying to record a lost rotation reply in Redis.
const MARK_LOST_FOR: Duration = Duration::from_secs(30);

/// The session store.
pub struct SessionStore {
    redis: Arc<RedisConn>,
    prefix: String,
    rules: SessionRules,
    create: Script,
    rotate: Script,
    mark_lost: Script,
    revoke_if_owner: Script,
    revoke_with_key: Script,
    /// Rotations whose reply this instance did not receive, by session: the presented
    /// generation and the id of the request that sent it. The retry of the same token is
    /// recovered here even before the mark reaches Redis, and only if that very request
    /// made the current generation.
    lost_replies: moka::sync::Cache<Uuid, (u64, RotationId)>,
    /// Only its offset is used: the scripts decide on the Redis server's clock, shifted
    /// by it (0 in production; tests move it forward).
    clock: SharedClock,
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
    pub fn new(
        redis: Arc<RedisConn>,
        prefix: &str,
        rules: SessionRules,
        clock: SharedClock,
    ) -> Self {
        let lost_for = Duration::from_millis(u64::try_from(rules.idle_ms).unwrap_or(0))
            .clamp(MARK_LOST_FOR, Duration::from_secs(24 * 3600));
        Self {
            redis,
            prefix: prefix.to_owned(),
            rules,
            create: Script::new(&format!("{CLOCK}{}", include_str!("scripts/create.lua"))),
            rotate: Script::new(&format!(
                "{CLOCK}{}{}",
                include_str!("scripts/decide.lua"),
                include_str!("scripts/rotate.lua")
            )),
            mark_lost: Script::new(include_str!("scripts/mark_lost.lua")),
            revoke_if_owner: Script::new(include_str!("scripts/revoke_if_owner.lua")),
            revoke_with_key: Script::new(include_str!("scripts/revoke_with_key.lua")),
            lost_replies: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(lost_for)
                .build(),
            clock,
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
    ///
    /// Safe to retry after a closed connection: the session id is chosen before the first
    /// run, and nobody holds a token of it yet, so a second run writes the same fresh
    /// session (generation 0) and the same index entry again, never a second session.
    #[tracing::instrument(skip(self, new), fields(user_id = %new.user_id))]
    /// Also returns how many sessions the cap evicted.
    pub async fn create(&self, new: NewSession<'_>) -> Result<(Uuid, i64, usize), RedisFailure> {
        let sid = Uuid::new_v4();
        let key = self.session_key(&sid);
        let index = self.index_key(&new.user_id);
        let user_agent: String = new.user_agent.chars().take(256).collect();
        let rules = &self.rules;
        let offset_ms = self.clock.offset_ms();
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
                    .arg(new.epoch)
                    .arg(new.jkt.unwrap_or(""))
                    .arg(offset_ms)
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
        let evicted = if live > self.rules.max_per_user as usize {
            self.enforce_cap(&new.user_id).await?
        } else {
            0
        };
        Ok((sid, ttl_ms, evicted))
    }

    /// Evicts the least recently used live sessions until the cap holds; returns how many.
    async fn enforce_cap(&self, user_id: &Uuid) -> Result<usize, RedisFailure> {
        let mut live = self.live_sessions(user_id).await?;
        let excess = live.len().saturating_sub(self.rules.max_per_user as usize);
        if excess == 0 {
            return Ok(0);
        }
        live.sort_by_key(|s| s.last_used_ms);
        tracing::info!(
            target: "audit",
            event = "session_revoked",
            cause = "session_cap",
            %user_id,
            evicted = excess,
            "session cap reached; evicting the least recently used"
        );
        for session in live.iter().take(excess) {
            self.revoke_owned(user_id, &session.sid).await?;
        }
        Ok(excess)
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
    ///
    /// Retried after a closed connection (deleting twice deletes once); in the rare case
    /// that the first run deleted the session and its reply was lost, the answer is
    /// `false` although the session is gone, which is what the caller wanted.
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
        Ok(secs * 1000 + micros / 1000 + self.clock.offset_ms())
    }

    /// The owner of a live session, if it is one.
    async fn owner(&self, sid: &Uuid) -> Result<Option<Uuid>, RedisFailure> {
        let key = self.session_key(sid);
        let owner: Option<String> = self
            .redis
            .run(|mut conn| async move {
                redis::cmd("HGET")
                    .arg(&key)
                    .arg("uid")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(owner.and_then(|o| Uuid::parse_str(&o).ok()))
    }

    /// Whether `sid` is a live session of `user_id`: access tokens outlive their session,
    /// and the calls that manage sessions must not.
    pub async fn is_live(&self, user_id: &Uuid, sid: &Uuid) -> Result<bool, RedisFailure> {
        Ok(self.owner(sid).await? == Some(*user_id))
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

    /// Runs the rotation script for a presented `(sid, generation)`, as request `rid`.
    ///
    /// When the call fails in a way that may have let the script run (a timeout, a dropped
    /// connection), the successor may exist with nobody holding it; the client will retry
    /// with the same token, which must not count as reuse. So the failure is remembered
    /// here at once and recorded on the session in Redis as soon as Redis answers, both
    /// tied to `rid`: only a generation this request made is ever recovered.
    ///
    /// A cached connection found closed is retried once on a fresh one, and that retry
    /// is safe for the same reason: it passes its own `rid` as the hint, so the script
    /// answers `recovered` (the successor the first run made) if the first run happened,
    /// and decides as usual if it did not. Either way exactly one successor exists and
    /// the client receives it; our own first run is never counted as reuse.
    #[tracing::instrument(skip(self, rid))]
    pub async fn rotate(
        self: &Arc<Self>,
        sid: &Uuid,
        generation: u64,
        proof_jkt: Option<&str>,
        rid: &RotationId,
    ) -> Result<Rotation, RedisFailure> {
        let key = &self.session_key(sid);
        let rules = &self.rules;
        let offset_ms = self.clock.offset_ms();
        let lost = self.lost_replies.get(sid);
        let had_lost_reply = lost.is_some();
        let remembered = lost
            .filter(|(lost, _)| *lost == generation)
            .map(|(_, lost_rid)| lost_rid);
        let reply: Result<Vec<String>, RedisFailure> = self
            .redis
            .run_with_retry(|mut conn, attempt| {
                let hint = match (&remembered, attempt) {
                    (_, Attempt::Retry) => rid.as_str().to_owned(),
                    (Some(lost), Attempt::First) => lost.as_str().to_owned(),
                    (None, Attempt::First) => String::new(),
                };
                async move {
                    self.rotate
                        .key(key)
                        .arg(generation)
                        .arg(rules.grace_ms)
                        .arg(rules.grace_count)
                        .arg(rules.idle_ms)
                        .arg(hint)
                        .arg(proof_jkt.unwrap_or(""))
                        .arg(rid.as_str())
                        .arg(offset_ms)
                        .invoke_async(&mut conn)
                        .await
                }
            })
            .await;
        match reply {
            Ok(reply) => {
                // Answered: whatever was lost before is settled for this instance.
                if had_lost_reply {
                    self.lost_replies.invalidate(sid);
                }
                Ok(Rotation::from_reply(&reply))
            }
            Err(failure) => {
                if failure.outcome_unknown() {
                    self.remember_lost_reply(*sid, generation, rid);
                }
                Err(failure)
            }
        }
    }

    /// Remembers that the rotation away from `generation` by request `rid` may have
    /// happened unseen, and records it on the session in the background until Redis
    /// takes it (or gives up after [`MARK_LOST_FOR`]); Redis marks it only if `rid` made
    /// the current generation. Also for a rotation that happened but whose answer the
    /// service could not complete (the user store failed right after it): the client's
    /// retry of the same token then gets the same successor.
    pub fn remember_lost_reply(self: &Arc<Self>, sid: Uuid, generation: u64, rid: &RotationId) {
        self.lost_replies.insert(sid, (generation, rid.clone()));
        let store = Arc::clone(self);
        let rid = rid.clone();
        tokio::spawn(async move {
            let key = store.session_key(&sid);
            let deadline = tokio::time::Instant::now() + MARK_LOST_FOR;
            let mut delay = Duration::from_millis(100);
            while tokio::time::Instant::now() < deadline {
                let marked = store
                    .redis
                    .run(|mut conn| {
                        let key = key.clone();
                        let store = Arc::clone(&store);
                        let rid = rid.clone();
                        async move {
                            store
                                .mark_lost
                                .key(&key)
                                .arg(generation)
                                .arg(rid.as_str())
                                .invoke_async::<i64>(&mut conn)
                                .await
                        }
                    })
                    .await;
                match marked {
                    Ok(marked) => {
                        tracing::info!(
                            %sid,
                            marked = marked == 1,
                            "a rotation reply may have been lost; its retry will be recovered"
                        );
                        return;
                    }
                    Err(_) => {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(2));
                    }
                }
            }
            tracing::warn!(%sid, "could not record a lost rotation reply in Redis");
        });
    }

    /// Deletes a session; returns its owner if it existed.
    ///
    /// Retried after a closed connection: if the first run deleted the session, the
    /// second finds no owner, and the index entry left behind is pruned by its readers.
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

    /// Ends a session for the holder of its refresh token (logout, revocation): refused
    /// with [`Refusal::WrongKey`] when the session is bound to a DPoP key that
    /// `proof_jkt` is not. Returns the owner if a session was ended.
    pub async fn revoke_with_key(
        &self,
        sid: &Uuid,
        proof_jkt: Option<&str>,
    ) -> Result<Result<Option<Uuid>, Refusal>, RedisFailure> {
        let key = self.session_key(sid);
        let reply: Vec<String> = self
            .redis
            .run(|mut conn| async move {
                self.revoke_with_key
                    .key(&key)
                    .arg(proof_jkt.unwrap_or(""))
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let owner = match reply.first().map(String::as_str) {
            Some("wrong_key") => return Ok(Err(Refusal::WrongKey)),
            Some("revoked") => reply.get(1).and_then(|o| Uuid::parse_str(o).ok()),
            _ => None,
        };
        if let Some(user_id) = owner {
            let index = self.index_key(&user_id);
            let member = sid.to_string();
            self.redis
                .run(|mut conn| async move { conn.zrem::<_, _, ()>(&index, member).await })
                .await?;
        }
        Ok(Ok(owner))
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
        let store = SessionStore::new(
            Arc::new(RedisConn::new(&url).unwrap()),
            &prefix,
            rules,
            shared_claims::protocol::SystemClock::shared(),
        );
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
    async fn only_the_request_that_made_a_generation_can_mark_its_reply_lost() {
        let (store, url) = store(10);
        let store = Arc::new(store);
        let user = Uuid::new_v4();
        let (sid, _, _) = store
            .create(NewSession {
                user_id: user,
                epoch: 0,
                jkt: None,
                client_id: "test",
                scope: "read",
                user_agent: "lost",
            })
            .await
            .unwrap();
        let mine = RotationId::new();
        assert!(matches!(
            store.rotate(&sid, 0, None, &mine).await.unwrap(),
            Rotation::Rotated(_)
        ));
        let mark = |generation: u64, rid: RotationId| {
            let store = Arc::clone(&store);
            let key = store.session_key(&sid);
            let url = url.clone();
            async move {
                let mut conn = redis::Client::open(url)
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap();
                store
                    .mark_lost
                    .key(&key)
                    .arg(generation)
                    .arg(rid.as_str())
                    .invoke_async::<i64>(&mut conn)
                    .await
                    .unwrap()
            }
        };

        // Another request (a thief's, a retry that did not rotate) cannot mark it...
        assert_eq!(mark(0, RotationId::new()).await, 0);
        // ...the one that rotated can.
        assert_eq!(mark(0, mine.clone()).await, 1);

        delete_prefix(&url, &store.prefix).await;
    }

    #[tokio::test]
    async fn sessions_opened_while_all_are_revoked_stay_listed() {
        let (store, url) = store(10_000);
        let user = Uuid::new_v4();
        let new = || NewSession {
            user_id: user,
            epoch: 0,
            jkt: None,
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
        for (sid, _, _) in created.into_iter().map(Result::unwrap) {
            if store.owner(&sid).await.unwrap().is_some() {
                assert!(listed.contains(&sid), "live session {sid} is not indexed");
            }
        }
        store.revoke_all(&user).await.unwrap();
        assert!(store.live_sessions(&user).await.unwrap().is_empty());
        delete_prefix(&url, &store.prefix).await;
    }
}
