//! Register, login, refresh and logout as operations, shared by the JSON API under
//! `/auth` and the OAuth 2.0 endpoints under `/oauth`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use shared_claims::protocol::{SessionView, UserView};
use uuid::Uuid;

use shared_claims::dpop::{DpopError, VerifiedProof};
use shared_claims::protocol::SharedClock;

use crate::dpop::DpopProofs;
use crate::error::ApiError;
use crate::metrics::{AuthMetrics, LoginOutcome, RefreshOutcome, RevocationCause};
use crate::rate_limit::RateLimiter;
use crate::sessions::{NewSession, RefreshTokens, Refusal, Rotation, RotationId, SessionStore};
use crate::tokens::{AccessTokenIssuer, TokenResponse, TokenType};
use crate::user_cache::Subject;
use crate::users::{Password, Passwords, UserStore, Username};

/// The client id used when a client names none (README § The API with curl).
pub const DEFAULT_CLIENT_ID: &str = "client-cli";
/// Scopes this server grants (RFC 6749 §3.3).
pub const SUPPORTED_SCOPES: [&str; 2] = ["read", "write"];

/// Everything the flows need, built once at start-up.
#[derive(Debug)]
pub struct AuthFlows {
    /// Users in Postgres.
    pub users: UserStore,
    /// Argon2id hashing.
    pub passwords: Passwords,
    /// Refresh sessions in Redis.
    pub sessions: Arc<SessionStore>,
    /// Refresh-token codec.
    pub refresh_tokens: RefreshTokens,
    /// Access-token signer.
    pub issuer: AccessTokenIssuer,
    /// Password-attempt limits.
    pub limiter: RateLimiter,
    /// DPoP proofs at the token endpoints.
    pub dpop: DpopProofs,
    /// Counters for `/metrics`.
    pub metrics: AuthMetrics,
    /// The time of access tokens and DPoP proofs (sessions use the Redis clock).
    pub clock: SharedClock,
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A login attempt, from JSON or from `grant_type=password`.
#[derive(Debug)]
pub struct LoginAttempt<'a> {
    /// As typed.
    pub username: &'a str,
    /// As typed.
    pub password: SecretString,
    /// Optional client id.
    pub client_id: Option<&'a str>,
    /// Optional requested scope.
    pub scope: Option<&'a str>,
    /// Client address, for rate limiting.
    pub ip: &'a str,
    /// For the session list.
    pub user_agent: &'a str,
    /// The request's verified DPoP proof: binds the session to its key.
    pub proof: Option<VerifiedProof>,
}

/// Checks a client id against `[A-Za-z0-9_.-]{1,64}`.
pub fn parse_client_id(raw: Option<&str>) -> Result<String, ApiError> {
    match raw {
        None => Ok(DEFAULT_CLIENT_ID.to_owned()),
        Some(id)
            if (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) =>
        {
            Ok(id.to_owned())
        }
        Some(_) => Err(ApiError::InvalidRequest(
            "client_id must be 1 to 64 characters of [A-Za-z0-9_.-]".into(),
        )),
    }
}

/// The granted scope: the requested scopes we support, or all of them when none was
/// requested (RFC 6749 §3.3 lets the server grant less than asked and say so).
pub fn grant_scope(requested: Option<&str>) -> Result<String, ApiError> {
    let Some(requested) = requested.filter(|s| !s.trim().is_empty()) else {
        return Ok(SUPPORTED_SCOPES.join(" "));
    };
    let granted: Vec<&str> = SUPPORTED_SCOPES
        .iter()
        .copied()
        .filter(|s| requested.split(' ').any(|r| r == *s))
        .collect();
    if granted.is_empty() {
        return Err(ApiError::InvalidRequest(format!(
            "none of the requested scopes is supported; supported: {}",
            SUPPORTED_SCOPES.join(" ")
        )));
    }
    Ok(granted.join(" "))
}

/// The refusal of a session-management call whose access token outlived its session.
fn session_ended() -> ApiError {
    ApiError::InvalidToken("the session of this access token has ended; log in again")
}

impl AuthFlows {
    /// Creates a user with role `user`.
    #[tracing::instrument(skip_all, fields(username = tracing::field::Empty, ip = %ip))]
    pub async fn register(
        &self,
        username: &str,
        password: SecretString,
        ip: &str,
    ) -> Result<UserView, ApiError> {
        let username = Username::parse(username).map_err(ApiError::InvalidRequest)?;
        // Only a valid username goes into the logs, as at login.
        tracing::Span::current().record("username", username.as_str());
        let password = Password::parse(password).map_err(ApiError::InvalidRequest)?;
        self.limiter.attempt(ip).await?;
        let password = password
            .checked_for_strength(&username)
            .await
            .map_err(|e| ApiError::Unexpected(anyhow::Error::new(e)))?
            .map_err(ApiError::InvalidRequest)?;
        let hash = self.passwords.hash(password).await?;
        let user = self.users.insert(&username, &hash, &["user"]).await?;
        self.metrics.registered();
        tracing::info!(target: "audit", event = "user_registered", user_id = %user.id, "user registered");
        Ok(user.into())
    }

