//! What operators and backends use beside the apps: liveness and readiness, metrics, the
//! admin API, the server-side publish API, and the embedded console.
//!
//! - [`health`]: `/healthz`, `/readyz`.
//! - [`metrics`]: `/metrics` (Prometheus text).
//! - [`admin`]: `/api/admin/…`, cluster-wide stats, channels, presence and disconnect.
//! - [`console`]: the console at `/` and the embedded JavaScript client at `/client/…`.
//! - [`publish`]: `POST /api/publish`.
//! - [`client`]: the client API over HTTP for SSE and long-poll clients (publish, presence,
//!   ack).

pub mod admin;
pub mod client;
pub mod console;
pub mod health;
pub mod metrics;
pub mod publish;
