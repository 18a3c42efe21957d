//! The JSON request bodies of `/auth/register`, `/auth/login`, `/auth/refresh` and
//! `/auth/logout`: the auth-service deserialises them, clients serialise them.
//!
//! Passwords are [`SecretString`]s on both sides, so neither a handler's nor a client's
//! `Debug` output or log line can show one. Serialising one is a deliberate exception,
//! made field by field (`expose_password`).

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize, Serializer};

/// `POST /auth/register`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    /// 3–64 characters of `[A-Za-z0-9_.-]`, compared case-insensitively; the service checks.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = "^[A-Za-z0-9_.-]{3,64}$", examples("alice"))
    )]
    pub username: String,
    /// 8–128 characters, and not easily guessed (a zxcvbn score of at least 3 of 4, the
    /// username counting as known); the service checks and says why a password fails.
    #[serde(serialize_with = "expose_password")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = String,
            format = Password,
            min_length = 8,
            max_length = 128,
            examples("plum-Kettle-7391-rivet")
        )
    )]
    pub password: SecretString,
}

/// `POST /auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    /// As registered, in any letter case.
    #[cfg_attr(feature = "openapi", schema(examples("alice")))]
    pub username: String,
    /// The password.
    #[serde(serialize_with = "expose_password")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, format = Password, examples("plum-Kettle-7391-rivet"))
    )]
    pub password: SecretString,
    /// The public client's id (`[A-Za-z0-9_.-]{1,64}`); the service's default without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[A-Za-z0-9_.-]{1,64}$"))]
    pub client_id: Option<String>,
    /// Requested scopes, space-delimited (RFC 6749 §3.3); all supported ones without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// `POST /auth/refresh` and `POST /auth/logout`: the refresh token to rotate or end.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshTokenRequest {
    /// The opaque refresh token.
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshTokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshTokenRequest")
            .field("refresh_token", &"…")
            .finish()
    }
}

/// Writes the password itself into a request body. `SecretString` deliberately has no
/// `Serialize` (secrecy's guard against writing secrets into logs or responses by
/// accident); a client's login or registration body is the one place where the password
/// must be written out, so the fields opt in here, by name, instead of the type doing so
/// everywhere. The body goes straight to the HTTP request and is not kept.
fn expose_password<S: Serializer>(
    password: &SecretString,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(password.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_body_carries_the_password_and_only_the_options_given() {
        let body = LoginRequest {
            username: "alice".into(),
            password: SecretString::from("plum-Kettle-7391-rivet"),
            client_id: None,
            scope: Some("read".into()),
        };

        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({
                "username": "alice",
                "password": "plum-Kettle-7391-rivet",
                "scope": "read",
            })
        );
    }

    #[test]
    fn bodies_read_back_what_clients_write_without_showing_the_password() {
        let body: LoginRequest =
            serde_json::from_str(r#"{"username": "alice", "password": "plum-Kettle-7391-rivet"}"#)
                .unwrap();

        let shown = format!("{body:?}");
        assert!(!shown.contains("plum-Kettle"), "{shown}");
        assert_eq!(body.password.expose_secret(), "plum-Kettle-7391-rivet");
        assert_eq!((body.client_id, body.scope), (None, None));
    }

    #[test]
    fn a_refresh_token_never_shows_in_debug_output() {
        let body = RefreshTokenRequest {
            refresh_token: "opaque-secret".into(),
        };

        assert!(!format!("{body:?}").contains("opaque-secret"));
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"refresh_token":"opaque-secret"}"#
        );
    }
}
