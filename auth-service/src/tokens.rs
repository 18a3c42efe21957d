//! Access tokens (`docs/ARCHITECTURE.md` § Tokens) and the token response of RFC 6749 §5.1.

use shared_claims::{AccessClaims, Confirmation, RsaSigningKey};
use uuid::Uuid;

use crate::user_cache::Subject;

/// The body of a successful login or refresh, and how its access token is presented:
/// wire types, defined with the others in `shared_claims::protocol` so that clients read
/// exactly what this service writes.
pub use shared_claims::protocol::{TokenResponse, TokenType};

/// Why an access token could not be signed: never the caller's fault (a key or
/// serialisation failure), so a 500 once mapped in [`crate::error`].
#[derive(Debug, thiserror::Error)]
#[error("cannot sign an access token")]
pub struct IssueError(#[source] shared_claims::SigningError);

/// Signs access tokens for this issuer and audience.
#[derive(Debug)]
pub struct AccessTokenIssuer {
    key: RsaSigningKey,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl AccessTokenIssuer {
    /// An issuer signing with `key`.
    pub fn new(key: RsaSigningKey, issuer: &str, audience: &str, ttl_secs: u64) -> Self {
        Self {
            key,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX),
        }
    }

    /// Lifetime of the tokens, the `expires_in` of responses.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Mints a token for `user` in session `sid`, issued at `now` (seconds), bound to the
    /// DPoP key with thumbprint `jkt` if given (`cnf`, RFC 9449 §6).
    pub fn issue(
        &self,
        user: &Subject,
        sid: Uuid,
        client_id: &str,
        scope: &str,
        jkt: Option<&str>,
        now: i64,
    ) -> Result<String, IssueError> {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user.id,
            aud: self.audience.clone(),
            exp: now.saturating_add(self.ttl_secs),
            iat: now,
            nbf: now,
            jti: Uuid::new_v4(),
            sid,
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
            roles: user.roles.clone(),
            preferred_username: user.username.clone(),
            cnf: jkt.map(|jkt| Confirmation {
                jkt: jkt.to_owned(),
            }),
        };
        self.key.sign(&claims).map_err(IssueError)
    }
}
