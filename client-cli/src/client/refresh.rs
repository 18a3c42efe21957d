//! The refresh strategy: when the client rotates its refresh token, and how it makes
//! sure a rotation is never lost.
//!
//! * Before a call, the access token is refreshed if it has under
//!   [`REFRESH_MARGIN_SECS`] left; after a 401 `invalid_token`, once.
//! * Read-refresh-write happens under an exclusive lock on the credentials file, and the
//!   file is re-read once the lock is held: when two processes race, the second finds
//!   the tokens the first stored and uses them instead of replaying a retired refresh
//!   token (which the auth-service would treat as reuse).
//! * **A lost reply must not look like theft.** If the refresh request may have reached
//!   the server but its answer did not reach us (the connection broke or timed out, or a
//!   proxy answered 502/504), the server may already have rotated: our token is now the
//!   *previous* one. Presented again within the server's grace window it yields the same
//!   successor; presented later, it is reuse and kills the session. So such a refresh is
//!   retried promptly, with the *same* token, still under the lock. A 503 (the
//!   auth-service cannot reach Redis for a moment) is retried the same way, honouring
//!   `Retry-After` up to [`RETRY_AFTER_CAP`]. A different token is never tried.
//! * A refresh refused with `invalid_grant` deletes the credentials and ends with
//!   [`CliError::SessionExpired`].

use std::time::Duration;

use reqwest::{Method, StatusCode};
use shared_claims::ErrorCode;
use shared_claims::protocol::{RefreshTokenRequest, TokenResponse, paths};

use super::answers::{api_error, retry_after};
use super::{Client, Service};
use crate::credentials::Credentials;
use crate::error::CliError;
use crate::jwt;

/// Refresh when the access token has less than this left.
pub const REFRESH_MARGIN_SECS: i64 = 30;

/// How many times one refresh token is sent before the client gives up.
pub const REFRESH_ATTEMPTS: usize = 3;

/// The pause before each retry, unless the server asks for longer.
pub const REFRESH_BACKOFF: [Duration; REFRESH_ATTEMPTS - 1] =
    [Duration::from_millis(250), Duration::from_secs(1)];

/// The longest `Retry-After` honoured: a retry has to land inside the server's grace
/// window (5 s by default) to be recognised as a retry.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(2);

/// How long one refresh attempt may take. Shorter than the default grace window, so a
/// retry after a timeout still finds the successor the server may have made meanwhile.
pub const REFRESH_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);

/// What one refresh attempt came to.
enum Attempt {
    /// A final answer: new tokens, or an error retrying cannot change.
    Done(Result<TokenResponse, CliError>),
    /// The answer was lost or the server could not serve: send the same token again.
    Again {
        error: CliError,
        retry_after: Option<Duration>,
    },
}

/// The pause before retry number `retry` (0-based): the backoff, or what the server
/// asked for up to [`RETRY_AFTER_CAP`], whichever is longer.
pub fn retry_delay(retry: usize, retry_after: Option<Duration>) -> Duration {
    let backoff = REFRESH_BACKOFF
        .get(retry)
        .copied()
        .unwrap_or(RETRY_AFTER_CAP);
    backoff.max(retry_after.unwrap_or_default().min(RETRY_AFTER_CAP))
}

impl Client {
    /// Refreshes now, whatever the access token's remaining life.
    pub async fn refresh(&self) -> Result<Credentials, CliError> {
        let _lock = self.lock().await?;
        let credentials = self.stored()?;
        self.refresh_locked(credentials).await
    }

    /// Stored credentials whose access token has at least the margin left.
    pub(super) async fn fresh_credentials(&self) -> Result<Credentials, CliError> {
        let credentials = self.stored()?;
        if credentials.access_expires_at - jwt::now() >= REFRESH_MARGIN_SECS {
            return Ok(credentials);
        }
        let _lock = self.lock().await?;
        // Another process may have refreshed while we waited for the lock.
        let credentials = self.stored()?;
        if credentials.access_expires_at - jwt::now() >= REFRESH_MARGIN_SECS {
            return Ok(credentials);
        }
        self.refresh_locked(credentials).await
    }

