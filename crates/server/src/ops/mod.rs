//! What operators and backends use beside the apps: liveness and readiness, the server-side
//! publish API, and the embedded console.
//!
//! - [`health`]: `/healthz`, `/readyz`.
//! - [`console`]: the console at `/` and the embedded JavaScript client at `/client/…`.
//! - [`publish`]: `POST /api/publish`.
//! - [`client`]: the client API over HTTP for SSE and long-poll clients (publish, presence,
//!   ack).

pub mod client;
pub mod console;
pub mod health;
pub mod publish;
