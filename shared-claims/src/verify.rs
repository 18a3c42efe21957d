//! The verification rules every verifier applies (`docs/ARCHITECTURE.md` § Tokens).
//!
//! The order matters: cheap structural checks first (size, shape, header), so that
//! garbage, `alg: none`, HMAC-with-the-public-key and self-keyed tokens are refused before
//! any key is looked up; then the RS256 signature with a key chosen by `kid` from our own
//! key set; then the claims (iss, aud, exp, nbf, iat).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::claims::{ACCESS_TOKEN_TYPE, AccessClaims};
use crate::jwk::{JwkSet, RsaPublicKey};
use crate::provider::install_crypto_provider;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

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

/// Builds the one `jsonwebtoken` validation every verifier uses: RS256 only (never taken
/// from the token), issuer and audience pinned, `exp`/`nbf` checked with the leeway, and
/// every claim the profile needs required.
pub fn validation_rules(settings: &VerifierSettings) -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = vec![Algorithm::RS256];
    validation.set_issuer(&[&settings.issuer]);
    validation.set_audience(&[&settings.audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.leeway = settings.leeway_secs;
    validation
}

/// Verification keys by `kid`; replaced as a whole when the key source changes.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, DecodingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("kids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeySet {
    /// A key set holding `keys`, each under its RFC 7638 thumbprint.
    pub fn from_public_keys<'a>(keys: impl IntoIterator<Item = &'a RsaPublicKey>) -> Self {
        let keys = keys
            .into_iter()
            .map(|k| {
                let decoding = DecodingKey::from_rsa_raw_components(k.modulus(), k.exponent());
                (k.thumbprint(), decoding)
            })
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
        let skipped = set.keys.len() - usable.len();
        (Self::from_public_keys(&usable), skipped)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys (a verifier without keys refuses everything).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Checks access tokens against [`validation_rules`] and a replaceable [`KeySet`].
pub struct Verifier {
    validation: Validation,
    leeway_secs: i64,
    keys: RwLock<Arc<KeySet>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("iss", &self.validation.iss)
            .field("aud", &self.validation.aud)
            .field("keys", &self.keys())
            .finish()
    }
}

impl Verifier {
    /// A verifier for `settings` that trusts exactly `keys`.
    pub fn new(settings: &VerifierSettings, keys: KeySet) -> Self {
        install_crypto_provider();
        Self {
            validation: validation_rules(settings),
            leeway_secs: i64::try_from(settings.leeway_secs).unwrap_or(i64::MAX),
            keys: RwLock::new(Arc::new(keys)),
        }
    }

    /// The current key set.
    pub fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the trusted keys, for example after a JWKS refetch.
    pub fn set_keys(&self, keys: KeySet) {
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
    }

    /// Verifies `token` and returns its claims, or says why it was refused.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let kid = check_structure(token)?;
        let keys = self.keys();
        let key = keys.keys.get(&kid).ok_or(TokenError::UnknownKeyId)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .map_err(|e| map_jwt_error(e.kind()))?;
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap_or(i64::MAX);
        if data.claims.iat > now.saturating_add(self.leeway_secs) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(data.claims)
    }
}

/// The checks made before any key is touched; returns the header's `kid`.
fn check_structure(token: &str) -> Result<String, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let segments: Vec<&str> = token.split('.').collect();
    // The signature may be empty here, so that `alg: none` tokens are named as such below.
    let well_formed = segments.len() == 3
        && !segments[0].is_empty()
        && !segments[1].is_empty()
        && segments.iter().all(|s| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !well_formed {
        return Err(TokenError::Malformed);
    }
    let header = URL_SAFE_NO_PAD
        .decode(segments[0])
        .map_err(|_| TokenError::Malformed)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|_| TokenError::Malformed)?;

    if header.get("alg").and_then(|v| v.as_str()) != Some("RS256") {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    if let Some(name) = KEY_BEARING_HEADERS
        .iter()
        .find(|h| header.contains_key(**h))
    {
        return Err(TokenError::KeyInHeader(name));
    }
    if header.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
    let typ = header.get("typ").and_then(|v| v.as_str()).unwrap_or("");
    if !media_type_is(typ, ACCESS_TOKEN_TYPE) {
        return Err(TokenError::WrongType);
    }
    if segments[2].is_empty() {
        return Err(TokenError::BadSignature);
    }
    match header.get("kid").and_then(|v| v.as_str()) {
        Some(kid) => Ok(kid.to_owned()),
        None => Err(TokenError::MissingKeyId),
    }
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

fn map_jwt_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
            TokenError::UnsupportedAlgorithm
        }
        ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::Json(_) => TokenError::InvalidClaims,
        _ => TokenError::Malformed,
    }
}
