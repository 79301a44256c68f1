//! What operators and backends use beside the apps: liveness and readiness, the server-side
//! publish API, the embedded console, and the API's own description.
//!
//! - [`health`]: `/healthz`, `/readyz`.
//! - [`console`]: the console at `/` and the embedded JavaScript client at `/client/…`.
//! - [`publish`]: `POST /api/publish`.
//! - [`client`]: the client API over HTTP for SSE and long-poll clients (publish, presence,
//!   ack).
//! - [`openapi`]: `/openapi.json`, generated from the handlers and DTOs, and `/docs`.

pub mod client;
pub mod console;
pub mod health;
pub mod openapi;
pub mod publish;
