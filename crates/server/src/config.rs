//! Configuration: defaults, then `switchboard.toml` (or `--config FILE`), then
//! `SWITCHBOARD_<SECTION>__<KEY>` environment variables, then command-line flags.
//!
//! Every value is checked at start-up; a bad one stops the server with a message naming the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use switchboard_core::broker::HistoryPolicy;

/// The whole configuration (SPEC §8).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the SQLite file (and other local state) lives.
    pub data_dir: PathBuf,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[broker]`.
    pub broker: BrokerConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[security]`.
    pub security: SecurityConfig,
    /// `[limits]`.
    pub limits: LimitsConfig,
    /// `[heartbeat]`.
    pub heartbeat: HeartbeatConfig,
    /// `[payments]`.
    pub payments: PaymentsConfig,
    /// `[cities]`.
    pub cities: CitiesConfig,
    /// `[shutdown]`.
    pub shutdown: ShutdownConfig,
    /// `[inbox]`.
    pub inbox: InboxConfig,
    /// `[tls]`: serve `https://` and `wss://` directly.
    pub tls: TlsConfig,
    /// `[sse]`: Server-Sent Events at `/events`.
    pub sse: SseConfig,
    /// `[namespaces.<name>]`: per-namespace settings; see [`NamespaceConfig`].
    pub namespaces: BTreeMap<String, NamespaceConfig>,
}

/// `[store]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://…`; empty means `sqlite://<data_dir>/switchboard.db`.
    pub url: String,
}

/// `[broker]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BrokerConfig {
    /// `memory` (one process) or `redis://…` (several nodes share channels).
    pub url: String,
    /// Prefix of every Redis key and pub/sub channel, so deployments sharing a Redis stay apart.
    pub prefix: String,
}

/// `[auth]`.
#[derive(Clone, Serialize, Deserialize)]
pub struct AuthConfig {
    /// HS256 secret. Empty (and no public key): `serve` generates one and prints demo tokens.
    pub jwt_secret: String,
    /// PEM public key: an RSA key verifies RS256 tokens, an EC P-256 key ES256 tokens. Works
    /// alongside `jwt_secret` (HS256).
    pub public_key_file: Option<PathBuf>,
    /// Namespaces anonymous clients may read.
    pub public_namespaces: Vec<String>,
    /// Whether connections without a token are accepted at all (closed with 4001 if not).
    pub allow_anonymous: bool,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "jwt_secret",
                &if self.jwt_secret.is_empty() {
                    ""
                } else {
                    "***"
                },
            )
            .field("public_key_file", &self.public_key_file)
            .field("public_namespaces", &self.public_namespaces)
            .field("allow_anonymous", &self.allow_anonymous)
            .finish()
    }
}

/// `[security]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecurityConfig {
    /// Origins allowed for WebSocket handshakes and CORS; `"*"` allows any. Requests without an
    /// Origin header, and same-origin requests, are always allowed.
    pub allowed_origins: Vec<String>,
}

/// `[limits]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitsConfig {
    /// Largest client message (WebSocket frame or REST body); bigger ones close with 1009 / 413.
    pub max_message_bytes: usize,
    /// Client messages per minute per user (or IP when anonymous), as a token bucket.
    pub client_messages_per_minute: u32,
    /// REST writes (POST/PUT/DELETE) per minute per user (or IP when anonymous).
    pub rest_writes_per_minute: u32,
    /// Simultaneous connections from one IP.
    pub max_connections_per_ip: usize,
    /// Frames buffered per connection before it is closed as a slow consumer (4009).
    pub outbound_queue: usize,
    /// Channels one connection may subscribe to.
    pub max_subscriptions_per_connection: usize,
}

/// `[heartbeat]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatConfig {
    /// WebSocket ping interval.
    pub interval_ms: u64,
    /// Silence after which a connection is terminated.
    pub timeout_ms: u64,
}

/// `[payments]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentsConfig {
    /// How long "processing" takes.
    pub processing_delay_ms: u64,
    /// Amounts above this fail.
    pub max_amount: f64,
}

/// `[cities]`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct CitiesConfig {
    /// `[[cities.alerts]]` rules.
    pub alerts: Vec<AlertRule>,
}

