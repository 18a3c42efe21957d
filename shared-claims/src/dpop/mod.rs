//! DPoP proofs (RFC 9449): the one verifier the auth-service and every resource server
//! use, so that a token bound to a client's key is useless to whoever steals it.
//!
//! A proof is a small JWS the client signs with its own key for each request. The
//! [`DpopVerifier`] is built once from [`DpopSettings`] and checks a proof the way
//! [`Verifier`](crate::Verifier) checks an access token, cheap structural checks first:
//! size, shape, `typ: dpop+jwt`, an `alg` from the configured allow-list (never from the
//! token), a public `jwk` of the type that `alg` needs (private or symmetric material is
//! refused), no `crit`; then the signature with that `jwk`; then the claims (`jti`, `htm`,
//! `htu`, `iat` within the window, `ath` when an access token comes with it). What it
//! returns, [`VerifiedProof`], names the key by its RFC 7638 thumbprint (`jkt`): the value
//! a bound token carries in `cnf.jkt`.
//!
//! The verifier is stateless: the caller decides where used `jti`s are remembered
//! ([`ReplayCache`] in memory for resource servers; the auth-service uses Redis) and
//! passes the current time in, so the rules are testable without a clock.
//!
//! Decisions the RFC leaves open, made here:
//! * `ath` is required and checked when an access token is given. Without one (token
//!   endpoint requests), an `ath` claim is ignored like any other unregistered claim:
//!   RFC 9449 §4.2 defines it only for requests that carry an access token, and `htm`
//!   and `htu` already tie the proof to this one request.
//! * The `iat` window is symmetric (± `proof_max_age_secs`), so a client whose clock runs
//!   a little ahead is not refused; a proof is therefore usable for at most twice the
//!   window, which [`VerifiedProof::usable_until`] tells replay stores.
//! * Server-provided nonces (RFC 9449 §8–9) are not used.

mod error;
mod htu;
mod key;
mod replay;
#[cfg(test)]
mod tests;

use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

pub use error::{DpopConfigError, DpopError};
pub use htu::PublicUrl;
pub use replay::ReplayCache;

/// The JOSE `typ` of a DPoP proof (RFC 9449 §4.2).
pub const DPOP_PROOF_TYPE: &str = "dpop+jwt";

/// Proofs longer than this are refused before any parsing, like access tokens.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;

/// The longest `jti` accepted: bounds what a replay store keeps per proof.
pub const MAX_JTI_BYTES: usize = 256;

/// The longest `iat` window that can be configured: a proof is meant to be fresh.
pub const MAX_PROOF_AGE_SECS: u64 = 3600;

/// Header parameters that point at keys elsewhere: a proof's key is its `jwk`, so a
/// second source of keys could only confuse; refused like in access tokens.
const KEY_REFERENCE_HEADERS: [&str; 3] = ["jku", "x5u", "x5c"];

/// A signature algorithm a proof may use. Only asymmetric algorithms exist here: `none`,
/// HMAC and everything unlisted cannot even be configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DpopAlgorithm {
    /// ECDSA with P-256 and SHA-256 (RFC 7518 §3.4), with an `EC` `P-256` key.
    Es256,
    /// Ed25519 (RFC 8037 §3.1), with an `OKP` `Ed25519` key.
    EdDsa,
}

impl DpopAlgorithm {
    /// Every supported algorithm, in the order the defaults list them.
    pub const ALL: [DpopAlgorithm; 2] = [DpopAlgorithm::Es256, DpopAlgorithm::EdDsa];

    /// The JOSE name, as in `alg` and in `dpop_signing_alg_values_supported`.
    pub fn as_str(self) -> &'static str {
        match self {
            DpopAlgorithm::Es256 => "ES256",
            DpopAlgorithm::EdDsa => "EdDSA",
        }
    }
}

impl std::fmt::Display for DpopAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DpopAlgorithm {
    type Err = DpopConfigError;

    /// JOSE names are case-sensitive (RFC 7515 §4.1.1), so `es256` is refused.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.as_str() == name)
            .ok_or_else(|| DpopConfigError::UnknownAlgorithm(name.to_owned()))
    }
}

/// The `dpop.*` settings every service shares, as read from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopSettings {
    /// `dpop.algorithms`: JOSE names of the accepted proof algorithms.
    pub algorithms: Vec<String>,
    /// `dpop.proof_max_age_secs`: how far `iat` may be from now, either way.
    pub proof_max_age_secs: u64,
}

impl Default for DpopSettings {
    /// Both algorithms and a 60 s window, the RFC's usual order of magnitude.
    fn default() -> Self {
        Self {
            algorithms: DpopAlgorithm::ALL
                .iter()
                .map(|a| a.as_str().into())
                .collect(),
            proof_max_age_secs: 60,
        }
    }
}

/// What a valid proof establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// RFC 7638 thumbprint of the proof's key: compare with a token's `cnf.jkt`, or store
    /// it to bind a session.
    pub jkt: String,
    /// The proof's unique id: remember `(jkt, jti)` until [`Self::usable_until`] and
    /// refuse a second use.
    pub jti: String,
    /// When the client says it made the proof, seconds since the Unix epoch.
    pub iat: i64,
    /// The last second at which this proof still passes the `iat` check: how long a
    /// replay store must remember it (`usable_until - now + 1` seconds from now).
    pub usable_until: i64,
}

/// Checks DPoP proofs against rules fixed at start; cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct DpopVerifier {
    algorithms: Vec<DpopAlgorithm>,
    max_age_secs: i64,
}

