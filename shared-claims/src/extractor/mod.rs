//! Access-token authentication for actix-web, reusable by any actix service: Bearer
//! tokens (RFC 6750) and, when enabled, DPoP-bound tokens with their proofs (RFC 9449).
//!
//! Register a [`BearerAuth`] as app data and take [`Authenticated`] in a handler: the
//! handler only runs for a valid token and receives its typed claims. Failures answer
//! 401 with `WWW-Authenticate: Bearer realm="…"` (plus `error="invalid_token"` and a
//! reason when a token was sent), 403 `insufficient_scope` from
//! [`Authenticated::require_role`], and 400 for two `Authorization` headers.
//!
//! With [`BearerAuth::with_dpop`], `Authorization: DPoP <token>` is accepted too, with
//! exactly one `DPoP` proof header (RFC 9449 §7.1):
//! * the token is verified as always, then it must carry `cnf.jkt`, then the proof must
//!   be valid for this request (method, URL, `ath` of this token), signed by the key
//!   `cnf.jkt` names, and not seen before by this process ([`ReplayCache`]);
//! * a token with `cnf` sent as Bearer is refused with 401 `invalid_token` and a DPoP
//!   challenge whatever the configuration: the binding is the whole point of `cnf`;
//! * a token without `cnf` keeps working as Bearer but is refused with the DPoP scheme,
//!   since there would be no key to hold the proof to;
//! * proof failures answer 401 `invalid_dpop_proof` with
//!   `WWW-Authenticate: DPoP realm="…", error="invalid_dpop_proof", error_description="…", algs="…"`.
//!
//! The URL a proof must name (`htu`) is the [`PublicUrl`] followed by the request's path
//! when one is configured, else `http://` + the `Host` header + path. `X-Forwarded-*`
//! headers are never consulted: any client can set them.
//!
//! ```ignore
//! async fn admin(user: Authenticated) -> Result<HttpResponse, AuthError> {
//!     let claims = user.require_role("admin")?;
//!     Ok(HttpResponse::Ok().json(claims))
//! }
//! ```

mod error;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

pub use error::{AuthError, AuthErrorKind};
use error::{Challenger, Scheme};

use crate::claims::AccessClaims;
use crate::dpop::{DpopError, DpopVerifier, PublicUrl, ReplayCache, algs_parameter};
use crate::metrics::verification::VerificationMetrics;
use crate::verify::{TokenError, Verifier};

/// Fetches fresh verification keys when a token names an unknown `kid`.
///
/// Implementations must rate-limit themselves: the extractor calls this for every such
/// token, and tokens are attacker-controlled.
pub trait KeyRefresher: Send + Sync {
    /// Tries to update the verifier's keys; returns whether the caller should retry.
    fn refresh(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
}

/// The extractor's configuration, registered as `web::Data<BearerAuth>`.
#[derive(Clone)]
pub struct BearerAuth {
    verifier: Arc<Verifier>,
    challenger: Challenger,
    refresher: Option<Arc<dyn KeyRefresher>>,
    dpop: Option<Arc<DpopCheck>>,
    metrics: Option<VerificationMetrics>,
}

/// What checking DPoP-bound tokens needs.
#[derive(Debug)]
struct DpopCheck {
    verifier: Arc<DpopVerifier>,
    replay: ReplayCache,
    public_url: Option<PublicUrl>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("realm", &self.challenger.realm)
            .field("verifier", &self.verifier)
            .field("refreshes_keys", &self.refresher.is_some())
            .field("dpop", &self.dpop)
            .finish()
    }
}

impl BearerAuth {
    /// Authentication for `realm` with `verifier`'s keys.
    pub fn new(verifier: Arc<Verifier>, realm: &str) -> Self {
        Self {
            verifier,
            challenger: Challenger {
                realm: realm.into(),
                dpop_algs: None,
            },
            refresher: None,
            dpop: None,
            metrics: None,
        }
    }

