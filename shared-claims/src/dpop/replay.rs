//! Remembers the DPoP proofs one process has accepted, so that a captured request cannot
//! be replayed against it (RFC 9449 §11.1).
//!
//! The memory is per process: with several instances behind a load balancer, a proof
//! accepted by one can be replayed once against each other instance within its window.
//! What stays true everywhere is that the replay needs the exact request (same method,
//! URL and access token) within `proof_max_age_secs`, so the window is what bounds the
//! harm. A deployment that needs strict single use across instances needs a shared store
//! (the auth-service keeps its proofs in Redis).
//!
//! The cache is bounded: when more distinct proofs arrive within the window than it can
//! hold, the least recently seen are forgotten first (those nearest to expiry), and
//! those could be replayed until their `iat` window closes. Only proofs that passed every
//! check, with a token bound to their key, are ever stored, so filling it takes valid
//! tokens.

use std::time::{Duration, Instant};

use moka::Expiry;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use super::VerifiedProof;

/// A bounded, expiring set of `(jkt, jti)` pairs; clones share the same set.
#[derive(Clone)]
pub struct ReplayCache {
    /// SHA-256 of `jkt` and `jti` (32 bytes whatever the `jti`), with how long to keep it.
    seen: Cache<[u8; 32], Duration>,
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayCache")
            .field("max_entries", &self.seen.policy().max_capacity())
            .finish()
    }
}

/// Each entry lives exactly as long as its proof could pass the `iat` check.
struct UntilUnusable;

impl Expiry<[u8; 32], Duration> for UntilUnusable {
    fn expire_after_create(&self, _: &[u8; 32], ttl: &Duration, _: Instant) -> Option<Duration> {
        Some(*ttl)
    }
}

impl ReplayCache {
    /// A cache holding at most about `max_entries` proofs (moka enforces the bound
    /// eventually, not on every insert).
    pub fn new(max_entries: u64) -> Self {
        Self {
            seen: Cache::builder()
                .max_capacity(max_entries)
                // LRU always admits a new proof; TinyLFU, moka's default, may refuse to,
                // which would leave that proof replayable.
                .eviction_policy(EvictionPolicy::lru())
                .expire_after(UntilUnusable)
                .build(),
        }
    }

    /// Records `proof` and says whether this is its first use, as one atomic step: of
    /// two concurrent requests with the same proof, exactly one gets `true`.
    pub fn first_use(&self, proof: &VerifiedProof, now_secs: i64) -> bool {
        let remaining = proof
            .usable_until
            .saturating_sub(now_secs)
            .saturating_add(1);
        let ttl = Duration::from_secs(u64::try_from(remaining).unwrap_or(0).max(1));
        // `or_insert_with`, not `or_insert`: moka coalesces concurrent initialisations of
        // one key only on the former, so only there do two racing callers never both see
        // a fresh entry.
        self.seen
            .entry(key(proof))
            .or_insert_with(|| ttl)
            .is_fresh()
    }

    /// How many proofs are remembered (approximate until pending evictions have run).
    pub fn len(&self) -> u64 {
        self.seen.run_pending_tasks();
        self.seen.entry_count()
    }

    /// Whether no proof is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `jkt` is base64url, so a NUL cannot occur in it and the pair is unambiguous.
fn key(proof: &VerifiedProof) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(proof.jkt.as_bytes());
    ctx.update(&[0]);
    ctx.update(proof.jti.as_bytes());
    let mut key = [0; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn verified(jkt: &str, jti: &str, usable_until: i64) -> VerifiedProof {
        VerifiedProof {
            jkt: jkt.into(),
            jti: jti.into(),
            iat: usable_until - 60,
            usable_until,
        }
    }

    #[test]
    fn the_replay_cache_accepts_each_proof_once() {
        let cache = ReplayCache::new(100);
        let proof = verified("key-a", "1", NOW + 60);

        assert!(cache.first_use(&proof, NOW));
        assert!(!cache.first_use(&proof, NOW + 30));
        assert!(cache.first_use(&verified("key-a", "2", NOW + 60), NOW));
        assert!(cache.first_use(&verified("key-b", "1", NOW + 60), NOW));
    }

    #[test]
    fn of_concurrent_first_uses_exactly_one_wins() {
        let cache = std::sync::Arc::new(ReplayCache::new(10_000));
        for round in 0..200 {
            let proof = verified("key", &round.to_string(), NOW + 60);
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
            let winners: usize = (0..4)
                .map(|_| {
                    let (cache, proof, barrier) = (cache.clone(), proof.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        cache.first_use(&proof, NOW)
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| usize::from(t.join().unwrap()))
                .sum();
            assert_eq!(winners, 1, "round {round}");
        }
    }

    #[test]
    fn the_replay_cache_stays_bounded() {
        let cache = ReplayCache::new(50);

        for i in 0..1000 {
            assert!(cache.first_use(&verified("key", &i.to_string(), NOW + 60), NOW));
        }

        assert!(cache.len() <= 50, "{} entries", cache.len());
        assert!(!cache.first_use(&verified("key", "999", NOW + 60), NOW));
    }

    #[test]
    fn the_replay_cache_forgets_a_proof_once_it_is_unusable() {
        let cache = ReplayCache::new(100);
        // Usable until this very second: remembered for one more second only.
        let proof = verified("key", "1", NOW);
        assert!(cache.first_use(&proof, NOW));

        std::thread::sleep(std::time::Duration::from_millis(1200));

        assert!(cache.is_empty());
    }
}
