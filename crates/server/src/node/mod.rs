//! The Node: one per process. It owns configuration, store, broker, hub, the limits and the
//! shutdown signal, and it holds the registered apps. Apps and transports never meet each
//! other; they meet here.
//!
//! - this file: [`Node`], and the app seam — the [`App`] trait an app implements to register
//!   its routes, the event names it owns, its client events, what a client joining one of its
//!   channels first receives, and how a row changed outside the API becomes its publication.
//!   The seam lives beside `Node` because each refers to the other (a node holds apps; an app
//!   is called with the node), and one file keeps that loop out of the module graph.
//! - [`publish`]: publishing, recovery, and the inbox ack (`impl Node`).
//! - [`membership`]: joining and leaving channels with presence notices (`impl Node`).
//! - [`inbox`]: the durable `user:<sub>` inbox.
//! - [`changes`]: rows changed outside the API, handed to the app that owns them.
//! - [`scope`]: what an app's client-event handler may do with the client that sent it.
//! - [`sessions`]: every connection this node holds (gauges, admin listing and disconnect).
//! - [`metrics`]: the node's Prometheus families, counted per batch on the hot paths.
//! - [`error`]: why a publication or an app hook failed.

pub mod changes;
pub mod error;
pub mod inbox;
pub mod membership;
pub mod metrics;
pub mod publish;
pub mod scope;
pub mod sessions;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::Router;
use serde_json::Value;
use switchboard_core::auth::{AccessPolicy, AuthError, Identity, JwtVerifier};
use switchboard_core::broker::Broker;
use switchboard_core::channel::ChannelName;
use switchboard_core::cluster::Cluster;
use switchboard_core::codes::ErrorCode;
use switchboard_core::hub::{Hub, is_wire_reserved};
use switchboard_core::refusal::Refusal;
use switchboard_store::{ChangeEvent, Store};
use tokio::sync::watch;

use crate::config::Config;
use crate::limits::connections::ConnectionLimiter;
use crate::limits::rate::RateLimiter;
use error::AppError;
use metrics::{Metrics, MetricsObserver};
use scope::ClientScope;
use sessions::Sessions;

/// Presence notices the node itself sends where a namespace has `join_leave` on.
pub const PRESENCE_EVENTS: [&str; 2] = ["user_joined", "user_left"];

/// A message an app gives a client that has just joined one of its channels, before anything
/// else on that channel (a city dashboard's `initial_data` snapshot). Not a publication: it has
/// no offset, it is not stored, and every joiner gets its own current copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Its event (the native `type`).
    pub event: &'static str,
    /// Its payload, already a DTO.
    pub data: Value,
}

/// One reference application as the rest of the server sees it. `serve` registers every app
/// with the node; the router mounts their routes, the command layer hands them the client
/// events they own, and change capture hands them the rows of their tables. An app never sees
/// a socket: it answers with values and publishes through the node.
#[async_trait::async_trait]
pub trait App: Send + Sync + 'static {
    /// How logs name the app when one of its hooks fails.
    fn name(&self) -> &'static str;

    /// Its REST routes, merged into the server's router.
    fn routes(&self) -> Router<Arc<Node>> {
        Router::new()
    }

    /// Event names only the server may publish for this app; a client `publish` using one is
    /// refused, so no client can forge (say) a mission update.
    fn server_events(&self) -> &'static [&'static str];

    /// Client events this app handles (Socket.IO event names; the native protocol maps its
    /// `chat` message and `auth.cityId` onto them).
    fn client_events(&self) -> &'static [&'static str] {
        &[]
    }

    /// Handles one of [`client_events`](Self::client_events). The value is the answer (the
    /// Socket.IO ack); a refusal is answered the protocol's way.
    async fn on_client_event(
        &self,
        node: &Node,
        client: &mut dyn ClientScope,
        event: &str,
        data: &Value,
    ) -> Result<Value, Refusal> {
        let _ = (node, client, data);
        Err(Refusal::new(
            ErrorCode::UnknownType,
            format!("Unknown event {event:?}"),
        ))
    }

    /// What a client that just joined `channel` receives first, if this app owns the channel.
    async fn on_join(
        &self,
        node: &Node,
        channel: &ChannelName,
    ) -> Result<Option<Notice>, AppError> {
        let _ = (node, channel);
        Ok(None)
    }

    /// Publishes a row changed outside the API, if it is one of this app's; `Ok(false)` when
    /// the change belongs to another app.
    async fn on_change(&self, node: &Node, change: &ChangeEvent) -> Result<bool, AppError> {
        let _ = (node, change);
        Ok(false)
    }
}

/// The registered apps, with the lookups the hot paths need precomputed.
pub struct Apps {
    list: Vec<Arc<dyn App>>,
    by_client_event: HashMap<&'static str, usize>,
    reserved: HashSet<&'static str>,
}

impl Apps {
    /// Registers `list`; `also_reserved` are server-only event names that belong to no app
    /// (the node's presence notices, a transport's own events such as Socket.IO's `socket-id`).
    pub fn new(list: Vec<Arc<dyn App>>, also_reserved: &[&'static str]) -> Self {
        let mut by_client_event = HashMap::new();
        let mut reserved: HashSet<&'static str> = also_reserved.iter().copied().collect();
        for (i, app) in list.iter().enumerate() {
            reserved.extend(app.server_events().iter().copied());
            for event in app.client_events() {
                by_client_event.insert(*event, i);
            }
        }
        Self {
            list,
            by_client_event,
            reserved,
        }
    }

    /// Every app, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn App>> {
        self.list.iter()
    }

