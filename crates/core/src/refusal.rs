//! Why a client's request was refused, with the one public message for each reason.
//!
//! The native and Socket.IO sessions refuse the same requests for the same reasons (a channel
//! the token does not grant, a subscription limit, a broker outage…). Each reason's wording is
//! written once here, so the two protocols cannot drift apart and no internal error text (a
//! broker's or database's message) ever reaches a client: a failure is logged where it happens
//! and answered with one of these fixed, public messages. Clients and tests compare the
//! messages byte for byte, so changing one is a protocol change (docs/protocol.md, "Errors").

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::channel::ChannelNameError;
use crate::codes::ErrorCode;
use crate::protocol::encode_error;

/// A refused request: the catalogue code and the message shown to the client.
///
/// `Display` is the public message alone, so `refusal.to_string()` is exactly what the client
/// is shown. The fixed messages are `&'static str` and cost no allocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The `code` of the error answer; decides how a client reacts (retry, fix, re-auth).
    pub code: ErrorCode,
    /// The `message` of the error answer. Must be safe to show a client: never built from an
    /// internal error's text.
    pub message: Cow<'static, str>,
}

impl Refusal {
    /// A refusal with any code and message, for the one-off refusals of a single command.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A `bad_request` refusal: well-formed, but the values are not acceptable.
    pub fn bad(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// A refusal with the code's default message ([`ErrorCode::default_message`]), e.g. the
    /// `Rate limit exceeded` answer of a Socket.IO event refused before it was read.
    pub fn of(code: ErrorCode) -> Self {
        Self::new(code, code.default_message())
    }

    /// `forbidden`: the channel may not be read. The wording tells an anonymous client that a
    /// token would help, and an authenticated one that its token does not.
    pub fn forbidden_channel(authenticated: bool) -> Self {
        Self::new(
            ErrorCode::Forbidden,
            if authenticated {
                "Your token does not allow this channel"
            } else {
                "Authentication required for this channel"
            },
        )
    }

    /// `bad_request`: the name is not a channel name; says which rule it breaks.
    pub fn invalid_channel(error: &ChannelNameError) -> Self {
        Self::bad(format!("Invalid channel: {error}"))
    }

    /// `bad_request`: a native `subscribe` to a channel the connection already has.
    pub fn already_subscribed() -> Self {
        Self::bad("Already subscribed")
    }

    /// `bad_request`: `limits.max_subscriptions_per_connection` is reached.
    pub fn too_many_subscriptions() -> Self {
        Self::bad("Too many subscriptions on this connection")
    }

    /// `bad_request`: the channel's position could not be read (broker unavailable); the
    /// subscription was not made and the client may retry.
    pub fn subscription_unavailable() -> Self {
        Self::bad("Subscription temporarily unavailable; retry")
    }

    /// `not_found`: `unsubscribe` from a channel the connection is not on.
    pub fn not_subscribed() -> Self {
        Self::new(ErrorCode::NotFound, "Not subscribed to this channel")
    }

    /// `forbidden`: an `ack` for a channel other than the connection's own `user:<sub>` inbox
    /// (or from an anonymous connection, which has none).
    pub fn ack_not_own_channel() -> Self {
        Self::new(
            ErrorCode::Forbidden,
            "Only your own user channel can be acknowledged",
        )
    }

    /// `bad_request`: the inbox acknowledgement could not be stored; the client may retry
    /// (acknowledgements are cumulative, so a retry is harmless).
    pub fn ack_failed() -> Self {
        Self::bad("Acknowledgement failed; retry")
    }

    /// `bad_request`: the event name of a client `publish` is not 1–64 characters of
    /// letters, digits, `_`, `-`, `.`, `:` (see [`crate::protocol::valid_event_name`]).
    pub fn invalid_event_name() -> Self {
        Self::bad("Invalid event name: 1-64 characters of letters, digits, '_', '-', '.', ':'")
    }

    /// `forbidden`: the namespace does not allow client publishing, or the client may not
    /// read the channel (one answer for both, so it does not reveal which).
    pub fn publish_not_allowed() -> Self {
        Self::new(
            ErrorCode::Forbidden,
            "Publishing is not allowed on this channel",
        )
    }

    /// `forbidden`: a client `publish` used an event name only the server may publish, so no
    /// client can forge a mission update or a chat line.
    pub fn reserved_event() -> Self {
        Self::new(
            ErrorCode::Forbidden,
            "This event name is reserved for the server",
        )
    }

    /// `bad_request`: the broker refused a client `publish`; nothing was published.
    pub fn publish_failed() -> Self {
        Self::bad("Publish failed; retry")
    }

    /// `not_found`: `presence` on a namespace where presence is off.
    pub fn presence_disabled() -> Self {
        Self::new(
            ErrorCode::NotFound,
            "Presence is not enabled for this namespace",
        )
    }

    /// `rate_limited`: the message was over the client's rate and was not processed.
    pub fn rate_limited() -> Self {
        Self::new(ErrorCode::RateLimited, "Rate limit exceeded; slow down")
    }

    /// `forbidden`: an `auth` message with another user's token. A connection's user is fixed
    /// (presence and the inbox are keyed by it); a new user needs a new connection.
    pub fn cannot_change_user() -> Self {
        Self::new(
            ErrorCode::Forbidden,
            "A connection cannot change user; reconnect instead",
        )
    }

    /// `bad_request`: a native lobby `chat` message could not be published.
    pub fn chat_not_sent() -> Self {
        Self::bad("Message could not be sent; retry")
    }

    /// `bad_request`: a Socket.IO `join-room` whose subscription could not be set up.
    pub fn room_join_failed() -> Self {
        Self::bad("Could not join the room; retry")
    }

    /// `bad_request`: a Socket.IO `typing` notice could not be delivered.
    pub fn typing_not_sent() -> Self {
        Self::bad("Could not send; retry")
    }

    /// The native protocol's answer to this refusal: `{"type":"error","code":…,"message":…}`
    /// echoing `ref` (SPEC §4.1).
    pub fn encode_native(&self, r#ref: Option<&RawValue>) -> String {
        encode_error(self.code, &self.message, r#ref)
    }
}

impl From<ChannelNameError> for Refusal {
    fn from(error: ChannelNameError) -> Self {
        Self::invalid_channel(&error)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::channel::ChannelName;

    #[test]
    fn messages_are_exact() {
        let cases = [
            (
                Refusal::forbidden_channel(true),
                ErrorCode::Forbidden,
                "Your token does not allow this channel",
            ),
            (
                Refusal::forbidden_channel(false),
                ErrorCode::Forbidden,
                "Authentication required for this channel",
            ),
            (
                Refusal::already_subscribed(),
                ErrorCode::BadRequest,
                "Already subscribed",
            ),
            (
                Refusal::too_many_subscriptions(),
                ErrorCode::BadRequest,
                "Too many subscriptions on this connection",
            ),
            (
                Refusal::not_subscribed(),
                ErrorCode::NotFound,
                "Not subscribed to this channel",
            ),
            (
                Refusal::ack_not_own_channel(),
                ErrorCode::Forbidden,
                "Only your own user channel can be acknowledged",
            ),
            (
                Refusal::ack_failed(),
                ErrorCode::BadRequest,
                "Acknowledgement failed; retry",
            ),
            (
                Refusal::subscription_unavailable(),
                ErrorCode::BadRequest,
                "Subscription temporarily unavailable; retry",
            ),
            (
                Refusal::publish_failed(),
                ErrorCode::BadRequest,
                "Publish failed; retry",
            ),
            (
                Refusal::publish_not_allowed(),
                ErrorCode::Forbidden,
                "Publishing is not allowed on this channel",
            ),
            (
                Refusal::reserved_event(),
                ErrorCode::Forbidden,
                "This event name is reserved for the server",
            ),
            (
                Refusal::presence_disabled(),
                ErrorCode::NotFound,
                "Presence is not enabled for this namespace",
            ),
            (
                Refusal::rate_limited(),
                ErrorCode::RateLimited,
                "Rate limit exceeded; slow down",
            ),
            (
                Refusal::invalid_event_name(),
                ErrorCode::BadRequest,
                "Invalid event name: 1-64 characters of letters, digits, '_', '-', '.', ':'",
            ),
            (
                Refusal::cannot_change_user(),
                ErrorCode::Forbidden,
                "A connection cannot change user; reconnect instead",
            ),
            (
                Refusal::chat_not_sent(),
                ErrorCode::BadRequest,
                "Message could not be sent; retry",
            ),
            (
                Refusal::room_join_failed(),
                ErrorCode::BadRequest,
                "Could not join the room; retry",
            ),
            (
                Refusal::typing_not_sent(),
                ErrorCode::BadRequest,
                "Could not send; retry",
            ),
            (
                Refusal::of(ErrorCode::RateLimited),
                ErrorCode::RateLimited,
                "Rate limit exceeded",
            ),
        ];
        for (refusal, code, message) in cases {
            assert_eq!(refusal.code, code, "{message}");
            assert_eq!(refusal.message, message);
            assert_eq!(
                refusal.to_string(),
                message,
                "Display is the public message"
            );
        }
    }

    #[test]
    fn invalid_channel_names_the_rule() {
        let e = ChannelName::parse("a b").unwrap_err();
        let r = Refusal::from(e);
        assert_eq!(r.code, ErrorCode::BadRequest);
        assert_eq!(
            r.message,
            "Invalid channel: channel name may only contain letters, digits, '_', ':', '.' and '-'"
        );
        assert_eq!(
            Refusal::invalid_channel(&ChannelName::parse("").unwrap_err()).message,
            "Invalid channel: channel name is empty"
        );
    }

    #[test]
    fn native_answer_is_the_error_frame() {
        let r#ref = RawValue::from_string("7".into()).unwrap();
        assert_eq!(
            Refusal::already_subscribed().encode_native(Some(&r#ref)),
            r#"{"type":"error","code":"bad_request","message":"Already subscribed","ref":7}"#
        );
        assert_eq!(
            Refusal::new(ErrorCode::UnknownType, format!("Unknown event {:?}", "x"))
                .encode_native(None),
            r#"{"type":"error","code":"unknown_type","message":"Unknown event \"x\""}"#
        );
    }
}
