//! What the services say about users and sessions: the body of `POST /auth/register`,
//! the items of `GET /auth/sessions` and the body of `GET /api/me`.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::claims::AccessClaims;

/// A user without its password hash: what `POST /auth/register` answers with (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    /// The user id, the `sub` of its access tokens.
    pub id: Uuid,
    /// The username as registered.
    pub username: String,
    /// Roles, copied into access tokens at login.
    pub roles: Vec<String>,
    /// Registration time.
    pub created_at: DateTime<Utc>,
}

/// One live session, as `GET /auth/sessions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    /// The session id, `sid` in access tokens.
    pub id: Uuid,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// Last login or refresh.
    pub last_used_at: DateTime<Utc>,
    /// When it ends unless refreshed first.
    pub expires_at: DateTime<Utc>,
    /// The User-Agent it was opened with.
    pub user_agent: String,
    /// Whether the caller's access token belongs to it.
    pub current: bool,
}

/// Who the access token says the caller is: the body of `GET /api/me`.
///
/// The fields are declared in alphabetical order, the order they have always been sent
/// in (the body used to be a JSON map, which sorts its keys), so the bytes on the wire
/// stay the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MeResponse<'a> {
    /// Expiry of the access token, seconds since the Unix epoch.
    pub exp: i64,
    /// The roles the token carries.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub roles: Cow<'a, [String]>,
    /// The scopes the token was granted, space-delimited.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub scope: Cow<'a, str>,
    /// The session the token belongs to.
    pub sid: Uuid,
    /// The user id.
    pub sub: Uuid,
    /// The username, for display.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub username: Cow<'a, str>,
}

/// The body borrowed from the verified claims, as the service writes it on every request
/// without copying the roles, scope and username (a client reads it owned).
impl<'a> From<&'a AccessClaims> for MeResponse<'a> {
    fn from(claims: &'a AccessClaims) -> Self {
        Self {
            exp: claims.exp,
            roles: Cow::Borrowed(&claims.roles),
            scope: Cow::Borrowed(&claims.scope),
            sid: claims.sid,
            sub: claims.sub,
            username: Cow::Borrowed(&claims.preferred_username),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_written_from_claims_borrows_them_and_reads_back_equal() {
        let claims = AccessClaims {
            iss: "https://issuer.test".into(),
            sub: Uuid::max(),
            aud: "resource-service".into(),
            exp: 1_700_000_300,
            iat: 1_700_000_000,
            nbf: 1_700_000_000,
            jti: Uuid::nil(),
            sid: Uuid::nil(),
            client_id: "client-cli".into(),
            scope: "read write".into(),
            roles: vec!["user".into(), "admin".into()],
            preferred_username: "alice \"a\" \u{e9}".into(),
            cnf: None,
        };

        let written = MeResponse::from(&claims);
        assert!(matches!(written.roles, Cow::Borrowed(_)));
        assert!(matches!(written.username, Cow::Borrowed(_)));
        let json = serde_json::to_string(&written).unwrap();
        assert_eq!(
            json,
            r#"{"exp":1700000300,"roles":["user","admin"],"scope":"read write","sid":"00000000-0000-0000-0000-000000000000","sub":"ffffffff-ffff-ffff-ffff-ffffffffffff","username":"alice \"a\" é"}"#
        );
        let read_back: MeResponse<'static> = serde_json::from_str(&json).unwrap();
        assert_eq!(read_back, written);
    }

    #[test]
    fn the_me_body_keeps_its_keys_in_alphabetical_order() {
        let me = MeResponse {
            exp: 1_700_000_300,
            roles: vec!["user".into()].into(),
            scope: "read write".into(),
            sid: Uuid::nil(),
            sub: Uuid::max(),
            username: "alice".into(),
        };

        assert_eq!(
            serde_json::to_string(&me).unwrap(),
            r#"{"exp":1700000300,"roles":["user"],"scope":"read write","sid":"00000000-0000-0000-0000-000000000000","sub":"ffffffff-ffff-ffff-ffff-ffffffffffff","username":"alice"}"#
        );
    }

    #[test]
    fn session_times_travel_as_rfc_3339_and_read_back_unchanged() {
        let session = SessionView {
            id: Uuid::nil(),
            created_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            last_used_at: DateTime::from_timestamp_millis(1_700_000_060_000).unwrap(),
            expires_at: DateTime::from_timestamp_millis(1_700_086_460_000).unwrap(),
            user_agent: "client-cli/0.1.0".into(),
            current: true,
        };

        let json = serde_json::to_value(&session).unwrap();

        assert_eq!(json["created_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(
            serde_json::from_value::<SessionView>(json).unwrap(),
            session
        );
    }
}