    /// After a server refused `used_access_token`: refresh, unless another process
    /// already replaced it.
    pub(super) async fn refresh_after_rejection(
        &self,
        used_access_token: &str,
    ) -> Result<Credentials, CliError> {
        let _lock = self.lock().await?;
        let credentials = self.stored()?;
        if credentials.access_token != used_access_token {
            return Ok(credentials);
        }
        self.refresh_locked(credentials).await
    }

    /// Rotates the refresh token, retrying a lost answer with the same token; the caller
    /// holds the lock.
    async fn refresh_locked(&self, credentials: Credentials) -> Result<Credentials, CliError> {
        let mut retry = 0;
        let outcome = loop {
            match self.refresh_attempt(&credentials).await {
                Attempt::Done(outcome) => break outcome,
                Attempt::Again { error, .. } if retry + 1 >= REFRESH_ATTEMPTS => break Err(error),
                Attempt::Again { retry_after, .. } => {
                    tokio::time::sleep(retry_delay(retry, retry_after)).await;
                    retry += 1;
                }
            }
        };
        match outcome {
            Ok(tokens) => {
                let refreshed = self.credentials_from(
                    &credentials.username,
                    tokens,
                    credentials.dpop_key.clone(),
                );
                self.store.save(&refreshed)?;
                Ok(refreshed)
            }
            Err(CliError::Rejected {
                code: ErrorCode::InvalidGrant,
                ..
            }) => {
                self.store.delete()?;
                Err(CliError::SessionExpired)
            }
            Err(other) => Err(other),
        }
    }

    /// One `POST /auth/refresh` with the refresh token of `credentials`, and for a bound
    /// session a fresh proof of its key (a proof is good once, so each attempt makes one).
    async fn refresh_attempt(&self, credentials: &Credentials) -> Attempt {
        let mut request = self
            .request(Service::Auth, Method::POST, paths::REFRESH)
            .timeout(REFRESH_ATTEMPT_TIMEOUT)
            .json(&RefreshTokenRequest {
                refresh_token: credentials.refresh_token.clone(),
            });
        let proof = super::dpop_key(credentials).and_then(|key| {
            key.map(|key| key.proof("POST", &self.url(Service::Auth, paths::REFRESH), None))
                .transpose()
        });
        match proof {
            Ok(Some(proof)) => request = request.header("DPoP", proof),
            Ok(None) => {}
            Err(e) => return Attempt::Done(Err(e)),
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                // Refused or unresolvable: the request never left, nothing rotated.
                let lost = !e.is_connect() && !e.is_builder();
                let error = self.unreachable(Service::Auth, &e);
                return if lost {
                    Attempt::Again {
                        error,
                        retry_after: None,
                    }
                } else {
                    Attempt::Done(Err(error))
                };
            }
        };
        match response.status() {
            StatusCode::OK => {
                // A body cut off in transit is as lost as no answer at all.
                let text = match response.text().await {
                    Ok(text) => text,
                    Err(e) => {
                        return Attempt::Again {
                            error: self.unreachable(Service::Auth, &e),
                            retry_after: None,
                        };
                    }
                };
                Attempt::Done(
                    serde_json::from_str(&text).map_err(|e| {
                        CliError::Unexpected(format!("unexpected refresh response: {e}"))
                    }),
                )
            }
            StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => {
                let retry_after = retry_after(&response);
                Attempt::Again {
                    error: api_error(Service::Auth, response).await,
                    retry_after,
                }
            }
            _ => Attempt::Done(Err(api_error(Service::Auth, response).await)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_honour_retry_after_only_up_to_the_cap() {
        assert_eq!(retry_delay(0, None), REFRESH_BACKOFF[0]);
        assert_eq!(retry_delay(1, None), REFRESH_BACKOFF[1]);
        assert_eq!(
            retry_delay(0, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            retry_delay(0, Some(Duration::from_secs(3600))),
            RETRY_AFTER_CAP
        );
        assert_eq!(retry_delay(1, Some(Duration::ZERO)), REFRESH_BACKOFF[1]);
    }

    #[test]
    fn the_pauses_between_retries_stay_inside_the_default_grace_window() {
        let worst: Duration = (0..REFRESH_ATTEMPTS - 1)
            .map(|retry| retry_delay(retry, Some(Duration::from_secs(3600))))
            .sum();
        assert!(worst <= Duration::from_secs(5), "{worst:?}");
    }
}