    /// Checks the password and opens a session. Unknown user and wrong password take the
    /// same time and give the same error.
    #[tracing::instrument(skip(self, attempt), fields(username = tracing::field::Empty))]
    pub async fn login(&self, attempt: LoginAttempt<'_>) -> Result<TokenResponse, ApiError> {
        let client_id = parse_client_id(attempt.client_id)?;
        let scope = grant_scope(attempt.scope)?;
        let Ok(username) = Username::parse(attempt.username) else {
            self.limiter.attempt(attempt.ip).await?;
            return Err(ApiError::InvalidCredentials);
        };
        // Only a valid username goes into the logs: what fails to parse may be a password
        // typed into the wrong field.
        tracing::Span::current().record("username", username.as_str());
        let folded = username.folded();
        let gate = self.limiter.begin_login(attempt.ip, &folded).await?;
        if !gate.delay.is_zero() {
            tracing::info!(
                delay_ms = gate.delay.as_millis() as u64,
                "login slowed down: many failures for this username"
            );
            tokio::time::sleep(gate.delay).await;
        }
        let user = self.users.find_by_username(username.as_str()).await?;
        let matched = self
            .passwords
            .verify(
                attempt.password,
                user.as_ref().map(|u| u.password_hash.as_str()),
            )
            .await?;
        let user_id = user.as_ref().map(|u| u.id);
        let Some(user) = user.filter(|_| matched) else {
            self.metrics.login(LoginOutcome::invalid_credentials);
            if let Err(e) = self.limiter.record_failure(&folded).await {
                tracing::warn!(error = %e, "failed login not counted");
            }
            tracing::info!(
                target: "audit",
                event = "login_failed",
                user_id = ?user_id,
                "login refused: wrong username or password"
            );
            return Err(ApiError::InvalidCredentials);
        };
        if let Err(e) = self.limiter.record_success(attempt.ip, &folded).await {
            tracing::warn!(error = %e, "successful login did not reset its rate-limit count");
        }
        let jkt = attempt.proof.as_ref().map(|p| p.jkt.as_str());
        // What the tokens and the session record of the user; the hash is done with.
        let user = Subject::from(&user);
        let (sid, ttl_ms, evicted) = self
            .sessions
            .create(NewSession {
                user_id: user.id,
                epoch: user.session_epoch(),
                jkt,
                client_id: &client_id,
                scope: &scope,
                user_agent: attempt.user_agent,
            })
            .await?;
        self.metrics.login(LoginOutcome::success);
        self.metrics.revoked(
            RevocationCause::session_cap,
            u64::try_from(evicted).unwrap_or(0),
        );
        tracing::info!(
            target: "audit",
            event = "login_succeeded",
            user_id = %user.id,
            %sid,
            dpop_bound = jkt.is_some(),
            "session opened"
        );
        self.respond(&user, sid, 0, &client_id, &scope, jkt, ttl_ms)
    }

