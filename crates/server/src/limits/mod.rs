//! Limits every transport and route shares, in one place: token buckets for client messages
//! and REST writes ([`rate`], applied to REST by the [`rest`] middleware) and the per-IP
//! connection count ([`connections`]). They know nothing of nodes or protocols; the node owns
//! one of each and the transports consult them.
//!
//! The buckets are our own (`rate`): they are keyed by user or IP, shared across connections,
//! swept when full, and need `Retry-After`; the crate the ecosystem uses for this, `governor`,
//! would fit too and may replace them (see the operations issue).

pub mod connections;
pub mod rate;
pub mod rest;
