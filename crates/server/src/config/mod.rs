//! Configuration: defaults, then `switchboard.toml` (or `--config FILE`), then
//! `SWITCHBOARD_<SECTION>__<KEY>` environment variables, then command-line flags.
//!
//! Every value is checked at start-up; a bad one stops the server with a message naming the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod keys;
mod sections;
mod validate;

pub use sections::*;

/// The whole configuration (SPEC §8). Unknown keys are refused (with the nearest known key
/// suggested), so a typo never silently leaves a default in place.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// `[http]`: the HTTP server's own timeouts.
    pub http: HttpConfig,
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
    /// `[presence]`.
    pub presence: PresenceConfig,
    /// `[cdc]`.
    pub cdc: CdcConfig,
    /// `[tls]`: serve `https://` and `wss://` directly.
    pub tls: TlsConfig,
    /// `[sse]`: Server-Sent Events at `/events`.
    pub sse: SseConfig,
    /// `[namespaces.<name>]`: per-namespace settings; see [`NamespaceConfig`].
    pub namespaces: BTreeMap<String, NamespaceConfig>,
    /// `[demo]`: the demo city pipeline.
    pub demo: DemoConfig,
    /// `[log]`: the shape of log lines.
    pub log: LogConfig,
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
                trusted_proxies: Vec::new(),
            },
            limits: LimitsConfig {
                max_message_bytes: 1024 * 1024,
                client_messages_per_minute: 100,
                rest_writes_per_minute: 120,
                feed_requests_per_minute: 600,
                max_connections_per_ip: 10_000,
                outbound_queue: 1024,
                max_subscriptions_per_connection: 1000,
                control_frames_per_minute: 600,
                write_timeout_ms: 10_000,
            },
            http: HttpConfig {
                header_read_timeout_ms: 15_000,
                body_timeout_ms: 30_000,
                linger_ms: 2_000,
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
            presence: PresenceConfig { ttl_ms: 30_000 },
            cdc: CdcConfig { lease_ms: 10_000 },
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
            demo: DemoConfig {
                pipeline: None,
                interval_ms: 3_000,
            },
            log: LogConfig::default(),
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
    /// The file, an environment variable or a value could not be read: every problem found,
    /// one a line, each naming its key (without figment's profile prefix) and where it came
    /// from; an unknown key comes with the nearest known one.
    #[error("configuration error: {0}")]
    Load(String),
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
        let mut config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(keys::describe(e)))?;
        config.finish()?;
        Ok(config)
    }

    /// Whether the server speaks TLS itself (both `tls.cert` and `tls.key` set).
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
mod tests;