    /// Rotates a refresh token (see [`crate::sessions`]), with the request's verified
    /// DPoP proof if any.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(
        &self,
        refresh_token: &str,
        proof: Option<VerifiedProof>,
    ) -> Result<TokenResponse, ApiError> {
        self.rotate(refresh_token, proof).await
    }

    async fn rotate(
        &self,
        refresh_token: &str,
        proof: Option<VerifiedProof>,
    ) -> Result<TokenResponse, ApiError> {
        let Some((sid, generation)) = self.refresh_tokens.open(refresh_token) else {
            self.metrics.refresh(RefreshOutcome::invalid);
            return Err(ApiError::InvalidGrant("the refresh token is invalid"));
        };
        // The rotation first: it alone decides (atomically, in Redis) whether the token is
        // good, and says whose session it is. What can fail after it (the user store) is
        // covered by the lost-reply rule: the client's retry of the same token gets the
        // same successor.
        let jkt = proof.as_ref().map(|p| p.jkt.as_str());
        let rid = RotationId::new();
        let (granted, outcome) = match self.sessions.rotate(&sid, generation, jkt, &rid).await? {
            Rotation::Rotated(granted) => (granted, RefreshOutcome::rotated),
            Rotation::Retried(granted) => (granted, RefreshOutcome::grace_retry),
            Rotation::Recovered(granted) => {
                tracing::info!(%sid, "refresh retried after a lost reply; same successor");
                (granted, RefreshOutcome::recovered)
            }
            Rotation::Refused(refusal) => {
                self.metrics.refresh(match refusal {
                    Refusal::Reused { .. } => RefreshOutcome::reuse,
                    Refusal::Expired => RefreshOutcome::expired,
                    Refusal::WrongKey => RefreshOutcome::wrong_key,
                    Refusal::StateLost { .. } => RefreshOutcome::state_lost,
                    Refusal::Unknown | Refusal::GraceExhausted => RefreshOutcome::invalid,
                });
                if matches!(refusal, Refusal::Reused { .. }) {
                    self.metrics.revoked(RevocationCause::reuse, 1);
                }
                if refusal == Refusal::WrongKey && proof.is_none() {
                    return Err(DpopError::Missing.into());
                }
                return Err(refused(&sid, refusal));
            }
        };
        // After a rotation of ours, a failure before the answer leaves a successor nobody
        // holds: record it as a lost reply so the client's retry gets it. (A grace or
        // recovered grant's generation was made by another request: nothing to record.)
        let lose = |e: ApiError| {
            if outcome == RefreshOutcome::rotated {
                self.sessions.remember_lost_reply(sid, generation, &rid);
            }
            e
        };
        let mut user = self
            .users
            .subject(granted.user_id)
            .await
            .map_err(|e| lose(e.into()))?;
        if user
            .as_ref()
            .is_some_and(|u| !u.accepts_session_epoch(granted.epoch))
        {
            // Memory may hold the user from before a change made elsewhere (a session
            // opened since then records the new epoch): Postgres decides an ending.
            user = self
                .users
                .subject_from_database(granted.user_id)
                .await
                .map_err(|e| lose(e.into()))?;
        }
        let Some(user) = user else {
            self.sessions.revoke(&sid).await?;
            self.metrics.refresh(RefreshOutcome::invalid);
            return Err(ApiError::InvalidGrant("the user no longer exists"));
        };
        if !user.accepts_session_epoch(granted.epoch) {
            // The account's roles or password changed after this session opened: its
            // holder may not be the account's holder any more.
            self.sessions.revoke(&sid).await?;
            self.metrics.refresh(RefreshOutcome::account_changed);
            self.metrics.revoked(RevocationCause::account_changed, 1);
            tracing::info!(
                target: "audit",
                event = "session_revoked",
                cause = "account_changed",
                user_id = %user.id,
                %sid,
                "session ended: the account's roles or password changed since it opened"
            );
            return Err(ApiError::InvalidGrant(
                "the account's roles or password changed since this session opened; log in again",
            ));
        }
        let response = self
            .respond(
                &user,
                sid,
                granted.generation,
                &granted.client_id,
                &granted.scope,
                jkt,
                granted.ttl_ms,
            )
            .map_err(lose)?;
        self.metrics.refresh(outcome);
        Ok(response)
    }

    /// Ends the session a refresh token belongs to; silent for unknown tokens (RFC 7009
    /// §2.2). A DPoP-bound session is ended only with a proof of its key.
    #[tracing::instrument(skip_all)]
    pub async fn logout(
        &self,
        refresh_token: &str,
        proof: Option<VerifiedProof>,
    ) -> Result<(), ApiError> {
        let Some((sid, _)) = self.refresh_tokens.open(refresh_token) else {
            return Ok(());
        };
        let jkt = proof.as_ref().map(|p| p.jkt.as_str());
        match self.sessions.revoke_with_key(&sid, jkt).await? {
            Ok(Some(user_id)) => {
                self.metrics.revoked(RevocationCause::logout, 1);
                tracing::info!(target: "audit", event = "logout", %user_id, %sid, "session ended by logout");
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(_) => Err(if proof.is_none() {
                DpopError::Missing
            } else {
                DpopError::KeyMismatch
            }
            .into()),
        }
    }

    /// Refuses an access token whose session is over: access tokens outlive their session
    /// (they are stateless), but managing sessions with one must not.
    pub async fn require_live_session(&self, user_id: Uuid, sid: Uuid) -> Result<(), ApiError> {
        if self.sessions.is_live(&user_id, &sid).await? {
            Ok(())
        } else {
            Err(session_ended())
        }
    }

    /// The caller's live sessions, newest first; `current_sid` is marked. The list itself
    /// says whether the caller's session is live: without it among them, the access token
    /// outlived its session and the call is refused like the others that manage sessions.
    pub async fn sessions(
        &self,
        user_id: Uuid,
        current_sid: Uuid,
    ) -> Result<Vec<SessionView>, ApiError> {
        let sessions = self.sessions.live_sessions(&user_id).await?;
        if !sessions.iter().any(|s| s.sid == current_sid) {
            return Err(session_ended());
        }
        Ok(sessions
            .into_iter()
            .map(|s| SessionView {
                id: s.sid,
                created_at: from_ms(s.created_ms),
                last_used_at: from_ms(s.last_used_ms),
                expires_at: from_ms(s.expires_ms),
                user_agent: s.user_agent,
                current: s.sid == current_sid,
            })
            .collect())
    }

    /// Ends one of the caller's sessions; [`ApiError::NotFound`] when it is not theirs.
    pub async fn end_session(&self, user_id: Uuid, sid: &str) -> Result<(), ApiError> {
        let sid = Uuid::parse_str(sid).map_err(|_| ApiError::NotFound)?;
        if !self.sessions.revoke_owned(&user_id, &sid).await? {
            return Err(ApiError::NotFound);
        }
        self.metrics.revoked(RevocationCause::owner, 1);
        tracing::info!(
            target: "audit",
            event = "session_revoked",
            cause = "owner",
            %user_id,
            %sid,
            "session ended by its owner"
        );
        Ok(())
    }

    /// Ends every session of the caller.
    pub async fn end_all_sessions(&self, user_id: Uuid) -> Result<(), ApiError> {
        let ended = self.sessions.revoke_all(&user_id).await?;
        self.metrics.revoked(
            RevocationCause::logout_all,
            u64::try_from(ended).unwrap_or(u64::MAX),
        );
        tracing::info!(
            target: "audit",
            event = "session_revoked",
            cause = "logout_all",
            %user_id,
            ended,
            "all sessions ended"
        );
        Ok(())
    }

    /// The token response for generation `generation` of session `sid`, its access token
    /// bound to the DPoP key `jkt` if given.
    #[allow(clippy::too_many_arguments)]
    fn respond(
        &self,
        user: &Subject,
        sid: Uuid,
        generation: u64,
        client_id: &str,
        scope: &str,
        jkt: Option<&str>,
        refresh_ttl_ms: i64,
    ) -> Result<TokenResponse, ApiError> {
        let now = self.clock.now_secs();
        let access_token = self.issuer.issue(user, sid, client_id, scope, jkt, now)?;
        Ok(TokenResponse {
            access_token,
            token_type: if jkt.is_some() {
                TokenType::Dpop
            } else {
                TokenType::Bearer
            },
            expires_in: self.issuer.ttl_secs(),
            refresh_token: self.refresh_tokens.mint(&sid, generation),
            refresh_expires_in: refresh_ttl_ms.div_euclid(1000),
            scope: scope.to_owned(),
        })
    }
}