impl DpopVerifier {
    /// A verifier for `settings`, or why they are unusable (unknown algorithm names,
    /// an empty list, a zero or absurd window).
    pub fn new(settings: &DpopSettings) -> Result<Self, DpopConfigError> {
        let mut algorithms = Vec::new();
        for name in &settings.algorithms {
            let alg = name.trim().parse::<DpopAlgorithm>()?;
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        if algorithms.is_empty() {
            return Err(DpopConfigError::NoAlgorithms);
        }
        let age = settings.proof_max_age_secs;
        if age == 0 || age > MAX_PROOF_AGE_SECS {
            return Err(DpopConfigError::BadMaxAge(age));
        }
        Ok(Self {
            algorithms,
            max_age_secs: i64::try_from(age).map_err(|_| DpopConfigError::BadMaxAge(age))?,
        })
    }

    /// The accepted algorithms: for `dpop_signing_alg_values_supported` and the `algs`
    /// of a `WWW-Authenticate: DPoP` challenge.
    pub fn algorithms(&self) -> &[DpopAlgorithm] {
        &self.algorithms
    }

    /// The `iat` window in seconds, either way from now.
    pub fn proof_max_age_secs(&self) -> u64 {
        self.max_age_secs.unsigned_abs()
    }

    /// Verifies `proof` for a request with `method` to `expected_url` (query and fragment
    /// are ignored on both sides), made with `access_token` if any, at `now_secs`.
    ///
    /// Replay is not checked here: remember [`VerifiedProof::jti`] where the caller can.
    pub fn verify(
        &self,
        proof: &str,
        method: &str,
        expected_url: &str,
        access_token: Option<&str>,
        now_secs: i64,
    ) -> Result<VerifiedProof, DpopError> {
        // RFC 9449 §4.3 checks 2, 4, 5 and 7: shape and header, before any crypto.
        let parts = split(proof)?;
        let header = json_object(parts[0])?;
        check_type(&header)?;
        let alg = self.algorithm(&header)?;
        if let Some(name) = KEY_REFERENCE_HEADERS
            .iter()
            .find(|h| header.contains_key(**h))
        {
            return Err(DpopError::KeyReference(name));
        }
        if header.contains_key("crit") {
            return Err(DpopError::CriticalHeader);
        }
        let key = key::ProofKey::from_header(header.get("jwk"), alg)?;

        // Check 6: the signature, with the key the proof brings.
        let signature = URL_SAFE_NO_PAD
            .decode(parts[2])
            .map_err(|_| DpopError::Malformed)?;
        let signed = &proof[..parts[0].len() + 1 + parts[1].len()];
        key.verify(signed.as_bytes(), &signature)?;

        // Checks 3, 8, 9, 11 and 12: the claims.
        let claims = json_object(parts[1])?;
        let jti = string_claim(&claims, "jti")?;
        if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
            return Err(DpopError::InvalidClaim("jti"));
        }
        if string_claim(&claims, "htm")? != method {
            return Err(DpopError::WrongMethod);
        }
        let htu = string_claim(&claims, "htu")?;
        match (htu::normalize(htu), htu::normalize(expected_url)) {
            (Some(presented), Some(expected)) if presented == expected => {}
            _ => return Err(DpopError::WrongUrl),
        }
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or(DpopError::InvalidClaim("iat"))?;
        if iat.abs_diff(now_secs) > self.proof_max_age_secs() {
            return Err(DpopError::Stale);
        }
        if let Some(token) = access_token {
            let ath = string_claim(&claims, "ath")?;
            if ath != access_token_hash(token) {
                return Err(DpopError::AccessTokenMismatch);
            }
        }
        Ok(VerifiedProof {
            jkt: key.thumbprint(),
            jti: jti.to_owned(),
            iat,
            usable_until: iat.saturating_add(self.max_age_secs),
        })
    }

    fn algorithm(&self, header: &Map<String, Value>) -> Result<DpopAlgorithm, DpopError> {
        header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(|name| name.parse::<DpopAlgorithm>().ok())
            .filter(|alg| self.algorithms.contains(alg))
            .ok_or(DpopError::UnsupportedAlgorithm)
    }
}

/// `ath` for `access_token` (RFC 9449 §4.2): base64url SHA-256 of its ASCII bytes.
pub fn access_token_hash(access_token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The three segments of a compact JWS. The signature may be empty here so that an
/// unsigned `alg: none` proof is named as such by the algorithm check.
fn split(proof: &str) -> Result<[&str; 3], DpopError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(DpopError::TooLarge);
    }
    let mut segments = proof.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(DpopError::Malformed);
    };
    let base64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if header.is_empty()
        || claims.is_empty()
        || ![header, claims, signature].iter().all(|s| base64url(s))
    {
        return Err(DpopError::Malformed);
    }
    Ok([header, claims, signature])
}

fn json_object(segment: &str) -> Result<Map<String, Value>, DpopError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| DpopError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| DpopError::Malformed)
}

fn check_type(header: &Map<String, Value>) -> Result<(), DpopError> {
    let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
    if crate::verify::media_type_is(typ, DPOP_PROOF_TYPE) {
        Ok(())
    } else {
        Err(DpopError::WrongType)
    }
}

fn string_claim<'a>(
    claims: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, DpopError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .ok_or(DpopError::InvalidClaim(name))
}

/// The names in `algorithms`, space-separated, for an `algs` challenge parameter.
pub(crate) fn algs_parameter(algorithms: &[DpopAlgorithm]) -> String {
    algorithms
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}