    /// The app that handles client event `event`.
    pub fn for_client_event(&self, event: &str) -> Option<&Arc<dyn App>> {
        self.by_client_event.get(event).map(|&i| &self.list[i])
    }

    /// Whether `event` is a client event some app handles.
    pub fn handles(&self, event: &str) -> bool {
        self.by_client_event.contains_key(event)
    }

    /// Whether a client may not publish `event`: only the server may (an app's event, a
    /// presence notice, `socket-id`), or nobody may (a name a transport or client library
    /// reserves, [`is_wire_reserved`]).
    pub fn is_reserved(&self, event: &str) -> bool {
        self.reserved.contains(event) || is_wire_reserved(event)
    }
}

/// Shared state of one Switchboard process.
pub struct Node {
    pub config: Arc<Config>,
    /// Where records live.
    pub store: Arc<dyn Store>,
    /// The one path between publishers and hubs (offsets, history, other nodes).
    pub broker: Arc<dyn Broker>,
    /// This node's subscriptions; the only thing that fans out.
    pub hub: Arc<Hub>,
    /// Token verification with the pinned algorithm.
    pub verifier: JwtVerifier,
    /// Who may read which channel.
    pub policy: AccessPolicy,
    pub apps: Apps,
    /// `limits.max_connections_per_ip`, over every transport.
    pub connections: ConnectionLimiter,
    /// Client messages on every transport, shared by all connections of a user (or IP).
    pub client_limiter: RateLimiter,
    /// REST writes, per user (or IP).
    pub rest_limiter: RateLimiter,
    /// Opened SSE streams and long-polls, per user (or IP).
    pub feed_limiter: RateLimiter,
    /// Every connection on this node, on every transport.
    pub sessions: Sessions,
    /// This node's Prometheus families.
    pub metrics: Arc<Metrics>,
    /// The other nodes (the admin API asks them all); one node alone with the memory broker.
    pub cluster: Arc<dyn Cluster>,
    /// When the node started (`uptime_s` in the admin stats).
    pub started: Instant,
    shutdown: watch::Receiver<bool>,
    publications: AtomicU64,
    inbox_order: tokio::sync::Mutex<()>,
}

/// What a node is assembled from; `serve` builds these from the configuration.
pub struct Parts {
    pub config: Arc<Config>,
    /// The opened, migrated store.
    pub store: Arc<dyn Store>,
    /// The broker `broker.url` names.
    pub broker: Arc<dyn Broker>,
    /// The hub the broker delivers into.
    pub hub: Arc<Hub>,
    /// Built from `[auth]`.
    pub verifier: JwtVerifier,
    /// The apps to register.
    pub apps: Apps,
    /// The cluster this node belongs to (`broker.url` decides which).
    pub cluster: Arc<dyn Cluster>,
    /// Becomes true when shutdown begins.
    pub shutdown: watch::Receiver<bool>,
}

impl Node {
    /// What a client that has just joined `channel` gets first from the app owning it (a
    /// city's `initial_data`), the same on every transport; `None` when no app has one, or
    /// when the app failed (logged).
    pub async fn join_notice(&self, channel: &ChannelName) -> Option<Notice> {
        for app in self.apps.iter() {
            match app.on_join(self, channel).await {
                Ok(Some(notice)) => return Some(notice),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(channel = %channel, app = app.name(), error = %e, "join notice failed");
                    return None;
                }
            }
        }
        None
    }

    /// Assembles a node from its parts.
    pub fn new(parts: Parts) -> Self {
        let Parts {
            config,
            store,
            broker,
            hub,
            verifier,
            apps,
            cluster,
            shutdown,
        } = parts;
        let policy = AccessPolicy {
            public_namespaces: config.auth.public_namespaces.clone(),
        };
        let metrics = Arc::new(Metrics::new(&config));
        hub.set_observer(Arc::new(MetricsObserver(Arc::clone(&metrics))));
        Self {
            sessions: Sessions::default(),
            metrics,
            cluster,
            started: Instant::now(),
            connections: ConnectionLimiter::new(config.limits.max_connections_per_ip),
            client_limiter: RateLimiter::per_minute(config.limits.client_messages_per_minute),
            rest_limiter: RateLimiter::per_minute(config.limits.rest_writes_per_minute),
            feed_limiter: RateLimiter::per_minute(config.limits.feed_requests_per_minute),
            config,
            store,
            broker,
            hub,
            verifier,
            policy,
            apps,
            shutdown,
            publications: AtomicU64::new(0),
            inbox_order: tokio::sync::Mutex::new(()),
        }
    }

    /// Verifies an optional token: no token is an anonymous identity.
    pub fn identify(&self, token: Option<&str>) -> Result<Identity, AuthError> {
        match token {
            None => Ok(Identity::anonymous()),
            Some(t) => self.verifier.verify(t).map(Identity::from_claims),
        }
    }

    /// Whether `identity` may read `channel` from connection `conn`.
    pub fn can_read(&self, identity: &Identity, conn: &str, channel: &ChannelName) -> bool {
        self.policy.can_read(identity, conn, channel)
    }

    /// How change capture leases entries, from `[cdc]`.
    pub fn capture_config(&self) -> switchboard_store::CaptureConfig {
        switchboard_store::CaptureConfig {
            lease: std::time::Duration::from_millis(self.config.cdc.lease_ms),
        }
    }

    /// Publications accepted by this node since start.
    pub fn publication_count(&self) -> u64 {
        self.publications.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Resolves when shutdown begins.
    pub async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        // An error means the sender is gone: the server is ending either way.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}
