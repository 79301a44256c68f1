//! The sections of the configuration file, one struct each, with their defaults. They are
//! plain data: reading them is in [`super`], checking them in `validate.rs`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchboard_core::broker::HistoryPolicy;

/// `[store]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://…`; empty means `sqlite://<data_dir>/switchboard.db`.
    pub url: String,
}

/// `[broker]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// `memory` (one process) or `redis://…` (several nodes share channels).
    pub url: String,
    /// Prefix of every Redis key and pub/sub channel, so deployments sharing a Redis stay apart.
    pub prefix: String,
}

/// `[auth]`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// Origins allowed for WebSocket handshakes and CORS; `"*"` allows any. Requests without an
    /// Origin header, and same-origin requests, are always allowed.
    pub allowed_origins: Vec<String>,
    /// Proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the client; from
    /// anyone else the header is ignored. Empty by default.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// Parses `security.trusted_proxies`: CIDR blocks (`10.0.0.0/8`) and single addresses
/// (`127.0.0.1`, `::1`); the error names the entry that is neither.
pub fn parse_trusted_proxies(entries: &[String]) -> Result<Vec<ipnet::IpNet>, String> {
    entries
        .iter()
        .map(|e| {
            let e = e.trim();
            e.parse::<ipnet::IpNet>()
                .or_else(|_| e.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{e:?} is not an address or a CIDR block"))
        })
        .collect()
}

/// `[limits]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest client message (WebSocket frame or REST body); bigger ones close with 1009 / 413.
    pub max_message_bytes: usize,
    /// Client messages per minute per user (or IP when anonymous), as a token bucket.
    pub client_messages_per_minute: u32,
    /// REST writes (POST/PUT/DELETE) per minute per user (or IP when anonymous).
    pub rest_writes_per_minute: u32,
    /// Opened SSE streams and long-poll requests (`/events`, `/poll`) per minute per user (or
    /// IP when anonymous), as a token bucket; over it, `429` with `Retry-After`.
    pub feed_requests_per_minute: u32,
    /// Simultaneous connections from one IP.
    pub max_connections_per_ip: usize,
    /// Frames buffered per connection before it is closed as a slow consumer (4009).
    pub outbound_queue: usize,
    /// Channels one connection may subscribe to.
    pub max_subscriptions_per_connection: usize,
    /// WebSocket control frames (ping, pong) one connection may send per minute, as a token
    /// bucket holding as many; over it the connection is closed with 4008. Pongs the server
    /// owes are coalesced, never queued without bound.
    pub control_frames_per_minute: u32,
    /// How long a write to a socket may make no progress before the connection is closed as a
    /// slow consumer (4009): a client that stops reading.
    pub write_timeout_ms: u64,
}

/// `[http]`: timeouts of the HTTP server itself. Long-lived streams (WebSocket, SSE, long-poll)
/// are not subject to them once their response has started; they have their own heartbeats.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Time to receive a complete request head, counted from the connection's opening or from
    /// the end of the previous response: also the idle timeout of a keep-alive connection.
    pub header_read_timeout_ms: u64,
    /// Time to receive a whole request body, counted from the end of its head.
    pub body_timeout_ms: u64,
    /// After the server ends a connection, how long it keeps reading and discarding what the
    /// client still sends (so the kernel never resets the connection over unread bytes and the
    /// client gets the close frame), at most.
    pub linger_ms: u64,
}

/// `[heartbeat]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// WebSocket ping interval.
    pub interval_ms: u64,
    /// Silence after which a connection is terminated.
    pub timeout_ms: u64,
}

/// `[payments]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentsConfig {
    /// How long "processing" takes.
    pub processing_delay_ms: u64,
    /// Amounts above this fail.
    pub max_amount: f64,
}

/// `[cities]`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CitiesConfig {
    /// `[[cities.alerts]]` rules.
    pub alerts: Vec<AlertRule>,
}

/// One alert rule: publish an alert when `metric` goes above `above`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    pub metric: String,
    pub above: f64,
    pub severity: String,
}

/// `[tls]`: both set, the server speaks TLS (rustls); both unset, plain HTTP.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
}

/// `[inbox]`: the durable `user:<sub>` channels.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxConfig {
    /// How long an unacknowledged publication is kept and redelivered, in seconds.
    pub ttl_secs: u64,
}

/// `[presence]`: the presence sets nodes share (SPEC §10).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceConfig {
    /// How long after its node's last sign of life a member is still listed: a node that dies
    /// without saying goodbye (SIGKILL, network loss) has its members gone within this.
    pub ttl_ms: u64,
}

/// `[cdc]`: change capture, rows other writers change published like API writes (SPEC §10).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdcConfig {
    /// How long a node holds a change it took before another node may take it over: a node
    /// that dies between taking a change and publishing it has it published by another node
    /// within this.
    pub lease_ms: u64,
}

/// `[shutdown]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long in-flight work may take after SIGTERM/SIGINT.
    pub grace_ms: u64,
}

/// `[sse]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseConfig {
    /// Interval of the `: ping` comment that keeps idle streams (and proxies) alive.
    pub heartbeat_ms: u64,
    /// The `retry:` advice: how long an `EventSource` waits before reconnecting.
    pub retry_ms: u64,
}

/// `[demo]`: the demo pipeline that keeps the city dashboards alive.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// Whether the demo pipeline runs: it seeds the demo cities that have no snapshot yet, then
    /// posts plausible metrics for them every `interval_ms` (now and then above an alert rule).
    /// Unset: on when the server runs on its generated secret (no `auth.jwt_secret` or
    /// `auth.public_key_file` configured), off otherwise. `serve` resolves it before start.
    pub pipeline: Option<bool>,
    /// Time between two rounds of the demo pipeline.
    pub interval_ms: u64,
}

/// `[log]`: how log lines are written (SPEC §8). What is logged, and at which level, is
/// `RUST_LOG`'s; this only picks the shape of a line.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (the default, for people) or `json` (one JSON object a line, for log pipelines).
    pub format: LogFormat,
}

/// The shape of a log line.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `2026-12-02T02:50:00.123Z  INFO socketio{conn=…}: connected transport=…`.
    #[default]
    Text,
    /// `{"timestamp":…,"level":"INFO","fields":{"message":…},"target":…,"spans":[…]}`.
    Json,
}

/// Settings of one namespace.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
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
