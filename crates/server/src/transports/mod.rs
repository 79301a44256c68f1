//! Transports translate a connection into command-layer requests and write bytes. They know
//! their wire format and nothing about missions, chat or payments: they never import `apps`.
//!
//! - [`ws`] (with [`native`], its codec over the command layer): the native WebSocket.
//! - [`socketio`]: Socket.IO v4: its websocket transport served here, polling on socketioxide.
//! - [`ws_read`]: the socket side both WebSocket transports share.
//! - [`write_loop`]: the one write loop both socket transports run, behind a small seam.
//! - [`feed`]: a read-only multi-channel feed, shared by [`sse`] and [`poll`].
//! - [`expiry`]: closing a connection when its token expires.

pub mod expiry;
pub mod feed;
pub mod native;
pub mod poll;
pub mod socketio;
pub mod sse;
pub mod write_loop;
pub mod ws;
pub mod ws_read;

/// The per-IP permit a long-lived connection (a WebSocket, a Socket.IO socket, an SSE stream)
/// takes for itself when it came through a trusted proxy: the proxy's TCP connection took
/// none, since it carries many clients (`http::forwarded`). `None` for a direct connection,
/// whose TCP permit already counts it; `Err` when the client's address has the maximum.
pub fn proxied_permit(
    node: &crate::node::Node,
    proxied: bool,
    ip: std::net::IpAddr,
) -> Result<Option<crate::limits::connections::ConnectionPermit>, TooManyConnections> {
    if !proxied {
        return Ok(None);
    }
    match node.connections.acquire(ip) {
        Some(permit) => Ok(Some(permit)),
        None => {
            tracing::info!(peer = %ip, "too many connections from this address (behind a trusted proxy)");
            Err(TooManyConnections)
        }
    }
}

/// `limits.max_connections_per_ip` reached for a client behind a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct TooManyConnections;

/// The message every transport refuses such a client with (the same as the accept loop's).
pub const TOO_MANY_CONNECTIONS: &str = "Too many connections from this address";
