//! The verification rules every verifier applies (`docs/ARCHITECTURE.md` § Tokens).
//!
//! The order matters: cheap structural checks first (size, shape, header), so that
//! garbage, `alg: none`, HMAC-with-the-public-key and self-keyed tokens are refused before
//! any key is looked up; then the RS256 signature with a key chosen by `kid` from our own
//! key set; then the claims (exp, nbf, iss, aud, iat).
//!
//! Every part of a token is decoded once: the header into the few members the rules look
//! at, the signature straight into the RSA check, the claims straight into
//! [`AccessClaims`]. The algorithm is fixed (RS256, RSASSA-PKCS1-v1_5 with SHA-256, 2048
//! to 8192 bits; [`key`]), never read from the token, and each trusted key is parsed
//! once, when the key set is built. A token that passed is remembered in a bounded
//! [`cache`] keyed by its SHA-256, so that the RSA check is paid once per token rather
//! than once per request; the claims are checked against the clock on every hit.

mod cache;
mod key;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::claims::{ACCESS_TOKEN_TYPE, AccessClaims};
use crate::jwk::{JwkSet, RsaPublicKey};
use crate::protocol::{SharedClock, SystemClock};
use cache::{SigningInputDigest, VerifiedTokens};
pub use key::VerifyingKey;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Verified tokens a [`Verifier`] remembers unless told otherwise (`cache.max_entries`):
/// about 10 MB at the size of our tokens' claims.
pub const DEFAULT_CACHE_ENTRIES: u64 = 10_000;

/// Header parameters that would let a token bring its own key (RFC 8725 §3.10, RFC 7515
/// §4.1.2–4.1.6). We only ever trust keys from our own key set, so a token naming one is
/// refused outright instead of being silently half-trusted.
const KEY_BEARING_HEADERS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];

/// What a verifier must know: who issues tokens, who they are for, and the clock slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierSettings {
    /// Expected `iss` (`jwt.issuer`).
    pub issuer: String,
    /// Expected `aud` (`jwt.audience`).
    pub audience: String,
    /// Seconds of clock skew tolerated on `exp`, `nbf` and `iat` (`jwt.leeway_secs`).
    pub leeway_secs: u64,
}

/// Why a token was refused; the `Display` text is safe to send to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No bearer token was presented at all.
    #[error("no access token was presented")]
    Missing,
    /// Above [`MAX_TOKEN_BYTES`].
    #[error("the token is larger than 8192 bytes")]
    TooLarge,
    /// Not three base64url segments, or a segment that does not decode.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// `alg` is anything but `RS256` (including `none` and HMAC).
    #[error("the token is not signed with RS256")]
    UnsupportedAlgorithm,
    /// `typ` is not `at+jwt`.
    #[error("the token's typ is not at+jwt")]
    WrongType,
    /// The header tries to supply its own key.
    #[error("the token's header carries a {0} parameter, which is never accepted")]
    KeyInHeader(&'static str),
    /// The header lists critical extensions, none of which we support.
    #[error("the token's header has a crit parameter, which is not supported")]
    CriticalHeader,
    /// No `kid` in the header.
    #[error("the token's header names no key (kid)")]
    MissingKeyId,
    /// `kid` names no key we know.
    #[error("the token was signed with an unknown key")]
    UnknownKeyId,
    /// The signature does not verify with the named key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    #[error("the token was issued in the future")]
    IssuedInFuture,
    /// `iss` is not our issuer.
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    /// `aud` is not our audience.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// A claim is missing or has the wrong type (for example `exp` as a string).
    #[error("the token's claims are missing or malformed")]
    InvalidClaims,
}

/// What the verified-token cache did for one verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup {
    /// The token had verified before: only the clock-dependent claims were checked.
    Hit,
    /// Not in the cache (or its key was withdrawn): every rule was applied.
    Miss,
    /// No cache lookup: the cache is off, or the token was refused before it (size).
    NotConsulted,
}

/// Verification keys by `kid`, each parsed once; replaced as a whole when the key source
/// changes.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, VerifyingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeySet {
    /// A key set holding `keys`, each under its RFC 7638 thumbprint (a key the RSA
    /// library cannot parse is left out: see [`VerifyingKey::new`]).
    pub fn from_public_keys<'a>(keys: impl IntoIterator<Item = &'a RsaPublicKey>) -> Self {
        let keys = keys
            .into_iter()
            .filter_map(|k| Some((k.thumbprint(), VerifyingKey::new(k)?)))
            .collect();
        Self { keys }
    }

    /// The usable RS256 keys of a JWK Set, and how many were skipped.
    ///
    /// A key is skipped when it is not an RSA signing key for RS256, is shorter than
    /// 2048 bits, or its `kid` is not its own thumbprint: the `kid` is recomputed, never
    /// trusted, so a JWKS cannot alias one key under another's id.
    pub fn from_jwks(set: &JwkSet) -> (Self, usize) {
        let mut usable = Vec::new();
        for jwk in &set.keys {
            match RsaPublicKey::from_jwk(jwk) {
                Ok(key) if jwk.kid.as_deref().is_none_or(|kid| kid == key.thumbprint()) => {
                    usable.push(key)
                }
                _ => {}
            }
        }
        let keys = Self::from_public_keys(&usable);
        let skipped = set.keys.len() - keys.len();
        (keys, skipped)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys (a verifier without keys refuses everything).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key with this `kid` is trusted.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The `kid` of the key whose tokens start with exactly this header segment.
    fn kid_of_header(&self, header: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|(_, key)| key.header_segment() == header)
            .map(|(kid, _)| kid.as_str())
    }
}