/// One alert rule: publish an alert when `metric` goes above `above`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertRule {
    /// Metric name.
    pub metric: String,
    /// Threshold.
    pub above: f64,
    /// Severity label.
    pub severity: String,
}

/// `[tls]`: both set, the server speaks TLS (rustls); both unset, plain HTTP.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

/// `[inbox]`: the durable `user:<sub>` channels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboxConfig {
    /// How long an unacknowledged publication is kept and redelivered, in seconds.
    pub ttl_secs: u64,
}

/// `[shutdown]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShutdownConfig {
    /// How long in-flight work may take after SIGTERM/SIGINT.
    pub grace_ms: u64,
}

/// `[sse]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SseConfig {
    /// Interval of the `: ping` comment that keeps idle streams (and proxies) alive.
    pub heartbeat_ms: u64,
    /// The `retry:` advice: how long an `EventSource` waits before reconnecting.
    pub retry_ms: u64,
}

/// Settings of one namespace.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct NamespaceConfig {
    /// Publications kept for recovery.
    pub history_size: usize,
    /// How long they are kept, in seconds.
    pub history_ttl_secs: u64,
    /// Whether clients may `publish` here (server-owned event names stay reserved).
    pub allow_publish: bool,
    /// Whether the `presence` request answers for this namespace.
    pub presence: bool,
    /// Whether members get transient `user_joined` / `user_left` notices when others join or
    /// leave (only where `presence` is on). Off by default: Socket.IO rooms already announce
    /// joins with `user-joined`, and most subscribers do not want the chatter.
    pub join_leave: bool,
}

impl Default for NamespaceConfig {
    fn default() -> Self {
        Self {
            history_size: 0,
            history_ttl_secs: 300,
            allow_publish: false,
            presence: false,
            join_leave: false,
        }
    }
}

impl NamespaceConfig {
    /// The broker's view of this namespace's history.
    pub fn history(&self) -> HistoryPolicy {
        HistoryPolicy {
            size: self.history_size,
            ttl: Duration::from_secs(self.history_ttl_secs),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let ns = |size, ttl, publish, presence| NamespaceConfig {
            history_size: size,
            history_ttl_secs: ttl,
            allow_publish: publish,
            presence,
            join_leave: false,
        };
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            data_dir: PathBuf::from("./data"),
            store: StoreConfig { url: String::new() },
            broker: BrokerConfig {
                url: "memory".into(),
                prefix: "switchboard".into(),
            },
            auth: AuthConfig {
                jwt_secret: String::new(),
                public_key_file: None,
                public_namespaces: vec!["missions".into(), "lobby".into(), "room".into()],
                allow_anonymous: true,
            },
            security: SecurityConfig {
                allowed_origins: vec!["http://localhost:3000".into()],
            },
            limits: LimitsConfig {
                max_message_bytes: 1024 * 1024,
                client_messages_per_minute: 100,
                rest_writes_per_minute: 120,
                max_connections_per_ip: 10_000,
                outbound_queue: 1024,
                max_subscriptions_per_connection: 1000,
            },
            heartbeat: HeartbeatConfig {
                interval_ms: 30_000,
                timeout_ms: 60_000,
            },
            payments: PaymentsConfig {
                processing_delay_ms: 2000,
                max_amount: 10_000.0,
            },
            cities: CitiesConfig {
                alerts: vec![AlertRule {
                    metric: "air_quality".into(),
                    above: 150.0,
                    severity: "critical".into(),
                }],
            },
            shutdown: ShutdownConfig { grace_ms: 10_000 },
            inbox: InboxConfig { ttl_secs: 86_400 },
            tls: TlsConfig::default(),
            sse: SseConfig {
                heartbeat_ms: 15_000,
                retry_ms: 3_000,
            },
            namespaces: BTreeMap::from([
                ("missions".into(), ns(100, 300, false, false)),
                ("lobby".into(), ns(100, 300, false, true)),
                ("room".into(), ns(100, 300, true, true)),
                ("city".into(), ns(10, 300, false, false)),
                ("conn".into(), ns(100, 300, false, false)),
                ("user".into(), ns(1000, 86_400, false, false)),
            ]),
        }
    }
}

