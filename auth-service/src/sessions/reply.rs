//! The rotation script's replies (`scripts/rotate.lua`), read into types: a reply the
//! script cannot give (a bug) is refused as an unknown session, never guessed at.

use uuid::Uuid;

/// A session that accepted a refresh: the token to hand out and what to mint with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Granted {
    /// The generation of the refresh token to return.
    pub generation: u64,
    /// Owner.
    pub user_id: Uuid,
    /// Client it was opened with.
    pub client_id: String,
    /// Granted scope.
    pub scope: String,
    /// Milliseconds the returned refresh token stays usable (inactivity and absolute).
    pub ttl_ms: i64,
    /// The owner's `sessions_valid_after` when the session opened, in microseconds;
    /// `None` for sessions opened before epochs were recorded.
    pub epoch: Option<i64>,
}

/// Why a refresh was refused; every case is `invalid_grant` to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such session: never existed, expired, logged out or revoked.
    Unknown,
    /// The session passed its inactivity or absolute limit.
    Expired,
    /// The previous token was retried more often than the grace count allows.
    GraceExhausted,
    /// The current token of a DPoP-bound session without a proof of its key; nothing was
    /// changed, the session lives on.
    WrongKey,
    /// A token newer than the stored generation: Redis lost writes. The session has been
    /// ended, but this is not theft.
    StateLost {
        /// Owner of the ended session, for the log.
        user_id: Option<Uuid>,
    },
    /// A retired token was presented: the session has been revoked.
    Reused {
        /// Owner of the revoked session, for the audit log.
        user_id: Option<Uuid>,
    },
}

/// The outcome of a refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The presented token was current and is now retired.
    Rotated(Granted),
    /// A retry of the just-retired token inside the grace window: same successor.
    Retried(Granted),
    /// A retry of the just-retired token whose rotation reply was lost: same successor.
    Recovered(Granted),
    /// Refused.
    Refused(Refusal),
}

impl Rotation {
    /// Reads a reply of `rotate.lua`.
    pub fn from_reply(reply: &[String]) -> Self {
        let granted = || -> Option<Granted> {
            Some(Granted {
                generation: reply.get(1)?.parse().ok()?,
                user_id: Uuid::parse_str(reply.get(2)?).ok()?,
                client_id: reply.get(3)?.clone(),
                scope: reply.get(4)?.clone(),
                ttl_ms: reply.get(5)?.parse().ok()?,
                epoch: reply.get(6).and_then(|e| e.parse().ok()),
            })
        };
        let owner = || reply.get(1).and_then(|u| Uuid::parse_str(u).ok());
        let unknown = Self::Refused(Refusal::Unknown);
        match reply.first().map(String::as_str) {
            Some("rotated") => granted().map_or(unknown, Self::Rotated),
            Some("retried") => granted().map_or(unknown, Self::Retried),
            Some("recovered") => granted().map_or(unknown, Self::Recovered),
            Some("expired") => Self::Refused(Refusal::Expired),
            Some("grace_exhausted") => Self::Refused(Refusal::GraceExhausted),
            Some("wrong_key") => Self::Refused(Refusal::WrongKey),
            Some("ahead") => Self::Refused(Refusal::StateLost { user_id: owner() }),
            Some("reused") => Self::Refused(Refusal::Reused { user_id: owner() }),
            _ => unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    const UID: &str = "6f1c2a3e-8d4b-4f5a-9c7e-1b2d3e4f5a6b";

    #[test]
    fn granting_replies_carry_what_the_new_tokens_need() {
        let granted = Granted {
            generation: 4,
            user_id: Uuid::parse_str(UID).unwrap(),
            client_id: "cli".into(),
            scope: "read write".into(),
            ttl_ms: 86_400_000,
            epoch: Some(1_764_000_000_000_000),
        };
        let fields = [
            "4",
            UID,
            "cli",
            "read write",
            "86400000",
            "1764000000000000",
        ];
        for (case, expected) in [
            ("rotated", Rotation::Rotated(granted.clone())),
            ("retried", Rotation::Retried(granted.clone())),
            ("recovered", Rotation::Recovered(granted.clone())),
        ] {
            let mut items = vec![case];
            items.extend(fields);
            assert_eq!(Rotation::from_reply(&reply(&items)), expected);
        }
    }

    #[test]
    fn a_session_opened_before_epochs_were_recorded_has_none() {
        let reply = reply(&["rotated", "1", UID, "cli", "read", "1000", ""]);
        let Rotation::Rotated(granted) = Rotation::from_reply(&reply) else {
            panic!("not a grant");
        };
        assert_eq!(granted.epoch, None);
    }

    #[test]
    fn refusals_name_the_owner_where_the_logs_need_it() {
        let owner = Some(Uuid::parse_str(UID).unwrap());
        assert_eq!(
            Rotation::from_reply(&reply(&["reused", UID])),
            Rotation::Refused(Refusal::Reused { user_id: owner })
        );
        assert_eq!(
            Rotation::from_reply(&reply(&["ahead", UID])),
            Rotation::Refused(Refusal::StateLost { user_id: owner })
        );
        assert_eq!(
            Rotation::from_reply(&reply(&["expired"])),
            Rotation::Refused(Refusal::Expired)
        );
        assert_eq!(
            Rotation::from_reply(&reply(&["grace_exhausted"])),
            Rotation::Refused(Refusal::GraceExhausted)
        );
        assert_eq!(
            Rotation::from_reply(&reply(&["wrong_key"])),
            Rotation::Refused(Refusal::WrongKey)
        );
    }

    #[test]
    fn a_malformed_reply_is_an_unknown_session_never_a_grant() {
        for items in [
            &[][..],
            &["unknown"],
            &["rotated", "not a number", UID, "c", "s", "1"],
            &["rotated", "1", "not a uuid", "c", "s", "1"],
            &["retried", "1", UID],
            &["surprise"],
        ] {
            assert_eq!(
                Rotation::from_reply(&reply(items)),
                Rotation::Refused(Refusal::Unknown),
                "{items:?}"
            );
        }
    }
}