/// Checks access tokens against the rules of this module, a replaceable [`KeySet`] and,
/// for tokens seen before, a cache of verified tokens.
pub struct Verifier {
    issuer: String,
    audience: String,
    leeway_secs: i64,
    /// Read on every verification and replaced only when the key source changes:
    /// reading it writes to no memory shared with the other workers.
    keys: ArcSwap<KeySet>,
    /// `None` when caching is off (`cache.max_entries = 0`).
    cache: Option<VerifiedTokens>,
    /// What `exp`, `nbf` and `iat` are checked against.
    clock: SharedClock,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("iss", &self.issuer)
            .field("aud", &self.audience)
            .field("keys", &self.keys())
            .field("cache", &self.cache)
            .finish()
    }
}

impl Verifier {
    /// A verifier for `settings` that trusts exactly `keys`, remembering up to
    /// [`DEFAULT_CACHE_ENTRIES`] verified tokens.
    pub fn new(settings: &VerifierSettings, keys: KeySet) -> Self {
        Self {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway_secs: i64::try_from(settings.leeway_secs).unwrap_or(i64::MAX),
            keys: ArcSwap::from_pointee(keys),
            cache: Some(VerifiedTokens::new(DEFAULT_CACHE_ENTRIES)),
            clock: SystemClock::shared(),
        }
    }

    /// The same verifier reading the time from `clock` (tests move a test clock forward
    /// instead of sleeping).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The clock the rules are checked against, for checks made alongside (DPoP proofs).
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Remembers up to `max_entries` verified tokens instead of the default; 0 turns the
    /// cache off, so that every request pays the full verification.
    pub fn with_cache_entries(mut self, max_entries: u64) -> Self {
        self.cache = (max_entries > 0).then(|| VerifiedTokens::new(max_entries));
        self
    }

    /// How many verified tokens are remembered right now (0 without a cache).
    pub fn cached_tokens(&self) -> u64 {
        self.cache.as_ref().map_or(0, VerifiedTokens::len)
    }

    /// The current key set.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Replaces the trusted keys, for example after a JWKS refetch. Tokens verified by a
    /// key that is not in the new set are refused from now on, cached or not.
    pub fn set_keys(&self, keys: KeySet) {
        let new = Arc::new(keys);
        let old = self.keys.swap(Arc::clone(&new));
        if let Some(cache) = &self.cache {
            let withdrawn = old
                .keys
                .keys()
                .filter(|kid| !new.contains(kid))
                .cloned()
                .collect();
            cache.forget_keys(withdrawn);
        }
    }

