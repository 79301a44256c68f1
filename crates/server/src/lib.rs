//! Switchboard: a real-time API server.
//!
//! A house where each floor imports only the floors below it (docs/architecture.md draws it):
//!
//! - this file: [`serve`], which builds a node and runs the router.
//! - [`router`]: the top; assembles the apps, the transports and the operations routes.
//! - [`apps`], [`transports`], [`ops`]: siblings that never import each other. Apps own
//!   routes, records, DTOs and client events; transports decode requests and write bytes;
//!   ops is what operators use (health, the publish API, the console).
//! - [`commands`]: the one protocol-independent command layer every transport decodes into.
//! - [`node`]: the per-process state, and the app seam ([`node::App`]) where apps and
//!   transports meet.
//! - [`http`], [`limits`]: edge helpers (REST errors, bearer tokens, Origin) and the shared
//!   rate and connection limits.
//! - [`config`], [`cli`], [`tls`]: the ground floor.
//! - [`demo`]: what `serve` adds when it runs as the demo (no secret configured): the secret
//!   kept in the data dir, the printed tokens and the city pipeline. It sits beside the router
//!   (it posts through the cities app).
//! - [`start`]: opening a node before it listens (the data-dir lock, store, broker, readiness),
//!   so every start-up failure is reported, with its cause and the key to fix, before the
//!   banner.
//! - [`accept`]: the HTTP server under [`serve`]: the accept loop, per-IP counting of every
//!   connection, the `[http]` timeouts and the lingering close.
//!
//! The server is a function: [`serve`] takes a config, a bound listener and a shutdown future,
//! so tests run it on `127.0.0.1:0` in-process.

pub mod accept;
pub mod apps;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod http;
pub mod limits;
pub mod node;
pub mod ops;
pub mod router;
pub mod start;
pub mod tls;
pub mod transports;

use std::future::Future;

use tokio::net::TcpListener;

pub use config::Config;
pub use start::{Prepared, ServeError, prepare, verifier_for};

/// Runs a node on `listener` until `shutdown` resolves, then stops within `shutdown.grace_ms`:
/// WebSockets are closed with 1012 and in-flight requests finish. [`prepare`] then
/// [`Prepared::run`], for callers that need nothing in between (the binary waits for
/// readiness and prints its banner there).
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    prepare(config).await?.run(listener, shutdown).await
}
