//! The verified-token cache: a service that sees the same access token on request after
//! request (every client sends its token until it expires) pays for the RSA check once.
//!
//! What makes it safe to skip the signature on a hit:
//! * the key is the SHA-256 of the *whole* token, so a hit means these exact bytes —
//!   header, claims and signature — passed every rule before; nothing about a token can
//!   be changed without missing;
//! * only tokens that passed full verification are stored, never failures;
//! * an entry lives no longer than its token's `exp`, and the verifier re-checks the
//!   claims against the clock on every hit anyway (`exp`, `nbf`, `iat`), so an expired
//!   token is refused whatever the cache holds;
//! * each entry remembers the `kid` that verified it: when a key leaves the key set its
//!   entries are dropped, and a hit whose key is no longer trusted is treated as a miss;
//! * the cache is bounded by count (moka, TinyLFU admission, so a flood of one-off
//!   tokens cannot push out the tokens in use);
//! * a token is stored the second time it verifies, not the first: a token presented
//!   once (a client that logs in, calls once and leaves, or a flood of fresh tokens)
//!   costs no insertion and no memory, while a token in use is cached from its second
//!   request on. Which tokens were seen once is a fixed array of fingerprints
//!   ([`SeenOnce`]), so that memory is bounded too.
//!
//! DPoP proofs are never cached here: a bound token still needs a fresh proof on every
//! request; only the token's own verification is remembered.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use moka::Expiry;
use moka::sync::Cache;

use crate::claims::AccessClaims;
use crate::protocol::{Clock as _, SystemClock};

/// SHA-256 of a whole compact token.
pub(crate) type TokenDigest = [u8; 32];

/// SHA-256 of a token's first `len` bytes, its signing input.
pub(crate) struct SigningInputDigest {
    /// How many of the token's bytes it covers.
    pub(crate) len: usize,
    /// SHA-256 of them, for `VerifyingKey::verifies_digest`.
    pub(crate) digest: digest::Digest,
}

/// A token that passed full verification.
#[derive(Debug)]
pub(crate) struct Verified {
    /// The key that verified it; the entry is void once that key is withdrawn.
    pub(crate) kid: String,
    /// Its claims, handed out again (shared, not copied) on every hit after the clock
    /// checks.
    pub(crate) claims: Arc<AccessClaims>,
    /// How long the entry may live: until the token's `exp`, measured at insertion.
    lifetime: Duration,
}

/// Each entry expires at its token's `exp`.
struct UntilExpiry;

impl Expiry<TokenDigest, Arc<Verified>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _: &TokenDigest,
        verified: &Arc<Verified>,
        _: Instant,
    ) -> Option<Duration> {
        Some(verified.lifetime)
    }
}

/// Hashes a [`TokenDigest`] by taking 8 of its bytes: they are already uniformly
/// distributed SHA-256 output, so running them through SipHash again (the default, paid
/// on every lookup and insert) would buy nothing. Only tokens that passed verification
/// are ever inserted, so nobody can fill a bucket with chosen keys.
#[derive(Debug, Clone, Copy, Default)]
struct DigestHash;

/// The state of [`DigestHash`]: the digest's first eight bytes, mixed with the length
/// prefix the standard `Hash` of an array writes first.
#[derive(Debug, Default)]
struct DigestHasher(u64);

impl BuildHasher for DigestHash {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Fingerprints of tokens that verified once and are not cached yet: the admission
/// door of [`VerifiedTokens`] ("doorkeeper" in the TinyLFU paper's terms).
///
/// Each digest has one slot, chosen by some of its bits, holding a fingerprint taken from
/// others. Recording a token overwrites whatever the slot held, so a burst of one-off
/// tokens can push a token out before its second request; that token is then verified in
/// full once more, which is only slower, never wrong. A fingerprint collision (2^-63)
/// would cache a token on its first verification, which is equally safe: only tokens that
/// passed every rule reach this point.
struct SeenOnce {
    slots: Box<[AtomicU64]>,
}

impl SeenOnce {
    /// Room for `slots` fingerprints (at least one), 8 bytes each.
    fn new(slots: usize) -> Self {
        Self {
            slots: (0..slots.max(1)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Records `digest`; returns whether it was the last one recorded in its slot, that
    /// is, whether this token verified before.
    fn seen_before(&self, digest: &TokenDigest) -> bool {
        let word = |at: usize| {
            let mut bytes = [0; 8];
            bytes.copy_from_slice(&digest[at..at + 8]);
            u64::from_le_bytes(bytes)
        };
        // Never 0, the value of an empty slot.
        let fingerprint = word(8) | 1;
        // The slot count is far below 2^64, so the index fits a usize.
        let slot = (word(16) % self.slots.len() as u64) as usize;
        self.slots[slot].swap(fingerprint, Ordering::Relaxed) == fingerprint
    }
}

/// Slots of [`SeenOnce`] per cache entry: one-off tokens at several times the cache's
/// size are needed to push out a token before its second request.
const SEEN_ONCE_SLOTS_PER_ENTRY: u64 = 4;

/// The most [`SeenOnce`] slots (8 MiB): a huge `cache.max_entries` does not allocate an
/// array in proportion.
const MAX_SEEN_ONCE_SLOTS: u64 = 1 << 20;

/// A bounded map from token digest to verified claims; clones share the entries.
#[derive(Clone)]
pub(crate) struct VerifiedTokens {
    entries: Cache<TokenDigest, Arc<Verified>, DigestHash>,
    seen_once: Arc<SeenOnce>,
}

impl std::fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedTokens")
            .field("max_entries", &self.entries.policy().max_capacity())
            .finish()
    }
}

impl VerifiedTokens {
    /// A cache of at most `max_entries` tokens (moka applies the bound in its maintenance
    /// steps, which run on the callers' threads as entries come in).
    pub(crate) fn new(max_entries: u64) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(UntilExpiry)
                .support_invalidation_closures()
                .build_with_hasher(DigestHash),
            seen_once: Arc::new(SeenOnce::new(
                usize::try_from(
                    max_entries
                        .saturating_mul(SEEN_ONCE_SLOTS_PER_ENTRY)
                        .min(MAX_SEEN_ONCE_SLOTS),
                )
                .unwrap_or(usize::MAX),
            )),
        }
    }

