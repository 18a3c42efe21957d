//! Reading a JWT without verifying it (the client has no business trusting or refusing
//! its own token: the servers do that), and human-friendly durations.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The decoded header and claims of a token.
#[derive(Debug, Clone)]
pub struct DecodedToken {
    /// The JOSE header.
    pub header: Value,
    /// The claims.
    pub claims: Value,
}

/// Decodes the first two segments of a compact JWS.
pub fn decode(token: &str) -> Option<DecodedToken> {
    let mut parts = token.split('.');
    let header = parts.next()?;
    let claims = parts.next()?;
    let json = |segment: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).ok()?).ok()
    };
    Some(DecodedToken {
        header: json(header)?,
        claims: json(claims)?,
    })
}

/// Seconds since the Unix epoch, by this machine's clock: for what is shown to people
/// (decisions read the client's [`Clock`](shared_claims::protocol::Clock)).
pub fn now() -> i64 {
    use shared_claims::protocol::Clock as _;
    shared_claims::protocol::SystemClock.now_secs()
}

/// `4m 12s`, `2h 5m`, `3d 4h`: the two largest units.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.unsigned_abs();
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// `expires in 4m 12s` or `expired 3m 0s ago`.
pub fn expiry_phrase(at: i64, now: i64) -> String {
    if at > now {
        format!("expires in {}", human_duration(at - now))
    } else {
        format!("expired {} ago", human_duration(now - at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        assert_eq!(human_duration(42), "42s");
        assert_eq!(human_duration(252), "4m 12s");
        assert_eq!(human_duration(2 * 3600 + 5 * 60 + 9), "2h 5m");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600), "3d 4h");
        assert_eq!(expiry_phrase(100, 40), "expires in 1m 0s");
        assert_eq!(expiry_phrase(40, 100), "expired 1m 0s ago");
    }

    #[test]
    fn a_token_decodes_without_verification_and_garbage_does_not() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#);
        let claims = URL_SAFE_NO_PAD.encode(r#"{"exp":5}"#);
        let decoded = decode(&format!("{header}.{claims}.sig")).unwrap();
        assert_eq!(decoded.header["alg"], "RS256");
        assert_eq!(decoded.claims["exp"], 5);
        assert!(decode("garbage").is_none());
        assert!(decode("a.b.c").is_none());
    }
}
