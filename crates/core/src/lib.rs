//! switchboard-core: the transport-independent heart of Switchboard.
//!
//! - [`channel`]: validated channel names and namespaces.
//! - [`publication`]: publications, stream positions, per-audience payloads.
//! - [`auth`]: JWT verification (algorithm pinned), identities, channel permissions.
//! - [`protocol`]: the native protocol v1 codec (sans-IO, tested byte for byte).
//! - [`socketio`]: the Socket.IO event form of a publication (sans-IO).
//! - [`engineio`]: the Engine.IO v4 / Socket.IO v5 packets of the websocket transport
//!   Switchboard serves itself (sans-IO).
//! - [`codes`]: the one catalogue of close and error codes, and the reconnect rule over code
//!   ranges.
//! - [`refusal`]: why a client request was refused, with each reason's one public message.
//! - [`hub`]: this node's subscriptions and the fan-out (encode once, share bytes).
//! - [`gate`]: per-connection merge of catch-up and live deliveries (no gap, no duplicate).
//! - [`broker`]: the Broker trait (offsets, epochs, history) and the in-memory broker.
//! - [`cluster`]: the control plane: live nodes and a question asked of all of them (admin).
//! - [`cursor`]: the opaque multi-channel resume cursor of SSE ids and long-poll answers.
//! - [`sse`]: Server-Sent Events framing around the native delivery JSON.
//! - [`ids`]: unguessable connection and record ids.

#![warn(missing_docs)]

pub mod auth;
pub mod broker;
pub mod channel;
pub mod cluster;
pub mod codes;
pub mod cursor;
pub mod engineio;
pub mod gate;
pub mod hub;
pub mod ids;
pub mod protocol;
pub mod publication;
pub mod refusal;
pub mod socketio;
pub mod sse;