    /// Counts every refusal, by reason, and every verified-token cache lookup, by
    /// result, in `metrics`.
    pub fn with_metrics(mut self, metrics: VerificationMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Adds a key source consulted on unknown `kid`s.
    pub fn with_refresher(mut self, refresher: Arc<dyn KeyRefresher>) -> Self {
        self.refresher = Some(refresher);
        self
    }

    /// Accepts DPoP-bound tokens with proofs checked by `verifier`, remembering used
    /// proofs in `replay`, and proofs naming `public_url` + path (or `http://` + `Host`
    /// + path without one). Challenges then advertise DPoP with the verifier's `algs`.
    pub fn with_dpop(
        mut self,
        verifier: Arc<DpopVerifier>,
        replay: ReplayCache,
        public_url: Option<PublicUrl>,
    ) -> Self {
        self.challenger.dpop_algs = Some(algs_parameter(verifier.algorithms()).into());
        self.dpop = Some(Arc::new(DpopCheck {
            verifier,
            replay,
            public_url,
        }));
        self
    }

    /// The verifier in use.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// Verifies a token, refreshing keys once if it names an unknown key.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        match self.verify(token) {
            Err(TokenError::UnknownKeyId) => match &self.refresher {
                Some(refresher) if refresher.refresh().await => self.verify(token),
                _ => Err(TokenError::UnknownKeyId),
            },
            other => other,
        }
    }

    /// One verification, its cache lookup counted.
    fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
        let (verified, lookup) = self.verifier.verify_noting_cache(token);
        if let Some(metrics) = &self.metrics {
            metrics.cache_lookup(lookup);
        }
        verified
    }

    fn error(&self, scheme: Scheme, kind: AuthErrorKind) -> AuthError {
        if let Some(metrics) = &self.metrics {
            metrics.refused(&kind);
        }
        AuthError {
            challenger: self.challenger.clone(),
            scheme,
            kind,
        }
    }

    /// The DPoP half of a request whose token verified and was sent as `DPoP`.
    fn check_proof(
        &self,
        token: &str,
        claims: &AccessClaims,
        request: ProofRequest,
    ) -> Result<(), AuthErrorKind> {
        let Some(dpop) = &self.dpop else {
            // Unreachable: the DPoP scheme is only recognised when DPoP is configured.
            return Err(AuthErrorKind::NotConfigured);
        };
        let Some(cnf) = &claims.cnf else {
            return Err(AuthErrorKind::UnboundTokenAsDpop);
        };
        let now = self.verifier.clock().now_secs();
        let proof = request
            .proof
            .and_then(|proof| {
                dpop.verifier
                    .verify(&proof, &request.method, &request.url, Some(token), now)
            })
            .map_err(AuthErrorKind::Proof)?;
        // RFC 9449 §4.3 check 12: the proof's key is the one the token is bound to.
        if proof.jkt != cnf.jkt {
            return Err(AuthErrorKind::Proof(DpopError::KeyMismatch));
        }
        // Last, so that only proofs that passed everything are remembered.
        if !dpop.replay.first_use(&proof, now) {
            return Err(AuthErrorKind::Proof(DpopError::Replayed));
        }
        Ok(())
    }
}

/// A request whose access token verified (and, for a bound token, its proof); derefs to
/// its claims.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Shared with the verified-token cache, not copied from it.
    claims: Arc<AccessClaims>,
    /// What answers (and counts) a refusal of this request by role or scope.
    auth: web::Data<BearerAuth>,
    scheme: Scheme,
}

impl Authenticated {
    /// The verified claims.
    pub fn claims(&self) -> &AccessClaims {
        &self.claims
    }

    /// The claims if the token carries `role`, else a 403 `insufficient_scope`.
    pub fn require_role(&self, role: &str) -> Result<&AccessClaims, AuthError> {
        if self.claims.has_role(role) {
            Ok(&self.claims)
        } else {
            Err(self.auth.error(
                self.scheme,
                AuthErrorKind::InsufficientScope(role.to_owned()),
            ))
        }
    }

    /// The claims if the token was granted `scope`, else a 403 `insufficient_scope`
    /// naming it (RFC 6750 §3.1).
    pub fn require_scope(&self, scope: &str) -> Result<&AccessClaims, AuthError> {
        if self.claims.has_scope(scope) {
            Ok(&self.claims)
        } else {
            Err(self
                .auth
                .error(self.scheme, AuthErrorKind::MissingScope(scope.to_owned())))
        }
    }
}

impl std::ops::Deref for Authenticated {
    type Target = AccessClaims;
    fn deref(&self) -> &AccessClaims {
        &self.claims
    }
}

/// The credentials in a request's `Authorization` header.
enum Presented {
    /// None, or a scheme we do not take (Basic, or DPoP when it is not enabled).
    Nothing,
    Bearer(PresentedToken),
    /// A DPoP token and what its proof will be checked against.
    Dpop(PresentedToken, ProofRequest),
}

/// A token where it arrived: the header value, shared rather than copied (tokens are most
/// of a request's bytes, and this is every request), and where in it the token lies.
struct PresentedToken {
    value: header::HeaderValue,
    token: std::ops::Range<usize>,
}

impl PresentedToken {
    /// The token; the value was checked to be visible ASCII, so this is never empty for a
    /// non-empty token.
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.value.as_bytes()[self.token.clone()]).unwrap_or_default()
    }
}

/// `HeaderValue::to_str`'s rule (visible ASCII, space and tab), checked without stopping
/// at the first bad byte so that it runs a word at a time over a kilobyte of token.
fn is_visible_ascii(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & ((b.wrapping_sub(0x20) < 0x5f) | (b == b'\t'))
    })
}

/// The parts of a request a DPoP proof is checked against, taken before the request is
/// let go.
struct ProofRequest {
    /// The single `DPoP` header, or why there is not exactly one.
    proof: Result<String, DpopError>,
    method: String,
    url: String,
}

