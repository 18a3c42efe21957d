//! The refresh-token codec: `base64url(version ‖ sid ‖ generation ‖ HMAC-SHA256)`.
//!
//! A token names its session and generation and proves the server minted it. The same
//! inputs always give the same token, so a concurrent retry can be handed the very same
//! successor without storing it, and Redis, which holds only the generation, holds nothing
//! that refreshes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use uuid::Uuid;

/// Length of a refresh token's binary form: version, sid, generation, MAC.
const TOKEN_BYTES: usize = 1 + 16 + 8 + 32;
const TOKEN_VERSION: u8 = 1;
const MAC_CONTEXT: &[u8] = b"refresh-token/v1";

/// Mints and opens refresh tokens with the server-side secret.
pub struct RefreshTokens {
    key: hmac::Key,
}

impl std::fmt::Debug for RefreshTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshTokens(..)")
    }
}

impl RefreshTokens {
    /// Uses `secret` (at least 32 bytes) as the HMAC-SHA256 key.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// A short, non-secret name of the secret, so the service can notice at start that
    /// the secret changed (which silently ends every session): the first 8 bytes of an
    /// HMAC under the secret of a fixed label, in hex. It reveals nothing of the secret.
    pub fn fingerprint(&self) -> String {
        hmac::sign(&self.key, b"refresh-token/fingerprint")
            .as_ref()
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn mac(&self, sid: &Uuid, generation: u64) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(MAC_CONTEXT);
        ctx.update(sid.as_bytes());
        ctx.update(&generation.to_be_bytes());
        ctx.sign()
    }

    /// The token of `generation` of session `sid`; the same inputs give the same token.
    pub fn mint(&self, sid: &Uuid, generation: u64) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_BYTES);
        bytes.push(TOKEN_VERSION);
        bytes.extend_from_slice(sid.as_bytes());
        bytes.extend_from_slice(&generation.to_be_bytes());
        bytes.extend_from_slice(self.mac(sid, generation).as_ref());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The session and generation a token names, if we minted it; constant-time check.
    pub fn open(&self, token: &str) -> Option<(Uuid, u64)> {
        if token.len() != (TOKEN_BYTES * 4).div_ceil(3) {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        if bytes.len() != TOKEN_BYTES || bytes[0] != TOKEN_VERSION {
            return None;
        }
        let sid = Uuid::from_slice(&bytes[1..17]).ok()?;
        let generation = u64::from_be_bytes(bytes[17..25].try_into().ok()?);
        let mut ctx = Vec::with_capacity(MAC_CONTEXT.len() + 24);
        ctx.extend_from_slice(MAC_CONTEXT);
        ctx.extend_from_slice(&bytes[1..25]);
        hmac::verify(&self.key, &ctx, &bytes[25..]).ok()?;
        Some((sid, generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> RefreshTokens {
        RefreshTokens::new(&[7u8; 32])
    }

    #[test]
    fn a_minted_token_opens_to_its_session_and_generation() {
        let sid = Uuid::new_v4();
        let token = tokens().mint(&sid, 42);
        assert_eq!(tokens().open(&token), Some((sid, 42)));
        // The same inputs give the same token: the basis of the grace window.
        assert_eq!(tokens().mint(&sid, 42), token);
        assert_ne!(tokens().mint(&sid, 43), token);
        // ≥ 256 bits of MAC, URL-safe.
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn tampered_or_foreign_tokens_do_not_open() {
        let sid = Uuid::new_v4();
        let token = tokens().mint(&sid, 1);
        let mut tampered = token.clone().into_bytes();
        tampered[30] = if tampered[30] == b'A' { b'B' } else { b'A' };
        assert_eq!(tokens().open(&String::from_utf8(tampered).unwrap()), None);
        assert_eq!(RefreshTokens::new(&[8u8; 32]).open(&token), None);
        assert_eq!(tokens().open(""), None);
        assert_eq!(tokens().open(&"A".repeat(10_000)), None);
        assert_eq!(tokens().open("not a token"), None);
    }

    #[test]
    fn the_fingerprint_names_the_secret_without_revealing_it() {
        let fingerprint = tokens().fingerprint();
        assert_eq!(fingerprint.len(), 16);
        assert_eq!(fingerprint, tokens().fingerprint());
        assert_ne!(fingerprint, RefreshTokens::new(&[8u8; 32]).fingerprint());
    }
}
