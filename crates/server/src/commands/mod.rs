//! The command layer: one protocol-independent implementation of everything a client can ask.
//!
//! A transport decodes a client message into a [`Request`](request::Request), hands it to its
//! connection's [`Client`](client::Client) with a [`Responder`](request::Responder) that knows
//! the wire format, and writes what comes back. Decisions and refusals — who may subscribe,
//! which event names are reserved, what a refusal says — are made here once, so the native
//! WebSocket and Socket.IO behave the same and say the same. (The model is mini-redis's
//! `cmd/`: one decoded command type, one place that applies it.)
//!
//! - [`request`]: the requests, the typed replies, and the `Responder` seam.
//! - [`client`]: a connection's command state and the dispatch of one request.
//! - [`subscribe`]: subscribe, unsubscribe, implicit joins.
//! - [`publish`]: client publish, presence, inbox acks.
//! - [`auth`]: who a connection is: handshake admission and the in-band `auth` refresh.
//! - [`scope`]: an app's client events, with the client they came from.
//! - [`connection`]: a connection's identity, queue handle and joined channels.

pub mod auth;
pub mod client;
pub mod connection;
pub mod publish;
pub mod request;
pub mod scope;
pub mod subscribe;
