//! How the extractor says no: the status, the JSON body and the `WWW-Authenticate`
//! challenges of RFC 6750 §3 (Bearer) and RFC 9449 §7.1 (DPoP).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use crate::dpop::DpopError;
use crate::protocol::{ErrorBody, ErrorCode};
use crate::verify::TokenError;

/// The authentication scheme a challenge names: the one the token came with, except that
/// a DPoP-bound token sent as Bearer is answered in DPoP, the scheme it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scheme {
    Bearer,
    Dpop,
}

/// What every challenge of one service says: its realm and, when it accepts DPoP, the
/// proof algorithms (`algs`, RFC 9449 §7.1).
#[derive(Debug, Clone)]
pub(super) struct Challenger {
    pub(super) realm: Arc<str>,
    pub(super) dpop_algs: Option<Arc<str>>,
}

/// Why authentication failed, with what the challenge needs to say so.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}")]
pub struct AuthError {
    pub(super) challenger: Challenger,
    pub(super) scheme: Scheme,
    pub(super) kind: AuthErrorKind,
}

/// The failure cases.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthErrorKind {
    /// A token was sent and refused (or none was: [`TokenError::Missing`]).
    #[error("{0}")]
    Token(TokenError),
    /// A DPoP-bound token (one with `cnf`) came with the Bearer scheme: without a proof
    /// it is only a stolen copy as far as we can tell (RFC 9449 §7.2).
    #[error("the access token is bound to a DPoP key; send it with the DPoP scheme and a proof")]
    BoundTokenAsBearer,
    /// A token without `cnf` came with the DPoP scheme: there is no key to check the proof
    /// against, so the request is refused rather than half-checked.
    #[error("the access token is not bound to a DPoP key; send it with the Bearer scheme")]
    UnboundTokenAsDpop,
    /// The token is DPoP-bound and its proof is missing or refused.
    #[error("{0}")]
    Proof(DpopError),
    /// The token lacks a role the route needs.
    #[error("this requires the role '{0}'")]
    InsufficientScope(String),
    /// The token was not granted a scope the route needs (RFC 6750 §3.1).
    #[error("this requires the scope '{0}'")]
    MissingScope(String),
    /// The request itself is malformed (e.g. two `Authorization` headers).
    #[error("{0}")]
    BadRequest(&'static str),
    /// The service forgot to register [`BearerAuth`](super::BearerAuth): our bug, not the
    /// client's.
    #[error("authentication is not configured")]
    NotConfigured,
}

impl AuthError {
    /// The failure case.
    pub fn kind(&self) -> &AuthErrorKind {
        &self.kind
    }

    /// The OAuth error code of the body and the challenge.
    fn code(&self) -> ErrorCode {
        match &self.kind {
            AuthErrorKind::Token(TokenError::Missing) => ErrorCode::MissingToken,
            AuthErrorKind::Token(_)
            | AuthErrorKind::BoundTokenAsBearer
            | AuthErrorKind::UnboundTokenAsDpop => ErrorCode::InvalidToken,
            AuthErrorKind::Proof(_) => ErrorCode::InvalidDpopProof,
            AuthErrorKind::InsufficientScope(_) | AuthErrorKind::MissingScope(_) => {
                ErrorCode::InsufficientScope
            }
            AuthErrorKind::BadRequest(_) => ErrorCode::InvalidRequest,
            AuthErrorKind::NotConfigured => ErrorCode::ServerError,
        }
    }

    /// The `WWW-Authenticate` values, one per scheme offered.
    fn challenges(&self) -> Vec<String> {
        let realm = &self.challenger.realm;
        let algs = self.challenger.dpop_algs.as_deref();
        let scheme = match self.kind {
            AuthErrorKind::BoundTokenAsBearer
            | AuthErrorKind::UnboundTokenAsDpop
            | AuthErrorKind::Proof(_) => Scheme::Dpop,
            _ => self.scheme,
        };
        match &self.kind {
            // No credentials: offer every scheme we accept (RFC 9449 §7.1), Bearer first so
            // that clients reading one header see what they always saw.
            AuthErrorKind::Token(TokenError::Missing) => {
                let mut challenges = vec![challenge(Scheme::Bearer, realm, None, None)];
                if let Some(algs) = algs {
                    challenges.push(challenge(Scheme::Dpop, realm, None, Some(algs)));
                }
                challenges
            }
            AuthErrorKind::BadRequest(_) => vec![format!(
                r#"Bearer realm="{realm}", error="{}""#,
                ErrorCode::InvalidRequest
            )],
            AuthErrorKind::NotConfigured => Vec::new(),
            AuthErrorKind::MissingScope(scope) => vec![format!(
                r#"{}, scope="{scope}""#,
                challenge(
                    scheme,
                    realm,
                    Some((self.code().as_str(), self.kind.to_string())),
                    None
                )
            )],
            kind => vec![challenge(
                scheme,
                realm,
                Some((self.code().as_str(), kind.to_string())),
                algs,
            )],
        }
    }
}

/// One challenge: `<scheme> realm="…"[, error="…", error_description="…"][, algs="…"]`.
/// `algs` is only ever said in DPoP challenges. The description is cut to the characters
/// RFC 6750 §3 allows in it (printable ASCII but `"` and `\`), whatever its source.
fn challenge(
    scheme: Scheme,
    realm: &str,
    error: Option<(&str, String)>,
    algs: Option<&str>,
) -> String {
    let mut text = match scheme {
        Scheme::Bearer => format!(r#"Bearer realm="{realm}""#),
        Scheme::Dpop => format!(r#"DPoP realm="{realm}""#),
    };
    if let Some((code, description)) = error {
        let description: String = description
            .chars()
            .map(|c| match c {
                '"' | '\\' => '\'',
                ' '..='~' => c,
                _ => '?',
            })
            .collect();
        text.push_str(&format!(
            r#", error="{code}", error_description="{description}""#
        ));
    }
    if let (Scheme::Dpop, Some(algs)) = (scheme, algs) {
        text.push_str(&format!(r#", algs="{algs}""#));
    }
    text
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        match self.kind {
            AuthErrorKind::Token(_)
            | AuthErrorKind::BoundTokenAsBearer
            | AuthErrorKind::UnboundTokenAsDpop
            | AuthErrorKind::Proof(_) => StatusCode::UNAUTHORIZED,
            AuthErrorKind::InsufficientScope(_) | AuthErrorKind::MissingScope(_) => {
                StatusCode::FORBIDDEN
            }
            AuthErrorKind::BadRequest(_) => StatusCode::BAD_REQUEST,
            AuthErrorKind::NotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        for challenge in self.challenges() {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response.append_header((header::WWW_AUTHENTICATE, value));
            }
        }
        response.json(ErrorBody::new(self.code(), self.kind.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_description_keeps_to_the_characters_rfc_6750_allows() {
        let header = challenge(
            Scheme::Bearer,
            "api",
            Some(("insufficient_scope", r#"needs "admin" \ § here"#.into())),
            None,
        );

        assert_eq!(
            header,
            r#"Bearer realm="api", error="insufficient_scope", error_description="needs 'admin' ' ? here""#
        );
    }
}
