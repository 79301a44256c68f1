//! The one catalogue of close codes and error codes, with whether a client should reconnect.
//!
//! Centrifuge keeps every disconnect reason in one place; so do we, so that a transport never
//! invents its own numbers or wording.

/// Why the server closes a WebSocket (SPEC §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000: normal closure.
    Normal,
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
}

impl CloseCode {
    /// The numeric code sent in the close frame.
    pub fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::MessageTooBig => 1009,
            Self::Restarting => 1012,
            Self::AuthRequired => 4001,
            Self::InvalidToken => 4002,
            Self::TokenExpired => 4004,
            Self::RateLimited => 4008,
            Self::SlowConsumer => 4009,
            Self::TooManyInvalid => 4010,
        }
    }

    /// The reason text sent in the close frame (short: a close reason is at most 123 bytes).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Normal => "Normal closure",
            Self::MessageTooBig => "Message too big",
            Self::Restarting => "Server restarting",
            Self::AuthRequired => "Authentication required",
            Self::InvalidToken => "Invalid token",
            Self::TokenExpired => "Token expired",
            Self::RateLimited => "Rate limit exceeded",
            Self::SlowConsumer => "Slow consumer",
            Self::TooManyInvalid => "Too many invalid messages",
        }
    }

    /// Whether a well-behaved client should reconnect after this close without user action.
    pub fn should_reconnect(self) -> bool {
        matches!(
            self,
            Self::Restarting | Self::SlowConsumer | Self::RateLimited | Self::MessageTooBig
        )
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
        ];
        for (c, n) in table {
            assert_eq!(c.code(), n);
            assert!(c.reason().len() <= 123);
        }
        assert_eq!(CloseCode::AuthRequired.reason(), "Authentication required");
        assert_eq!(CloseCode::InvalidToken.reason(), "Invalid token");
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
