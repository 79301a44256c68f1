//! Edge helpers for HTTP, below both apps and transports: the REST error type (and the
//! middleware that logs it), reading a REST body into a validated input type (`input`), reading
//! a bearer token, the Origin allow-list, the client address behind trusted proxies, and the
//! request log with its request id. The router that assembles everything is `crate::router`,
//! at the top.

pub mod auth;
pub mod error;
pub mod forwarded;
pub mod input;
pub mod origin;
pub mod request_log;
