//! The token response of a successful login or refresh (RFC 6749 §5.1), the same at
//! `/auth/login`, `/auth/refresh` and `/oauth/token`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The body of a successful login or refresh. It carries tokens: answers holding it are
/// sent with `Cache-Control: no-store`, and its `Debug` shows neither token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// The signed JWT.
    pub access_token: String,
    /// How to present the access token: `DPoP` when it is bound to the client's key
    /// (RFC 9449 §5), else `Bearer`.
    pub token_type: TokenType,
    /// Seconds until `exp` of the access token.
    pub expires_in: i64,
    /// The opaque refresh token.
    pub refresh_token: String,
    /// Seconds the refresh token stays usable without a refresh.
    pub refresh_expires_in: i64,
    /// Granted scope, space-delimited (RFC 6749 §3.3).
    pub scope: String,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"…")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"…")
            .field("refresh_expires_in", &self.refresh_expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// The `token_type` of a token response (RFC 6749 §7.1): which `Authorization` scheme
/// the access token goes with.
///
/// Sent exactly as `Bearer` or `DPoP`; read without regard to letter case, as RFC 6749
/// §5.1 asks of clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenType {
    /// A bearer token (RFC 6750): whoever holds it may use it.
    Bearer,
    /// A token bound to the client's DPoP key (RFC 9449): each use needs a proof.
    Dpop,
}

impl TokenType {
    /// The value as sent, also the `Authorization` scheme: `Bearer` or `DPoP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::Dpop => "DPoP",
        }
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TokenType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TokenType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        [Self::Bearer, Self::Dpop]
            .into_iter()
            .find(|known| known.as_str().eq_ignore_ascii_case(&value))
            .ok_or_else(|| {
                serde::de::Error::invalid_value(
                    serde::de::Unexpected::Str(&value),
                    &"Bearer or DPoP",
                )
            })
    }
}

/// The schema says what is sent: exactly `Bearer` or `DPoP` (the derive would name the
/// Rust variants instead).
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for TokenType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .description(Some(
                "How to present the access token: `DPoP` when it is bound to the client's \
                 DPoP key (RFC 9449), else `Bearer`.",
            ))
            .enum_values(Some([Self::Bearer.as_str(), Self::Dpop.as_str()]))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for TokenType {}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(token_type: TokenType) -> TokenResponse {
        TokenResponse {
            access_token: "a.b.c".into(),
            token_type,
            expires_in: 300,
            refresh_token: "opaque".into(),
            refresh_expires_in: 86400,
            scope: "read write".into(),
        }
    }

    #[test]
    fn the_response_has_the_rfc_6749_fields_in_their_usual_order() {
        assert_eq!(
            serde_json::to_string(&response(TokenType::Dpop)).unwrap(),
            r#"{"access_token":"a.b.c","token_type":"DPoP","expires_in":300,"refresh_token":"opaque","refresh_expires_in":86400,"scope":"read write"}"#
        );
        assert_eq!(
            serde_json::to_value(response(TokenType::Bearer)).unwrap()["token_type"],
            "Bearer"
        );
    }

    #[test]
    fn token_types_are_read_in_any_letter_case_and_nothing_else_is() {
        for (text, expected) in [
            ("\"Bearer\"", TokenType::Bearer),
            ("\"bearer\"", TokenType::Bearer),
            ("\"DPoP\"", TokenType::Dpop),
            ("\"dpop\"", TokenType::Dpop),
        ] {
            assert_eq!(serde_json::from_str::<TokenType>(text).unwrap(), expected);
        }
        assert!(serde_json::from_str::<TokenType>("\"MAC\"").is_err());
    }

    #[test]
    fn debug_output_shows_no_token() {
        let shown = format!("{:?}", response(TokenType::Bearer));

        assert!(
            !shown.contains("a.b.c") && !shown.contains("opaque"),
            "{shown}"
        );
    }
}