fn refused(sid: &Uuid, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Unknown => {
            ApiError::InvalidGrant("the refresh token is invalid, expired or revoked")
        }
        Refusal::Expired => ApiError::InvalidGrant("the session has expired"),
        Refusal::GraceExhausted => {
            ApiError::InvalidGrant("the refresh token has already been used")
        }
        Refusal::WrongKey => {
            ApiError::InvalidGrant("the refresh token is bound to another DPoP key")
        }
        Refusal::StateLost { user_id } => {
            tracing::warn!(
                target: "audit",
                event = "refresh_session_state_lost",
                %sid,
                user_id = ?user_id,
                "a refresh token newer than the stored session was presented: Redis lost \
                 writes (fail-over or fsync policy); the session is ended, not as reuse"
            );
            ApiError::InvalidGrant("the session's state was lost; log in again")
        }
        Refusal::Reused { user_id } => {
            tracing::warn!(
                target: "audit",
                event = "refresh_token_reuse",
                %sid,
                user_id = ?user_id,
                "a retired refresh token was presented; the session is revoked"
            );
            ApiError::InvalidGrant(
                "the refresh token has already been used; the session is revoked",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_defaults_to_everything_and_keeps_only_supported_scopes() {
        assert_eq!(grant_scope(None).unwrap(), "read write");
        assert_eq!(grant_scope(Some("write admin")).unwrap(), "write");
        assert!(grant_scope(Some("admin")).is_err());
    }

    #[test]
    fn client_ids_follow_the_documented_pattern() {
        assert_eq!(parse_client_id(None).unwrap(), "client-cli");
        assert_eq!(parse_client_id(Some("web.app_1-x")).unwrap(), "web.app_1-x");
        assert!(parse_client_id(Some("")).is_err());
        assert!(parse_client_id(Some("a b")).is_err());
        assert!(parse_client_id(Some(&"a".repeat(65))).is_err());
    }
}
