//! What can go wrong talking to a Switchboard server, as one enum so callers can match on the
//! cases that change what they do next (closed with a code, refused, timed out) and log the rest.

use tokio_tungstenite::tungstenite;

/// An error of the client, at either layer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The WebSocket handshake or a frame failed (I/O, protocol, a refused upgrade).
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// The server closed the connection with this close frame (`code` 1005 when the frame had
    /// no status), so the caller can apply the reconnect rule of `switchboard_core::codes`.
    #[error("closed by the server with {code} ({reason})")]
    Closed {
        /// The close code (SPEC §5).
        code: u16,
        /// The reason text of the close frame.
        reason: String,
    },
    /// The stream ended without a close frame (the TCP connection dropped).
    #[error("the connection ended without a close frame")]
    Ended,
    /// A frame was not the JSON the protocol describes.
    #[error("malformed frame from the server: {0}")]
    Malformed(String),
    /// The server answered a request with `{"type":"error"}`.
    #[error("refused by the server: {code}: {message}")]
    Refused {
        /// The error code (`forbidden`, `not_found`, …).
        code: String,
        /// The public message of the error.
        message: String,
    },
    /// The token was refused (`auth_error`); the server closes the connection next.
    #[error("token refused: {0}")]
    AuthRefused(String),
    /// A channel name the server would refuse anyway (SPEC §2), caught before sending.
    #[error("invalid channel name: {0}")]
    InvalidChannel(#[from] switchboard_core::channel::ChannelNameError),
    /// The client was shut down, or stopped for good after a do-not-reconnect close.
    #[error("the client is stopped")]
    Stopped,
    /// The request was sent, but the connection was lost before its answer came.
    #[error("disconnected before the answer arrived")]
    Disconnected,
    /// The token provider failed to give a token.
    #[error("token provider: {0}")]
    TokenProvider(String),
}

impl ClientError {
    /// The close code, when the server ended the connection with one.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            Self::Closed { code, .. } => Some(*code),
            _ => None,
        }
    }
}
