//! Checking a loaded configuration: derived defaults are filled in and every value is checked
//! once at start-up, so a bad one stops the server with a message naming its key instead of
//! failing later on a client's request.

use super::{Config, ConfigError};

impl Config {
    /// Fills derived defaults and checks values.
    pub fn finish(&mut self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| ConfigError::Invalid {
            key,
            message: message.to_owned(),
        };
        if self.store.url.is_empty() {
            self.store.url = format!(
                "sqlite://{}",
                self.data_dir.join("switchboard.db").display()
            );
        }
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| self.store.url.starts_with(scheme))
        {
            return Err(invalid(
                "store.url",
                "must be sqlite://PATH or postgres://USER@HOST/DB",
            ));
        }
        // rediss:// (TLS) is refused: this build has no TLS for Redis; use a private network
        // or a TLS tunnel.
        if self.broker.url != "memory" && !self.broker.url.starts_with("redis://") {
            return Err(invalid(
                "broker.url",
                "must be \"memory\" or redis://HOST:PORT",
            ));
        }
        if self.broker.prefix.is_empty()
            || !self
                .broker
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-'))
        {
            return Err(invalid(
                "broker.prefix",
                "must be non-empty letters, digits, '_', ':', '.' or '-'",
            ));
        }
        if let Some(path) = &self.auth.public_key_file {
            let pem = std::fs::read(path).map_err(|e| ConfigError::Invalid {
                key: "auth.public_key_file",
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            switchboard_core::auth::JwtVerifier::empty()
                .and_public_key_pem(&pem)
                .map_err(|e| ConfigError::Invalid {
                    key: "auth.public_key_file",
                    message: format!("{}: {e}", path.display()),
                })?;
        }
        if !self.auth.jwt_secret.is_empty() && self.auth.jwt_secret.len() < 16 {
            return Err(invalid(
                "auth.jwt_secret",
                "must be at least 16 characters (or empty to generate one)",
            ));
        }
        for ns in &self.auth.public_namespaces {
            if ns.is_empty() || ns.contains(':') {
                return Err(invalid(
                    "auth.public_namespaces",
                    "entries must be namespace names without ':'",
                ));
            }
        }
        for origin in &self.security.allowed_origins {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(invalid(
                    "security.allowed_origins",
                    "entries must be \"*\" or start with http:// or https://",
                ));
            }
        }
        if self.limits.max_message_bytes < 64 {
            return Err(invalid("limits.max_message_bytes", "must be at least 64"));
        }
        if self.limits.client_messages_per_minute == 0 {
            return Err(invalid(
                "limits.client_messages_per_minute",
                "must be at least 1",
            ));
        }
        if self.limits.rest_writes_per_minute == 0 {
            return Err(invalid(
                "limits.rest_writes_per_minute",
                "must be at least 1",
            ));
        }
        if self.limits.feed_requests_per_minute == 0 {
            return Err(invalid(
                "limits.feed_requests_per_minute",
                "must be at least 1",
            ));
        }
        if self.limits.max_connections_per_ip == 0 {
            return Err(invalid(
                "limits.max_connections_per_ip",
                "must be at least 1",
            ));
        }
        if self.limits.control_frames_per_minute == 0 {
            return Err(invalid(
                "limits.control_frames_per_minute",
                "must be at least 1",
            ));
        }
        if !(100..=600_000).contains(&self.limits.write_timeout_ms) {
            return Err(invalid(
                "limits.write_timeout_ms",
                "must be between 100 and 600000",
            ));
        }
        for (key, value) in [
            (
                "http.header_read_timeout_ms",
                self.http.header_read_timeout_ms,
            ),
            ("http.body_timeout_ms", self.http.body_timeout_ms),
        ] {
            if !(100..=3_600_000).contains(&value) {
                return Err(invalid(key, "must be between 100 and 3600000"));
            }
        }
        if self.http.linger_ms > 60_000 {
            return Err(invalid("http.linger_ms", "must be at most 60000"));
        }
        if self.limits.outbound_queue < 16 {
            return Err(invalid("limits.outbound_queue", "must be at least 16"));
        }
        match (&self.tls.cert, &self.tls.key) {
            (Some(cert), Some(key)) => {
                // Loaded here so a bad file stops start-up with the key named.
                crate::tls::acceptor(cert, key).map_err(|e| ConfigError::Invalid {
                    key: "tls",
                    message: e.to_string(),
                })?;
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(invalid("tls.key", "must be set together with tls.cert"));
            }
            (None, Some(_)) => {
                return Err(invalid("tls.cert", "must be set together with tls.key"));
            }
        }
        if let Err(e) = super::parse_trusted_proxies(&self.security.trusted_proxies) {
            return Err(invalid("security.trusted_proxies", &e));
        }
        if self.presence.ttl_ms < 300 {
            return Err(invalid(
                "presence.ttl_ms",
                "must be at least 300 (nodes refresh their liveness every third of it)",
            ));
        }
        if self.cdc.lease_ms < 100 {
            return Err(invalid(
                "cdc.lease_ms",
                "must be at least 100 (a lease shorter than a publish would be overtaken)",
            ));
        }
        if self.inbox.ttl_secs == 0 {
            return Err(invalid("inbox.ttl_secs", "must be at least 1"));
        }
        if self.heartbeat.interval_ms == 0 {
            return Err(invalid("heartbeat.interval_ms", "must be at least 1"));
        }
        if self.heartbeat.timeout_ms <= self.heartbeat.interval_ms {
            return Err(invalid(
                "heartbeat.timeout_ms",
                "must be greater than heartbeat.interval_ms",
            ));
        }
        if self.sse.heartbeat_ms == 0 {
            return Err(invalid("sse.heartbeat_ms", "must be at least 1"));
        }
        if !(self.payments.max_amount.is_finite() && self.payments.max_amount > 0.0) {
            return Err(invalid("payments.max_amount", "must be a positive number"));
        }
        if !(100..=3_600_000).contains(&self.demo.interval_ms) {
            return Err(invalid(
                "demo.interval_ms",
                "must be between 100 and 3600000",
            ));
        }
        for (name, ns) in &self.namespaces {
            if name.is_empty() || name.contains(':') {
                return Err(invalid(
                    "namespaces",
                    "namespace names must not be empty or contain ':'",
                ));
            }
            if ns.history_size > 100_000 {
                return Err(invalid(
                    "namespaces.*.history_size",
                    "must be at most 100000",
                ));
            }
            if ns.history_size > 0 && ns.history_ttl_secs == 0 {
                return Err(invalid(
                    "namespaces.*.history_ttl_secs",
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }
}
