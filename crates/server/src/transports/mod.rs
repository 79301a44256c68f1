//! Transports translate a connection into command-layer requests and write bytes. They know
//! their wire format and nothing about missions, chat or payments: they never import `apps`.
//!
//! - [`ws`] (with [`native`], its codec over the command layer): the native WebSocket.
//! - [`socketio`]: Socket.IO v4 on socketioxide.
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
