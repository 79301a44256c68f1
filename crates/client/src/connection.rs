//! The low layer: one native WebSocket connection, typed both ways, with the raw frames still
//! reachable.
//!
//! [`Connection`] is what protocol tests and the load generator need: it does not reconnect or
//! remember anything. It is also a `Stream` and `Sink` of raw WebSocket messages, so a test can
//! send a binary or malformed frame, and [`Connection::next_text`] hands out the frame text
//! without parsing it (the load generator only scans frames for a stamp). The reconnecting
//! [`crate::Client`] is built on it.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::ClientError;
use crate::message::{ClientMessage, ServerFrame, ServerMessage, Welcome};

/// One WebSocket connection to `/ws` (or to any WebSocket endpoint, for the load generator's
/// other protocols), over `S`: a plain or TLS TCP stream by default.
pub struct Connection<S = MaybeTlsStream<TcpStream>> {
    socket: WebSocketStream<S>,
}

/// What the server said when the connection opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The `welcome` frame.
    pub welcome: Welcome,
    /// The user of the token given in the URL, when the server accepted one.
    pub user: Option<String>,
}

/// `url` with `token=<token>` added to its query. JWTs are URL-safe (base64url and dots), so
/// no escaping is needed.
pub fn url_with_token(url: &str, token: Option<&str>) -> String {
    match token {
        Some(t) if url.contains('?') => format!("{url}&token={t}"),
        Some(t) => format!("{url}?token={t}"),
        None => url.to_owned(),
    }
}

impl Connection {
    /// Completes the WebSocket handshake for `request` (a URL, or a request with headers such
    /// as `Origin`) and reads nothing: the caller sees every frame, `welcome` included.
    pub async fn open<R>(request: R) -> Result<Self, ClientError>
    where
        R: IntoClientRequest + Unpin,
    {
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self { socket })
    }

    /// Opens `url` (e.g. `ws://127.0.0.1:3000/ws`) with an optional token and reads the
    /// `welcome` and, with a token, `authenticated`. A refused token is the close that
    /// follows the `auth_error` (`ClientError::Closed` with 4002 or 4004).
    pub async fn connect(url: &str, token: Option<&str>) -> Result<(Self, Session), ClientError> {
        let mut conn = Self::open(url_with_token(url, token)).await?;
        let session = conn.read_session(token.is_some()).await?;
        Ok((conn, session))
    }
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// The WebSocket handshake over a stream the caller opened (the load generator binds its
    /// own source addresses and uses small read buffers).
    pub async fn handshake(
        url: &str,
        stream: S,
        config: Option<WebSocketConfig>,
    ) -> Result<Self, ClientError> {
        let (socket, _) = tokio_tungstenite::client_async_with_config(url, stream, config).await?;
        Ok(Self { socket })
    }

    /// Wraps a socket that is already open.
    pub fn from_socket(socket: WebSocketStream<S>) -> Self {
        Self { socket }
    }

    /// The WebSocket itself, for what this type does not offer.
    pub fn into_socket(self) -> WebSocketStream<S> {
        self.socket
    }

    /// The underlying stream (a test may set socket options on the TCP stream).
    pub fn get_mut(&mut self) -> &mut S {
        self.socket.get_mut()
    }

    /// Reads `welcome` and, when `with_token`, the answer to the URL token.
    pub async fn read_session(&mut self, with_token: bool) -> Result<Session, ClientError> {
        let welcome = match self.recv().await?.message {
            ServerMessage::Welcome(w) => w,
            other => {
                return Err(ClientError::Malformed(format!(
                    "expected welcome, got {other:?}"
                )));
            }
        };
        let mut user = None;
        if with_token {
            match self.recv().await?.message {
                ServerMessage::Authenticated { user: u } => user = u,
                ServerMessage::AuthError { .. } => return Err(self.read_close().await),
                other => {
                    return Err(ClientError::Malformed(format!(
                        "expected authenticated, got {other:?}"
                    )));
                }
            }
        }
        Ok(Session { welcome, user })
    }

    /// Sends a typed message, with a `ref` the answer will echo when given.
    pub async fn send_message(
        &mut self,
        message: &ClientMessage,
        r#ref: Option<u64>,
    ) -> Result<(), ClientError> {
        self.send_text(crate::message::encode(message, r#ref)).await
    }

    /// Sends a text frame as it is: the escape hatch for malformed input and other protocols.
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), ClientError> {
        self.socket.send(Message::text(text)).await?;
        Ok(())
    }

    /// The next text frame, unparsed and without a copy. Pings are answered and skipped (by
    /// tungstenite), as are pongs and binary frames; a close frame is
    /// [`ClientError::Closed`], the end of the stream [`ClientError::Ended`].
    pub async fn next_text(&mut self) -> Result<Utf8Bytes, ClientError> {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(t))) => return Ok(t),
                Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err(ClientError::Ended),
            }
        }
    }

    /// The next frame, decoded.
    pub async fn recv(&mut self) -> Result<ServerFrame, ClientError> {
        let text = self.next_text().await?;
        ServerFrame::parse(&text)
    }

    /// Reads until the server's close and returns it as the error it is; frames before it are
    /// dropped.
    pub async fn read_close(&mut self) -> ClientError {
        loop {
            if let Err(e) = self.next_text().await {
                return e;
            }
        }
    }

    /// Starts the closing handshake with `code` (1000: normal closure).
    pub async fn close(&mut self, code: u16) -> Result<(), ClientError> {
        let frame = tungstenite::protocol::CloseFrame {
            code: code.into(),
            reason: Utf8Bytes::default(),
        };
        self.socket.close(Some(frame)).await?;
        Ok(())
    }
}

/// A received close frame as [`ClientError::Closed`] (no frame or no status: 1005, "no status
/// received", as RFC 6455 §7.1.5 names it).
fn closed(frame: Option<tungstenite::protocol::CloseFrame>) -> ClientError {
    match frame {
        Some(f) => ClientError::Closed {
            code: u16::from(f.code),
            reason: f.reason.to_string(),
        },
        None => ClientError::Closed {
            code: 1005,
            reason: String::new(),
        },
    }
}

/// Raw frames in: what a protocol test reads when it wants pings, pongs and close frames too.
impl<S> Stream for Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message, tungstenite::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut Pin::into_inner(self).socket).poll_next(cx)
    }
}

/// Raw frames out: binary frames, pings, and anything else a test must be able to send.
impl<S> Sink<Message> for Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Error = tungstenite::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut Pin::into_inner(self).socket).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        Pin::new(&mut Pin::into_inner(self).socket).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut Pin::into_inner(self).socket).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut Pin::into_inner(self).socket).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_goes_into_the_query() {
        assert_eq!(
            url_with_token("ws://h/ws", Some("a.b.c")),
            "ws://h/ws?token=a.b.c"
        );
        assert_eq!(
            url_with_token("ws://h/ws?x=1", Some("t")),
            "ws://h/ws?x=1&token=t"
        );
        assert_eq!(url_with_token("ws://h/ws", None), "ws://h/ws");
    }
}