    /// Verifies `token` and returns its claims, or says why it was refused.
    pub fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        self.verify_at(token, self.clock.now_secs()).0
    }

    /// [`Self::verify`], also saying whether the cache answered (for metrics).
    pub fn verify_noting_cache(
        &self,
        token: &str,
    ) -> (Result<Arc<AccessClaims>, TokenError>, CacheLookup) {
        self.verify_at(token, self.clock.now_secs())
    }

    /// [`Self::verify_noting_cache`] at `now`, seconds since the Unix epoch.
    fn verify_at(
        &self,
        token: &str,
        now: i64,
    ) -> (Result<Arc<AccessClaims>, TokenError>, CacheLookup) {
        if token.len() > MAX_TOKEN_BYTES {
            return (Err(TokenError::TooLarge), CacheLookup::NotConsulted);
        }
        let keys = self.keys.load();
        let Some(cache) = &self.cache else {
            let verified = self.verify_fully(token, None, &keys, now);
            return (
                verified.map(|(_, claims)| Arc::new(claims)),
                CacheLookup::NotConsulted,
            );
        };
        let (digest, signing_input) = VerifiedTokens::digests(token);
        // A hit stands for a token whose bytes passed every rule, with a key still
        // trusted; what depends on the clock is checked again now.
        if let Some(hit) = cache.get(&digest)
            && keys.contains(&hit.kid)
        {
            let checked = self.check_claims(&hit.claims, now);
            return (checked.map(|()| Arc::clone(&hit.claims)), CacheLookup::Hit);
        }
        let verified = self
            .verify_fully(token, signing_input.as_ref(), &keys, now)
            .map(|(kid, claims)| {
                let claims = Arc::new(claims);
                cache.remember(digest, &kid, &claims);
                claims
            });
        (verified, CacheLookup::Miss)
    }

    /// Every rule, in order; returns the `kid` that verified the token and its claims.
    /// `hashed` is the SHA-256 of the token's signing input when the caller has it.
    fn verify_fully<'a>(
        &self,
        token: &'a str,
        hashed: Option<&SigningInputDigest>,
        keys: &'a KeySet,
        now: i64,
    ) -> Result<(Cow<'a, str>, AccessClaims), TokenError> {
        let parts = check_structure(token, keys)?;
        let key = keys
            .keys
            .get(parts.kid.as_ref())
            .ok_or(TokenError::UnknownKeyId)?;
        let signature = URL_SAFE_NO_PAD
            .decode(parts.signature)
            .map_err(|_| TokenError::Malformed)?;
        // RFC 7515 §5.2: the signature covers `base64url(header).base64url(payload)`.
        let verified = match hashed {
            Some(hashed) if hashed.len == parts.signing_input.len() => {
                key.verifies_digest(&hashed.digest, &signature)
            }
            _ => key.verifies(parts.signing_input.as_bytes(), &signature),
        };
        if !verified {
            return Err(TokenError::BadSignature);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(parts.payload)
            .map_err(|_| TokenError::Malformed)?;
        // Every claim but `cnf` is required, and `exp`, `nbf`, `iat` must be integers: a
        // payload that lacks one or carries it as a string does not deserialize.
        let claims: AccessClaims =
            serde_json::from_slice(&payload).map_err(|_| TokenError::InvalidClaims)?;
        self.check_claims(&claims, now)?;
        Ok((parts.kid, claims))
    }

    /// The claim rules: `exp` and `nbf` with the leeway, then `iss` and `aud`, then
    /// `iat` not in the future (beyond the leeway).
    fn check_claims(&self, claims: &AccessClaims, now: i64) -> Result<(), TokenError> {
        if claims.exp < now.saturating_sub(self.leeway_secs) {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now.saturating_add(self.leeway_secs) {
            return Err(TokenError::NotYetValid);
        }
        if claims.iss != self.issuer {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != self.audience {
            return Err(TokenError::WrongAudience);
        }
        if claims.iat > now.saturating_add(self.leeway_secs) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(())
    }
}

/// The segments of a token that passed [`check_structure`].
struct Parts<'a> {
    /// The header's `kid`.
    kid: Cow<'a, str>,
    /// `header.payload`, what the signature covers.
    signing_input: &'a str,
    /// The payload segment, still base64url.
    payload: &'a str,
    /// The signature segment, still base64url.
    signature: &'a str,
}

/// The checks made before any key is touched. A header that is byte for byte the one our
/// issuer writes for a key of `keys` passes them as it would parsed, without the parsing.
fn check_structure<'a>(token: &'a str, keys: &'a KeySet) -> Result<Parts<'a>, TokenError> {
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(TokenError::Malformed);
    };
    // The signature may be empty here, so that `alg: none` tokens are named as such below.
    let well_formed = !header.is_empty() && !payload.is_empty() && is_base64url_or_dot(token);
    if !well_formed {
        return Err(TokenError::Malformed);
    }
    let signing_input = &token[..header.len() + 1 + payload.len()];
    if let Some(kid) = keys.kid_of_header(header) {
        if signature.is_empty() {
            return Err(TokenError::BadSignature);
        }
        return Ok(Parts {
            kid: Cow::Borrowed(kid),
            signing_input,
            payload,
            signature,
        });
    }
    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    let header_json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;

    if header_json.get("alg").and_then(|v| v.as_str()) != Some("RS256") {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    if let Some(name) = KEY_BEARING_HEADERS
        .iter()
        .find(|h| header_json.contains_key(**h))
    {
        return Err(TokenError::KeyInHeader(name));
    }
    if header_json.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
    let typ = header_json
        .get("typ")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if !media_type_is(typ, ACCESS_TOKEN_TYPE) {
        return Err(TokenError::WrongType);
    }
    if signature.is_empty() {
        return Err(TokenError::BadSignature);
    }
    let Some(kid) = header_json.get("kid").and_then(|v| v.as_str()) else {
        return Err(TokenError::MissingKeyId);
    };
    Ok(Parts {
        kid: Cow::Owned(kid.to_owned()),
        signing_input,
        payload,
        signature,
    })
}

/// Whether every byte of `token` is a base64url character or a `.`: checked without
/// stopping at the first bad byte, so that it runs many bytes at a time.
fn is_base64url_or_dot(token: &str) -> bool {
    token.bytes().fold(true, |ok, b| {
        ok & (b.is_ascii_alphanumeric() | (b == b'-') | (b == b'_') | (b == b'.'))
    })
}

/// Whether a JOSE `typ` names the media type `expected` (given without `application/`):
/// RFC 8725 §3.11 and RFC 7515 §4.1.9, case-insensitive with `application/` optional.
pub(crate) fn media_type_is(typ: &str, expected: &str) -> bool {
    let typ = typ
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    typ.eq_ignore_ascii_case(expected)
}