/// Flags that override the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file, an environment variable or a value could not be read.
    #[error("configuration error: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value was read but is not acceptable.
    #[error("configuration error: {key}: {message}")]
    Invalid {
        /// Dotted key, e.g. `heartbeat.timeout_ms`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Loads defaults ← file ← environment ← flags, then validates.
    ///
    /// `file` is `--config`; without it `./switchboard.toml` is read when present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Invalid {
                        key: "--config",
                        message: format!("file {} does not exist", path.display()),
                    });
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None => figment = figment.merge(Toml::file("switchboard.toml")),
        }
        figment = figment.merge(
            Env::prefixed("SWITCHBOARD_")
                .split("__")
                .ignore(&["require_services"]),
        );
        if let Some(listen) = overrides.listen {
            figment = figment.merge(Serialized::default("listen", listen));
        }
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(Serialized::default("data_dir", dir));
        }
        let mut config: Config = figment.extract().map_err(Box::new)?;
        config.finish()?;
        Ok(config)
    }

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
        if self.limits.max_connections_per_ip == 0 {
            return Err(invalid(
                "limits.max_connections_per_ip",
                "must be at least 1",
            ));
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

    /// Whether the server speaks TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls.cert.is_some() && self.tls.key.is_some()
    }

    /// Settings of `namespace` (defaults for unknown ones: no history, no client publish).
    pub fn namespace(&self, namespace: &str) -> NamespaceConfig {
        self.namespaces.get(namespace).copied().unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its (large) error type.
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let mut c = Config::default();
        c.finish().unwrap();
        assert!(c.store.url.ends_with("switchboard.db"));
        assert_eq!(c.listen.port(), 3000);
    }

    #[test]
    fn file_env_and_flags_layer_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "switchboard.toml",
                r#"
                listen = "127.0.0.1:4000"
                [limits]
                max_message_bytes = 2048
                [heartbeat]
                interval_ms = 1000
                timeout_ms = 3000
                "#,
            )?;
            jail.set_env("SWITCHBOARD_LIMITS__MAX_MESSAGE_BYTES", "4096");
            jail.set_env("SWITCHBOARD_AUTH__JWT_SECRET", "a-secret-of-enough-length");
            let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 4000);
            assert_eq!(c.limits.max_message_bytes, 4096);
            assert_eq!(c.heartbeat.interval_ms, 1000);
            assert_eq!(c.auth.jwt_secret, "a-secret-of-enough-length");
            jail.set_env("SWITCHBOARD_LISTEN", "127.0.0.1:5000");
            let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 5000);
            let flags = Overrides {
                listen: Some("127.0.0.1:6000".parse().unwrap()),
                data_dir: None,
            };
            let c = Config::load(None, &flags).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.port(), 6000);
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SWITCHBOARD_LISTEN", "not-an-address");
            let e = Config::load(None, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.to_lowercase().contains("listen"), "{e}");
            jail.clear_env();
            jail.set_env("SWITCHBOARD_HEARTBEAT__TIMEOUT_MS", "10");
            let e = Config::load(None, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("heartbeat.timeout_ms"), "{e}");
            jail.clear_env();
            jail.set_env("SWITCHBOARD_LIMITS__MAX_MESSAGE_BYTES", "lots");
            let e = Config::load(None, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.to_lowercase().contains("max_message_bytes"), "{e}");
            jail.clear_env();
            jail.create_file("bad.toml", "[broker]\nurl = \"kafka://x\"\n")?;
            let e = Config::load(Some(Path::new("bad.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("broker.url"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn scale_out_urls_are_accepted_and_tls_redis_is_refused() {
        let mut c = Config::default();
        c.store.url = "postgres://u:pw@127.0.0.1/db".into();
        c.broker.url = "redis://127.0.0.1:6379".into();
        c.finish().unwrap();
        c.broker.url = "rediss://127.0.0.1:6379".into();
        assert!(c.finish().unwrap_err().to_string().contains("broker.url"));
        c.broker.url = "redis://127.0.0.1:6379".into();
        c.broker.prefix = "bad prefix".into();
        assert!(
            c.finish()
                .unwrap_err()
                .to_string()
                .contains("broker.prefix")
        );
        c.broker.prefix = "switchboard".into();
        c.store.url = "mysql://x".into();
        assert!(c.finish().unwrap_err().to_string().contains("store.url"));
    }
}
