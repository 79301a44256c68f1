//! switchboard-client: the Rust client of Switchboard (SPEC §9.2).
//!
//! Two layers, so that one piece of code serves both an application and the server's own
//! protocol tests and load generator:
//!
//! - [`Client`] (module [`client`]): connect with a token or a token provider, subscribe with a
//!   since-position, a [`Subscription`] `Stream` of publications that resumes after every
//!   reconnect (exponential backoff with full jitter, duplicates dropped, `recovered:false`
//!   surfaced as a gap), token refresh in place, publish and presence.
//! - [`Connection`] (module [`connection`]): one native WebSocket, typed messages both ways
//!   ([`message`]) and raw frames when a test needs to send what a client should not.
//!
//! Beside them, sans-IO framing the tests and the load generator share: [`sse`] (the
//! `text/event-stream` reader) and [`socketio`] (Engine.IO v4 / Socket.IO v5 packets).
//!
//! [`backoff`] holds the reconnect delays (exponential, full jitter); [`error`] the one
//! [`ClientError`] of both layers.
//!
//! Channel names, stream positions and the close-code rule come from `switchboard-core`, the
//! same types the server uses, so client and server cannot disagree on them.

#![warn(missing_docs)]
#![doc = include_str!("../README.md")]

pub mod backoff;
pub mod client;
pub mod connection;
pub mod error;
pub mod message;
pub mod socketio;
pub mod sse;

pub use client::{Client, ClientBuilder, Publication, State, Subscription, SubscriptionEvent};
pub use connection::{Connection, Session};
pub use error::ClientError;
pub use message::{ClientMessage, Delivery, Member, ServerFrame, ServerMessage, Welcome};
pub use switchboard_core::channel::ChannelName;
pub use switchboard_core::publication::StreamPosition;