    /// The cache key of `token`, and from the same pass over its bytes the SHA-256 of its
    /// signing input (everything before the last `.`, what an RS256 signature covers), so
    /// that a miss does not hash the token's first kilobyte twice.
    pub(crate) fn digests(token: &str) -> (TokenDigest, Option<SigningInputDigest>) {
        let mut key = [0; 32];
        let Some(dot) = token.rfind('.') else {
            key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
            return (key, None);
        };
        let mut whole = digest::Context::new(&digest::SHA256);
        whole.update(&token.as_bytes()[..dot]);
        let signing_input = whole.clone();
        whole.update(&token.as_bytes()[dot..]);
        key.copy_from_slice(whole.finish().as_ref());
        (
            key,
            Some(SigningInputDigest {
                len: dot,
                digest: signing_input.finish(),
            }),
        )
    }

    /// The cache key alone.
    #[cfg(test)]
    pub(crate) fn digest(token: &str) -> TokenDigest {
        Self::digests(token).0
    }

    /// The entry for a digest, if the token verified before and has not expired since.
    pub(crate) fn get(&self, digest: &TokenDigest) -> Option<Arc<Verified>> {
        self.entries.get(digest)
    }

    /// Remembers a token that just passed full verification with key `kid`, if it did so
    /// before (the first time only its fingerprint is kept). A token at or past its `exp`
    /// is not stored: it is only still accepted within the leeway.
    pub(crate) fn remember(&self, digest: TokenDigest, kid: &str, claims: &Arc<AccessClaims>) {
        if !self.seen_once.seen_before(&digest) {
            return;
        }
        let Some(lifetime) = until(claims.exp) else {
            return;
        };
        self.entries.insert(
            digest,
            Arc::new(Verified {
                kid: kid.to_owned(),
                claims: Arc::clone(claims),
                lifetime,
            }),
        );
    }

    /// Drops every entry verified by one of `kids`, keys that left the key set.
    pub(crate) fn forget_keys(&self, kids: Vec<String>) {
        if kids.is_empty() {
            return;
        }
        // Only fails when invalidation closures are not enabled, and `new` enables them;
        // should it fail anyway, emptying the whole cache is the safe fallback.
        if self
            .entries
            .invalidate_entries_if(move |_, verified| kids.contains(&verified.kid))
            .is_err()
        {
            self.entries.invalidate_all();
        }
    }

