//! The access-token claims (RFC 9068 profile): what the auth-service signs, every
//! verifier checks and a client may decode to show its user.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The JOSE `typ` of our access tokens (RFC 9068 §2.1); verifiers refuse any other.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// The claims of an access token, exactly as they travel in the JWT payload.
///
/// `exp`, `nbf` and `iat` are integers: a payload that carries them as strings or
/// fractions does not deserialize, so it can never slip past the time checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the auth-service's public base URL (`jwt.issuer`).
    pub iss: String,
    /// The user id.
    pub sub: Uuid,
    /// The audience the token is meant for (`jwt.audience`).
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Not before, seconds since the Unix epoch.
    pub nbf: i64,
    /// A unique id per token (UUID v4), for audit trails.
    pub jti: Uuid,
    /// The refresh session this token was minted for.
    pub sid: Uuid,
    /// The public client the user logged in with.
    pub client_id: String,
    /// Space-delimited granted scopes (RFC 6749 §3.3).
    pub scope: String,
    /// The user's roles at the time of issue.
    pub roles: Vec<String>,
    /// The username, for display only: `sub` is the identity.
    pub preferred_username: String,
    /// The key the token is bound to (RFC 9449 §6.1, RFC 7800). Present only on tokens of
    /// sessions created with a DPoP proof: such a token is refused unless each request
    /// carries a proof signed by that key, so a stolen copy is useless on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim of a DPoP-bound access token (RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The RFC 7638 thumbprint of the client's DPoP public key, as the service part's
    /// DPoP verifier computes it (`dpop::VerifiedProof::jkt`).
    pub jkt: String,
}

impl AccessClaims {
    /// Whether the token carries `role`; the one-line role check of handlers.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether `scope` is one of the granted scopes.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }
}
