//! The one catalogue of close codes and error codes, with whether a client should reconnect.
//!
//! Centrifuge keeps every disconnect reason in one place; so do we, so that a transport never
//! invents its own numbers or wording.
//!
//! Whether to reconnect is a rule over ranges of the number ([`reconnect_policy`]), not a
//! property of each catalogue entry, so a client decides from the number alone, including for
//! codes it has never heard of (docs/protocol.md, "Close codes"):
//!
//! | codes | class | [`Reconnect`] |
//! |---|---|---|
//! | 1000 | normal closure: the session is over | `No` |
//! | 1001–2999 | standard WebSocket codes (1001 heartbeat timeout, 1006 abnormal, 1009 too big, 1012 restarting) | `Yes` |
//! | 4000–4003 | authentication refused (4001 required, 4002 invalid) | `No` |
//! | 4004–4007 | credentials expired (4004) | `AfterNewToken` |
//! | 4008–4009 | load shedding (4008 rate limited, 4009 slow consumer) | `Yes` |
//! | 4010–4099 | client misbehaviour or administrator (4010, 4011) | `No` |
//! | anything else | not assigned by Switchboard: treated as a transient failure | `Yes` |

/// Why the server closes a WebSocket (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: normal closure.
    Normal,
    /// 1001: the client answered no ping within `heartbeat.timeout_ms`; the server counts the
    /// connection as dead. A client that sees it (its network came back) reconnects.
    HeartbeatTimeout,
    /// 1009: a client message was larger than `limits.max_message_bytes`.
    MessageTooBig,
    /// 1012: the server is restarting; reconnect (to another node).
    Restarting,
    /// 4001: the channel or action needs a token and none was given.
    AuthRequired,
    /// 4002: the token could not be verified.
    InvalidToken,
    /// 4004: the token expired.
    TokenExpired,
    /// 4008: the client kept sending after being rate limited.
    RateLimited,
    /// 4009: the client could not keep up with its outbound queue.
    SlowConsumer,
    /// 4010: too many invalid messages in a row.
    TooManyInvalid,
    /// 4011: an administrator ended the connection; reconnecting would undo their decision.
    AdminDisconnect,
}

/// What a client should do after a close, decided by [`reconnect_policy`] from the code alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reconnect {
    /// Reconnect (with backoff) and resume with the same credentials.
    Yes,
    /// Fetch a fresh token first (the old one expired), then reconnect.
    AfterNewToken,
    /// Do not reconnect automatically: the session is over, the credentials were refused, or
    /// the client must be fixed or was removed on purpose. Only a user action starts again.
    No,
}

/// The reconnect rule over ranges of the numeric close code (the table in the module docs and
/// docs/protocol.md). Total over `u16`: codes Switchboard never sends — `1006` reported by a
/// browser after a network drop, a proxy's code, a future one — fall in a range too.
///
/// A new catalogue code must be placed in the range of its class, so that clients already
/// deployed treat it right: a "do not reconnect" code in 4012–4099, a "new token" one in
/// 4005–4007, an authentication refusal in 4000–4003.
pub fn reconnect_policy(code: u16) -> Reconnect {
    match code {
        1000 => Reconnect::No,
        4000..=4003 => Reconnect::No,
        4004..=4007 => Reconnect::AfterNewToken,
        4010..=4099 => Reconnect::No,
        // 1001–2999 (standard), 4008–4009 (load shedding), and everything not assigned.
        _ => Reconnect::Yes,
    }
}

impl CloseCode {
    /// Every catalogue entry, in numeric order (for tests, documentation and clients that map
    /// a number back to an entry).
    pub const ALL: [CloseCode; 11] = [
        Self::Normal,
        Self::HeartbeatTimeout,
        Self::MessageTooBig,
        Self::Restarting,
        Self::AuthRequired,
        Self::InvalidToken,
        Self::TokenExpired,
        Self::RateLimited,
        Self::SlowConsumer,
        Self::TooManyInvalid,
        Self::AdminDisconnect,
    ];

    /// The catalogue entry for a number received in a close frame, if it is one of ours.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The numeric code sent in the close frame.
    pub fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::HeartbeatTimeout => 1001,
            Self::MessageTooBig => 1009,
            Self::Restarting => 1012,
            Self::AuthRequired => 4001,
            Self::InvalidToken => 4002,
            Self::TokenExpired => 4004,
            Self::RateLimited => 4008,
            Self::SlowConsumer => 4009,
            Self::TooManyInvalid => 4010,
            Self::AdminDisconnect => 4011,
        }
    }

    /// The reason text sent in the close frame (short: a close reason is at most 123 bytes).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Normal => "Normal closure",
            Self::HeartbeatTimeout => "Heartbeat timeout",
            Self::MessageTooBig => "Message too big",
            Self::Restarting => "Server restarting",
            Self::AuthRequired => "Authentication required",
            Self::InvalidToken => "Invalid token",
            Self::TokenExpired => "Token expired",
            Self::RateLimited => "Rate limit exceeded",
            Self::SlowConsumer => "Slow consumer",
            Self::TooManyInvalid => "Too many invalid messages",
            Self::AdminDisconnect => "disconnected by an administrator",
        }
    }

    /// What a client should do after this close: [`reconnect_policy`] of its number.
    pub fn reconnect(self) -> Reconnect {
        reconnect_policy(self.code())
    }

    /// Whether a well-behaved client should reconnect after this close without user action or
    /// anything new (no fresh token): [`reconnect`](Self::reconnect) is [`Reconnect::Yes`].
    /// This is the `reconnect` boolean of the SSE and Socket.IO close notices.
    pub fn should_reconnect(self) -> bool {
        self.reconnect() == Reconnect::Yes
    }
}