    /// How many entries there are once pending maintenance has run.
    pub(crate) fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

/// The time left until `exp` (seconds since the Unix epoch), if any, by the system
/// clock: only when to evict, as every hit checks the claims again against the
/// verifier's clock.
fn until(exp: i64) -> Option<Duration> {
    let now = u64::try_from(SystemClock.now_ms()).ok()?;
    let exp = u64::try_from(exp).ok()?.checked_mul(1000)?;
    exp.checked_sub(now)
        .filter(|left| *left > 0)
        .map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "https://issuer.test".into(),
            sub: uuid::Uuid::new_v4(),
            aud: "resource-service".into(),
            exp,
            iat: exp - 300,
            nbf: exp - 300,
            jti: uuid::Uuid::new_v4(),
            sid: uuid::Uuid::new_v4(),
            client_id: "client-cli".into(),
            scope: "read".into(),
            roles: vec!["user".into()],
            preferred_username: "alice".into(),
            cnf: None,
        })
    }

    fn now() -> i64 {
        SystemClock.now_secs()
    }

    /// Verifications of the same token, twice: what gets a token into the cache.
    fn admit(cache: &VerifiedTokens, digest: TokenDigest, kid: &str, claims: &Arc<AccessClaims>) {
        cache.remember(digest, kid, claims);
        cache.remember(digest, kid, claims);
    }

    #[test]
    fn a_token_is_stored_on_its_second_verification_not_its_first() {
        let cache = VerifiedTokens::new(100);
        let claims = claims(now() + 300);
        let digest = VerifiedTokens::digest("a.b.c");

        cache.remember(digest, "kid", &claims);
        assert!(cache.get(&digest).is_none());
        assert_eq!(cache.len(), 0);

        cache.remember(digest, "kid", &claims);
        assert!(cache.get(&digest).is_some());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn tokens_verified_once_take_no_entries() {
        let cache = VerifiedTokens::new(1_000);
        let claims = claims(now() + 300);

        for i in 0..100_000u32 {
            let token = format!("header.payload-{i}.signature");
            cache.remember(VerifiedTokens::digest(&token), "kid", &claims);
        }

        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_door_array_is_bounded_whatever_the_cache_size() {
        assert_eq!(VerifiedTokens::new(0).seen_once.slots.len(), 1);
        assert_eq!(VerifiedTokens::new(10).seen_once.slots.len(), 40);
        assert_eq!(VerifiedTokens::new(u64::MAX).seen_once.slots.len(), 1 << 20);
    }

    #[test]
    fn the_cache_never_grows_past_its_bound_under_100_000_distinct_tokens() {
        let cache = VerifiedTokens::new(1_000);
        let claims = claims(now() + 300);

        for i in 0..100_000u32 {
            let token = format!("header.payload-{i}.signature");
            admit(&cache, VerifiedTokens::digest(&token), "kid", &claims);
            if i % 5_000 == 4_999 {
                assert!(cache.len() <= 1_000, "{} entries after {i}", cache.len());
            }
        }

        let len = cache.len();
        assert!(len <= 1_000, "{len} entries");
        assert!(len > 0, "the cache holds something");
    }

    #[test]
    fn one_pass_gives_the_digests_of_the_token_and_of_its_signing_input() {
        let sha256 = |bytes: &str| {
            let mut out = [0; 32];
            out.copy_from_slice(digest::digest(&digest::SHA256, bytes.as_bytes()).as_ref());
            out
        };
        let (whole, signing_input) = VerifiedTokens::digests("head.body.sig");
        assert_eq!(whole, sha256("head.body.sig"));
        let signing_input = signing_input.unwrap();
        assert_eq!(signing_input.len, "head.body".len());
        assert_eq!(signing_input.digest.as_ref(), sha256("head.body"));
        let (whole, signing_input) = VerifiedTokens::digests("no-dots");
        assert_eq!(whole, sha256("no-dots"));
        assert!(signing_input.is_none());
    }

    #[test]
    fn digests_hash_to_their_own_bits() {
        let a = DigestHash.hash_one(VerifiedTokens::digest("a.b.c"));
        let b = DigestHash.hash_one(VerifiedTokens::digest("a.b.d"));
        assert_ne!(a, b);
        assert_eq!(a, DigestHash.hash_one(VerifiedTokens::digest("a.b.c")));
    }

    #[test]
    fn a_token_is_found_by_its_exact_bytes_only() {
        let cache = VerifiedTokens::new(100);
        admit(
            &cache,
            VerifiedTokens::digest("a.b.c"),
            "kid",
            &claims(now() + 300),
        );

        assert!(cache.get(&VerifiedTokens::digest("a.b.c")).is_some());
        assert!(cache.get(&VerifiedTokens::digest("a.b.d")).is_none());
    }

    #[test]
    fn a_token_at_or_past_its_expiry_is_not_stored() {
        let cache = VerifiedTokens::new(100);
        admit(
            &cache,
            VerifiedTokens::digest("old"),
            "kid",
            &claims(now() - 1),
        );
        admit(&cache, VerifiedTokens::digest("now"), "kid", &claims(now()));

        assert!(cache.get(&VerifiedTokens::digest("old")).is_none());
        assert!(cache.get(&VerifiedTokens::digest("now")).is_none());
    }

    #[test]
    fn an_entry_does_not_outlive_its_token() {
        let cache = VerifiedTokens::new(100);
        admit(
            &cache,
            VerifiedTokens::digest("short"),
            "kid",
            &claims(now() + 1),
        );
        assert!(cache.get(&VerifiedTokens::digest("short")).is_some());

        std::thread::sleep(Duration::from_millis(2_100));

        assert!(cache.get(&VerifiedTokens::digest("short")).is_none());
    }

    #[test]
    fn entries_of_a_withdrawn_key_are_dropped_and_the_others_kept() {
        let cache = VerifiedTokens::new(100);
        admit(
            &cache,
            VerifiedTokens::digest("by-old"),
            "old",
            &claims(now() + 300),
        );
        admit(
            &cache,
            VerifiedTokens::digest("by-new"),
            "new",
            &claims(now() + 300),
        );

        cache.forget_keys(vec!["old".into()]);

        assert!(cache.get(&VerifiedTokens::digest("by-old")).is_none());
        assert!(cache.get(&VerifiedTokens::digest("by-new")).is_some());
    }
}
