//! Bearer-token authentication for actix-web (RFC 6750), reusable by any actix service.
//!
//! Register a [`BearerAuth`] as app data and take [`Authenticated`] in a handler: the
//! handler only runs for a valid token and receives its typed claims. Failures answer
//! 401 with `WWW-Authenticate: Bearer realm="…"` (plus `error="invalid_token"` and a
//! reason when a token was sent), 403 `insufficient_scope` from
//! [`Authenticated::require_role`], and 400 for two `Authorization` headers.
//!
//! ```ignore
//! async fn admin(user: Authenticated) -> Result<HttpResponse, AuthError> {
//!     let claims = user.require_role("admin")?;
//!     Ok(HttpResponse::Ok().json(claims))
//! }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};

use crate::claims::AccessClaims;
use crate::error_body::ErrorBody;
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
    realm: Arc<str>,
    refresher: Option<Arc<dyn KeyRefresher>>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("realm", &self.realm)
            .field("verifier", &self.verifier)
            .field("refreshes_keys", &self.refresher.is_some())
            .finish()
    }
}

impl BearerAuth {
    /// Authentication for `realm` with `verifier`'s keys.
    pub fn new(verifier: Arc<Verifier>, realm: &str) -> Self {
        Self {
            verifier,
            realm: realm.into(),
            refresher: None,
        }
    }

    /// Adds a key source consulted on unknown `kid`s.
    pub fn with_refresher(mut self, refresher: Arc<dyn KeyRefresher>) -> Self {
        self.refresher = Some(refresher);
        self
    }

    /// The verifier in use.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// Verifies a token, refreshing keys once if it names an unknown key.
    pub async fn authenticate(&self, token: &str) -> Result<AccessClaims, TokenError> {
        match self.verifier.verify(token) {
            Err(TokenError::UnknownKeyId) => match &self.refresher {
                Some(refresher) if refresher.refresh().await => self.verifier.verify(token),
                _ => Err(TokenError::UnknownKeyId),
            },
            other => other,
        }
    }

    fn error(&self, kind: AuthErrorKind) -> AuthError {
        AuthError {
            realm: Arc::clone(&self.realm),
            kind,
        }
    }
}

/// A request whose bearer token verified; derefs to its claims.
#[derive(Debug, Clone)]
pub struct Authenticated {
    claims: AccessClaims,
    realm: Arc<str>,
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
            Err(AuthError {
                realm: Arc::clone(&self.realm),
                kind: AuthErrorKind::InsufficientScope(role.to_owned()),
            })
        }
    }
}

impl Authenticated {
    /// The claims if the token was granted `scope`, else a 403 `insufficient_scope`
    /// (RFC 6750 §3.1).
    pub fn require_scope(&self, scope: &str) -> Result<&AccessClaims, AuthError> {
        if self.claims.has_scope(scope) {
            Ok(&self.claims)
        } else {
            Err(AuthError {
                realm: Arc::clone(&self.realm),
                kind: AuthErrorKind::MissingScope(scope.to_owned()),
            })
        }
    }
}

impl std::ops::Deref for Authenticated {
    type Target = AccessClaims;
    fn deref(&self) -> &AccessClaims {
        &self.claims
    }
}

/// Why authentication failed, with the realm to name in the challenge.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}")]
pub struct AuthError {
    realm: Arc<str>,
    kind: AuthErrorKind,
}

/// The failure cases.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthErrorKind {
    /// A token was sent and refused (or none was: [`TokenError::Missing`]).
    #[error("{0}")]
    Token(TokenError),
    /// The token lacks a role the route needs.
    #[error("this requires the role {0:?}")]
    InsufficientScope(String),
    /// The token was not granted a scope the route needs.
    #[error("this requires the scope {0:?}")]
    MissingScope(String),
    /// The request itself is malformed (e.g. two `Authorization` headers).
    #[error("{0}")]
    BadRequest(&'static str),
    /// The service forgot to register [`BearerAuth`]: our bug, not the client's.
    #[error("authentication is not configured")]
    NotConfigured,
}

impl AuthError {
    /// The failure case.
    pub fn kind(&self) -> &AuthErrorKind {
        &self.kind
    }

    fn challenge(&self) -> Option<String> {
        let realm = &self.realm;
        match &self.kind {
            AuthErrorKind::Token(TokenError::Missing) => Some(format!(r#"Bearer realm="{realm}""#)),
            AuthErrorKind::Token(reason) => Some(format!(
                r#"Bearer realm="{realm}", error="invalid_token", error_description="{reason}""#
            )),
            AuthErrorKind::InsufficientScope(_) => Some(format!(
                r#"Bearer realm="{realm}", error="insufficient_scope", error_description="{}""#,
                self.kind
            )),
            AuthErrorKind::MissingScope(scope) => Some(format!(
                r#"Bearer realm="{realm}", error="insufficient_scope", scope="{scope}", error_description="{}""#,
                self.kind
            )),
            AuthErrorKind::BadRequest(_) => Some(format!(
                r#"Bearer realm="{realm}", error="invalid_request""#
            )),
            AuthErrorKind::NotConfigured => None,
        }
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self.kind {
            AuthErrorKind::Token(_) => StatusCode::UNAUTHORIZED,
            AuthErrorKind::InsufficientScope(_) | AuthErrorKind::MissingScope(_) => {
                StatusCode::FORBIDDEN
            }
            AuthErrorKind::BadRequest(_) => StatusCode::BAD_REQUEST,
            AuthErrorKind::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match &self.kind {
            AuthErrorKind::Token(TokenError::Missing) => "missing_token",
            AuthErrorKind::Token(_) => "invalid_token",
            AuthErrorKind::InsufficientScope(_) | AuthErrorKind::MissingScope(_) => {
                "insufficient_scope"
            }
            AuthErrorKind::BadRequest(_) => "invalid_request",
            AuthErrorKind::NotConfigured => "server_error",
        };
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(challenge) = self
            .challenge()
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        response.json(ErrorBody::new(code, self.kind.to_string()))
    }
}

/// The bearer token of a request (RFC 6750 §2.1), or why there is none.
fn bearer_token(req: &HttpRequest) -> Result<Option<String>, AuthErrorKind> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthErrorKind::BadRequest(
            "the request has more than one Authorization header",
        ));
    }
    let Ok(value) = value.to_str() else {
        return Err(AuthErrorKind::Token(TokenError::Malformed));
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, …) carries no bearer token: a challenge without error.
        return Ok(None);
    }
    Ok(Some(token.trim().to_owned()))
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AuthError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = req.app_data::<web::Data<BearerAuth>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let Some(auth) = auth else {
                return Err(AuthError {
                    realm: "".into(),
                    kind: AuthErrorKind::NotConfigured,
                });
            };
            let token = match token {
                Ok(Some(token)) => token,
                Ok(None) => return Err(auth.error(AuthErrorKind::Token(TokenError::Missing))),
                Err(kind) => return Err(auth.error(kind)),
            };
            match auth.authenticate(&token).await {
                Ok(claims) => Ok(Authenticated {
                    claims,
                    realm: Arc::clone(&auth.realm),
                }),
                Err(reason) => Err(auth.error(AuthErrorKind::Token(reason))),
            }
        })
    }
}
