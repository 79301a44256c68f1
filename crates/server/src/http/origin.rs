//! The Origin allow-list (`security.allowed_origins`) for WebSocket handshakes and CORS.
//!
//! Allowed: no Origin header (non-browser clients), an Origin on the list, any Origin when the
//! list has `"*"`, and same-origin requests (the page was served by this server, so the console
//! works on whatever address the server listens on).

use axum::http::{HeaderMap, HeaderValue, header};

/// Decides whether a request's Origin may talk to the server.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    any: bool,
    allowed: Vec<String>,
}

impl OriginPolicy {
    /// From `security.allowed_origins`.
    pub fn new(allowed: &[String]) -> Self {
        Self {
            any: allowed.iter().any(|o| o == "*"),
            allowed: allowed
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether `origin` is on the list (or the list allows any).
    pub fn allows_origin(&self, origin: &HeaderValue) -> bool {
        if self.any {
            return true;
        }
        origin.to_str().is_ok_and(|o| {
            let o = o.trim_end_matches('/').to_ascii_lowercase();
            self.allowed.contains(&o)
        })
    }

    /// Whether a request with these headers may proceed.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        self.allows_origin(origin) || same_origin(headers, origin)
    }
}

/// Logs a refused Origin for the operator: which origin, on which transport, and the setting
/// that would allow it. The origin is what a browser sent, not a secret.
pub fn log_refusal(transport: &'static str, headers: &HeaderMap) {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .unwrap_or("?");
    tracing::info!(
        transport,
        origin,
        "origin {origin} is not allowed; add it to security.allowed_origins to let it connect"
    );
}

fn same_origin(headers: &HeaderMap, origin: &HeaderValue) -> bool {
    let (Some(host), Ok(origin)) = (headers.get(header::HOST), origin.to_str()) else {
        return false;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/').eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn allow_list() {
        let p = OriginPolicy::new(&["http://localhost:3000".into()]);
        assert!(p.allows(&headers(None, "127.0.0.1:3000")));
        assert!(p.allows(&headers(Some("http://localhost:3000"), "x")));
        assert!(p.allows(&headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000")));
        assert!(!p.allows(&headers(Some("http://evil.example"), "127.0.0.1:3000")));
        assert!(!p.allows(&headers(Some("null"), "127.0.0.1:3000")));
        let any = OriginPolicy::new(&["*".into()]);
        assert!(any.allows(&headers(Some("http://evil.example"), "h")));
    }
}