/// Error codes of `{"type":"error","code":…}` frames (SPEC §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The frame was not JSON.
    InvalidJson,
    /// JSON, but not an object with a string `type`, or fields of the wrong shape.
    InvalidMessage,
    /// A `type` the server does not know.
    UnknownType,
    /// The token does not allow this channel or action.
    Forbidden,
    /// The thing asked for does not exist.
    NotFound,
    /// Too many messages; slow down.
    RateLimited,
    /// Well-formed, but the values are not acceptable (bad channel name, empty message…).
    BadRequest,
}

impl ErrorCode {
    /// The wire value of `code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidMessage => "invalid_message",
            Self::UnknownType => "unknown_type",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::RateLimited => "rate_limited",
            Self::BadRequest => "bad_request",
        }
    }

    /// The default human message for the code; the two fixed by SPEC §4.1 are exact.
    pub fn default_message(self) -> &'static str {
        match self {
            Self::InvalidJson => "Invalid JSON",
            Self::InvalidMessage => "Invalid message format",
            Self::UnknownType => "Unknown message type",
            Self::Forbidden => "Not allowed",
            Self::NotFound => "Not found",
            Self::RateLimited => "Rate limit exceeded",
            Self::BadRequest => "Bad request",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_match_the_spec_table() {
        let table = [
            (CloseCode::MessageTooBig, 1009),
            (CloseCode::Restarting, 1012),
            (CloseCode::AuthRequired, 4001),
            (CloseCode::InvalidToken, 4002),
            (CloseCode::TokenExpired, 4004),
            (CloseCode::RateLimited, 4008),
            (CloseCode::SlowConsumer, 4009),
            (CloseCode::TooManyInvalid, 4010),
            (CloseCode::AdminDisconnect, 4011),
        ];
        for (c, n) in table {
            assert_eq!(c.code(), n);
            assert!(c.reason().len() <= 123);
        }
        assert_eq!(CloseCode::AuthRequired.reason(), "Authentication required");
        assert_eq!(CloseCode::InvalidToken.reason(), "Invalid token");
    }

    #[test]
    fn every_catalogue_code_is_in_its_documented_class() {
        use Reconnect::{AfterNewToken, No, Yes};
        let classes = [
            (CloseCode::Normal, No),
            (CloseCode::HeartbeatTimeout, Yes),
            (CloseCode::MessageTooBig, Yes),
            (CloseCode::Restarting, Yes),
            (CloseCode::AuthRequired, No),
            (CloseCode::InvalidToken, No),
            (CloseCode::TokenExpired, AfterNewToken),
            (CloseCode::RateLimited, Yes),
            (CloseCode::SlowConsumer, Yes),
            (CloseCode::TooManyInvalid, No),
            (CloseCode::AdminDisconnect, No),
        ];
        assert_eq!(
            classes.len(),
            CloseCode::ALL.len(),
            "a code without a class"
        );
        for (c, class) in classes {
            assert_eq!(c.reconnect(), class, "{c:?}");
            assert_eq!(reconnect_policy(c.code()), class, "{c:?}");
        }
        assert_eq!(
            CloseCode::AdminDisconnect.reason(),
            "disconnected by an administrator"
        );
    }

    #[test]
    fn should_reconnect_keeps_its_booleans() {
        // The values sent as `reconnect` in close notices before the rule existed.
        let before = [
            (CloseCode::Normal, false),
            (CloseCode::MessageTooBig, true),
            (CloseCode::Restarting, true),
            (CloseCode::AuthRequired, false),
            (CloseCode::InvalidToken, false),
            (CloseCode::TokenExpired, false),
            (CloseCode::RateLimited, true),
            (CloseCode::SlowConsumer, true),
            (CloseCode::TooManyInvalid, false),
            (CloseCode::AdminDisconnect, false),
        ];
        for (c, yes) in before {
            assert_eq!(c.should_reconnect(), yes, "{c:?}");
        }
    }

    #[test]
    fn the_rule_is_total_over_u16_and_follows_the_ranges() {
        for code in 0..=u16::MAX {
            let expected = match code {
                1000 | 4000..=4003 | 4010..=4099 => Reconnect::No,
                4004..=4007 => Reconnect::AfterNewToken,
                _ => Reconnect::Yes,
            };
            assert_eq!(reconnect_policy(code), expected, "{code}");
        }
        // Range edges, spelled out.
        assert_eq!(reconnect_policy(999), Reconnect::Yes);
        assert_eq!(reconnect_policy(1001), Reconnect::Yes);
        assert_eq!(reconnect_policy(1006), Reconnect::Yes);
        assert_eq!(reconnect_policy(2999), Reconnect::Yes);
        assert_eq!(reconnect_policy(3999), Reconnect::Yes);
        assert_eq!(reconnect_policy(4000), Reconnect::No);
        assert_eq!(reconnect_policy(4007), Reconnect::AfterNewToken);
        assert_eq!(reconnect_policy(4008), Reconnect::Yes);
        assert_eq!(reconnect_policy(4009), Reconnect::Yes);
        assert_eq!(reconnect_policy(4099), Reconnect::No);
        assert_eq!(reconnect_policy(4100), Reconnect::Yes);
    }

    #[test]
    fn from_code_finds_every_entry_and_nothing_else() {
        for c in CloseCode::ALL {
            assert_eq!(CloseCode::from_code(c.code()), Some(c));
        }
        assert_eq!(CloseCode::from_code(1006), None);
        assert!(CloseCode::ALL.windows(2).all(|w| w[0].code() < w[1].code()));
    }

    #[test]
    fn fixed_error_messages() {
        assert_eq!(ErrorCode::InvalidJson.default_message(), "Invalid JSON");
        assert_eq!(
            ErrorCode::InvalidMessage.default_message(),
            "Invalid message format"
        );
    }
}