/// The token of a request (RFC 6750 §2.1, RFC 9449 §7.1), or why it is malformed.
fn presented(req: &HttpRequest, dpop: Option<&DpopCheck>) -> Result<Presented, AuthErrorKind> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let Some(value) = values.next() else {
        return Ok(Presented::Nothing);
    };
    if values.next().is_some() {
        return Err(AuthErrorKind::BadRequest(
            "the request has more than one Authorization header",
        ));
    }
    if !is_visible_ascii(value.as_bytes()) {
        return Err(AuthErrorKind::Token(TokenError::Malformed));
    }
    let Some((scheme, token)) = std::str::from_utf8(value.as_bytes())
        .unwrap_or_default()
        .split_once(' ')
    else {
        return Ok(Presented::Nothing);
    };
    let trimmed = token.trim();
    let start = scheme.len() + 1 + (token.len() - token.trim_start().len());
    let token = PresentedToken {
        value: value.clone(),
        token: start..start + trimmed.len(),
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Presented::Bearer(token));
    }
    match dpop {
        Some(dpop) if scheme.eq_ignore_ascii_case("dpop") => Ok(Presented::Dpop(
            token,
            ProofRequest {
                proof: dpop_proof_header(req).and_then(|p| p.ok_or(DpopError::Missing)),
                method: req.method().as_str().to_owned(),
                url: dpop_request_url(req, dpop.public_url.as_ref()),
            },
        )),
        // Another scheme (Basic, …) carries no token we take: a challenge without error.
        _ => Ok(Presented::Nothing),
    }
}

/// The request's `DPoP` proof: `None` without one, an error for more than one (RFC 9449
/// §4.3 check 1) or a value that is not visible ASCII. Shared so that every endpoint
/// taking proofs reads the header the same way.
pub fn dpop_proof_header(req: &HttpRequest) -> Result<Option<String>, DpopError> {
    let mut values = req.headers().get_all("dpop");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(DpopError::Multiple);
    }
    value
        .to_str()
        .map(|v| Some(v.to_owned()))
        .map_err(|_| DpopError::Malformed)
}

/// The URL the client addressed, as a proof's `htu` must name it: `public_url` + path
/// when configured, else `http://` + the `Host` header (the `:authority` in HTTP/2) +
/// path. `X-Forwarded-*` and `Forwarded` are never consulted: any client can set them. A
/// request without a host gets a URL no proof matches.
pub fn dpop_request_url(req: &HttpRequest, public_url: Option<&PublicUrl>) -> String {
    let path = req.uri().path();
    if let Some(public_url) = public_url {
        return public_url.join(path);
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    format!("http://{host}{path}")
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AuthError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = req.app_data::<web::Data<BearerAuth>>().cloned();
        let presented = auth
            .as_ref()
            .map(|auth| presented(req, auth.dpop.as_deref()));
        Box::pin(async move {
            let (Some(auth), Some(presented)) = (auth, presented) else {
                return Err(AuthError {
                    challenger: Challenger {
                        realm: "".into(),
                        dpop_algs: None,
                    },
                    scheme: Scheme::Bearer,
                    kind: AuthErrorKind::NotConfigured,
                });
            };
            let (scheme, token, proof) = match presented {
                Ok(Presented::Nothing) => {
                    let missing = AuthErrorKind::Token(TokenError::Missing);
                    return Err(auth.error(Scheme::Bearer, missing));
                }
                Ok(Presented::Bearer(token)) => (Scheme::Bearer, token, None),
                Ok(Presented::Dpop(token, proof)) => (Scheme::Dpop, token, Some(proof)),
                Err(kind) => return Err(auth.error(Scheme::Bearer, kind)),
            };
            let token = token.as_str();
            let claims = auth
                .authenticate(token)
                .await
                .map_err(|reason| auth.error(scheme, AuthErrorKind::Token(reason)))?;
            match proof {
                None if claims.cnf.is_some() => {
                    return Err(auth.error(scheme, AuthErrorKind::BoundTokenAsBearer));
                }
                None => {}
                Some(proof) => auth
                    .check_proof(token, &claims, proof)
                    .map_err(|kind| auth.error(scheme, kind))?,
            }
            Ok(Authenticated {
                claims,
                auth,
                scheme,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visible_ascii_rule_is_the_header_values_own() {
        for b in 0..=u8::MAX {
            let bytes = [b'a', b, b'z'];
            let value = header::HeaderValue::from_bytes(&bytes);
            let http_says = value.as_ref().is_ok_and(|v| v.to_str().is_ok());
            // Bytes a header value cannot hold at all (NUL, CR, LF…) never reach us.
            if value.is_ok() {
                assert_eq!(is_visible_ascii(&bytes), http_says, "byte {b:#04x}");
            }
        }
    }
}
