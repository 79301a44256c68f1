//! What operators and backends use beside the apps: liveness and readiness, metrics, the
//! admin API, the server-side publish API, the embedded console, and the API's own
//! description.
//!
//! - [`health`]: `/healthz`, `/readyz`.
//! - [`metrics`]: `/metrics` (Prometheus text).
//! - [`admin`]: `/api/admin/…`, cluster-wide stats, channels, presence and disconnect.
//! - [`console`]: the console at `/` and the embedded JavaScript client at `/client/…`.
//! - [`publish`]: `POST /api/publish`.
//! - [`client`]: the client API over HTTP for SSE and long-poll clients (publish, presence,
//!   ack).
//! - [`openapi`]: `/openapi.json`, generated from the handlers and DTOs, and `/docs`.

pub mod admin;
pub mod client;
pub mod console;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod publish;
