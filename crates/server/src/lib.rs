//! Switchboard: a real-time API server.
//!
//! A house where each floor imports only the floors below it (docs/architecture.md draws it):
//!
//! - this file: [`serve`], which builds a node and runs the router.
//! - [`router`]: the top; assembles the apps, the transports and the operations routes.
//! - [`apps`], [`transports`], [`ops`]: siblings that never import each other. Apps own
//!   routes, records, DTOs and client events; transports decode requests and write bytes;
//!   ops is what operators use (health, the publish API, the console).
//! - [`commands`]: the one protocol-independent command layer every transport decodes into.
//! - [`node`]: the per-process state, and the app seam ([`node::App`]) where apps and
//!   transports meet.
//! - [`http`], [`limits`]: edge helpers (REST errors, bearer tokens, Origin) and the shared
//!   rate and connection limits.
//! - [`config`], [`cli`], [`tls`]: the ground floor.
//! - [`accept`]: the HTTP server under [`serve`]: the accept loop, per-IP counting of every
//!   connection, the `[http]` timeouts and the lingering close.
//!
//! The server is a function: [`serve`] takes a config, a bound listener and a shutdown future,
//! so tests run it on `127.0.0.1:0` in-process.

pub mod accept;
pub mod apps;
pub mod cli;
pub mod commands;
pub mod config;
pub mod http;
pub mod limits;
pub mod node;
pub mod ops;
pub mod router;
pub mod tls;
pub mod transports;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::auth::JwtVerifier;
use switchboard_core::broker::{Broker, BrokerError, MemoryBroker};
use switchboard_core::hub::Hub;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::Config;
use node::{Apps, Node, PRESENCE_EVENTS, Parts};

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// No way to verify tokens: the CLI generates a secret; library callers must set one.
    #[error("neither auth.jwt_secret nor auth.public_key_file is set")]
    NoSecret,
    /// The public key could not be read (normally caught by config validation).
    #[error("auth.public_key_file: {0}")]
    PublicKey(String),
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] switchboard_store::StoreError),
    /// The broker could not be set up (an invalid URL; an unreachable Redis is not an error at
    /// start: the node reports not ready until it connects).
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    /// The TLS certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The HTTP server failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Builds the token verifier from `[auth]`: HS256 with the secret and/or RS256/ES256 with the
/// public key.
pub fn verifier_for(config: &Config) -> Result<JwtVerifier, ServeError> {
    let mut verifier = JwtVerifier::empty();
    if !config.auth.jwt_secret.is_empty() {
        verifier = JwtVerifier::hs256(config.auth.jwt_secret.as_bytes());
    }
    if let Some(path) = &config.auth.public_key_file {
        let pem = std::fs::read(path).map_err(|e| ServeError::PublicKey(e.to_string()))?;
        verifier = verifier
            .and_public_key_pem(&pem)
            .map_err(|e| ServeError::PublicKey(e.to_string()))?;
    }
    if verifier.algorithms().is_empty() {
        return Err(ServeError::NoSecret);
    }
    Ok(verifier)
}

/// The broker to use, and the memory broker again when it is one (it needs sweeping).
type BuiltBroker = (Arc<dyn Broker>, Option<Arc<MemoryBroker>>);

/// The broker `broker.url` names: in-process for `memory`, Redis for `redis://…`. The memory
/// broker is also returned as such, for its periodic sweep.
fn build_broker(config: &Config, hub: &Arc<Hub>) -> Result<BuiltBroker, ServeError> {
    if config.broker.url == "memory" {
        let memory = Arc::new(MemoryBroker::new(Arc::clone(hub)));
        return Ok((memory.clone(), Some(memory)));
    }
    let mut redis = switchboard_redis::RedisBrokerConfig::new(config.broker.url.clone());
    redis.prefix = config.broker.prefix.clone();
    let broker = switchboard_redis::RedisBroker::new(&redis, Arc::clone(hub))?;
    tracing::info!(
        url = %switchboard_store::redact_url(&config.broker.url),
        prefix = %config.broker.prefix,
        "using the Redis broker"
    );
    Ok((Arc::new(broker), None))
}

/// Runs a node on `listener` until `shutdown` resolves, then stops within `shutdown.grace_ms`:
/// WebSockets are closed with 1012 and in-flight requests finish.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let verifier = verifier_for(&config)?;
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let config = Arc::new(config);
    let store = switchboard_store::open(&config.store.url).await?;
    let hub = Arc::new(Hub::default());
    let (broker, memory) = build_broker(&config, &hub)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut reserved = PRESENCE_EVENTS.to_vec();
    reserved.push(transports::socketio::SOCKET_ID_EVENT);
    let node = Arc::new(Node::new(Parts {
        config: Arc::clone(&config),
        store,
        broker,
        hub,
        verifier,
        apps: Apps::new(apps::all(), &reserved),
        shutdown: stop_rx.clone(),
    }));

    let capture = node
        .store
        .capture_changes()
        .map(|rx| tokio::spawn(node::changes::run(Arc::clone(&node), rx)));

    // Forget idle channel streams whose history has expired, and refilled rate-limit buckets.
    let sweeper = tokio::spawn({
        let node = Arc::clone(&node);
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Some(memory) = &memory {
                    memory.sweep(Duration::from_secs(600));
                }
                node.client_limiter.sweep();
                node.rest_limiter.sweep();
                let cutoff = switchboard_core::publication::now_ms()
                    .saturating_sub(node.config.inbox.ttl_secs.saturating_mul(1000));
                if let Err(e) = node.store.inbox_purge(cutoff).await {
                    tracing::warn!(error = %e, "inbox purge failed");
                }
            }
        }
    });
    // Holds the sender for the server's whole life: dropping it would read as "stop".
    let trigger = tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested");
        let _ = stop_tx.send(true);
        std::future::pending::<()>().await;
    });

    let server = accept::Server {
        router: router::router(Arc::clone(&node)),
        limiter: node.connections.clone(),
        tls,
        header_read_timeout: Duration::from_millis(config.http.header_read_timeout_ms),
        body_timeout: Duration::from_millis(config.http.body_timeout_ms),
        linger: Duration::from_millis(config.http.linger_ms),
    };
    let grace = Duration::from_millis(config.shutdown.grace_ms);
    let result = server
        .run(listener, stop_rx, grace)
        .await
        .map_err(ServeError::from);
    sweeper.abort();
    trigger.abort();
    if let Some(capture) = capture {
        capture.abort();
    }
    tracing::info!("stopped");
    result
}
