//! Opening a node, then running it. [`prepare`] takes the data-dir lock, opens and migrates the
//! store, sets up the broker and builds the node, all before anything listens; the binary then
//! waits for [`Prepared::wait_ready`] and prints its banner only when `/readyz` would answer
//! 200. Each failure on the way names its cause and the setting to change, because "pool timed
//! out" after a banner that already promised a server helps nobody.

use std::fs::File;
use std::future::Future;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::auth::JwtVerifier;
use switchboard_core::broker::{Broker, BrokerError, MemoryBroker};
use switchboard_core::cluster::{Cluster, LocalCluster};
use switchboard_core::hub::Hub;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::accept;
use crate::apps;
use crate::config::Config;
use crate::demo;
use crate::http::forwarded::TrustedProxies;
use crate::node;
use crate::node::{Apps, Node, PRESENCE_EVENTS, Parts};
use crate::ops;
use crate::router;
use crate::tls;
use crate::transports;

/// How long an idle memory-broker channel keeps its stream (offsets and epoch) once its history
/// has expired; after that it starts again at offset 0 with a new epoch (docs/reliability.md).
pub const MEMORY_IDLE_SWEEP: Duration = Duration::from_secs(600);

/// Why the server could not start or stopped abnormally. Each message names the setting that
/// fixes it.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// No way to verify tokens: the CLI generates a secret; library callers must set one.
    #[error("neither auth.jwt_secret nor auth.public_key_file is set")]
    NoSecret,
    /// The public key could not be read (normally caught by config validation).
    #[error("auth.public_key_file: {0}")]
    PublicKey(String),
    /// Another process holds the lock of this SQLite database: two processes on one file would
    /// each have their own subscribers and never see the other's publications.
    #[error(
        "another switchboard process{holder} is using {path}; stop it, or give this one its own --data-dir (data_dir) or store.url"
    )]
    Locked {
        /// The database file.
        path: String,
        /// ` (pid N)` when the lock file names its holder.
        holder: String,
    },
    /// The data directory cannot be created or written.
    #[error(
        "data_dir {path} is not writable: {source}; pass --data-dir (or set data_dir) to a directory this user may write"
    )]
    DataDir {
        /// The directory.
        path: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The store could not be opened or migrated.
    #[error("store: {0}; check store.url (SWITCHBOARD_STORE__URL){hint}", hint = store_hint(.0))]
    Store(#[from] switchboard_store::StoreError),
    /// The broker could not be set up (an invalid URL).
    #[error("broker: {0}; check broker.url (SWITCHBOARD_BROKER__URL)")]
    Broker(#[from] BrokerError),
    /// The broker (or the store) did not become reachable in time.
    #[error("{what} not reachable after {secs} s: {cause}; check {key}")]
    NotReady {
        /// `the broker` or `the store`.
        what: &'static str,
        /// The setting that names it.
        key: &'static str,
        /// The last reason seen.
        cause: String,
        /// How long it was given.
        secs: u64,
    },
    /// The TLS certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The demo secret or token file could not be kept in the data dir.
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    /// The HTTP server failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

fn store_hint(e: &switchboard_store::StoreError) -> &'static str {
    match e {
        switchboard_store::StoreError::Open { url, .. } if url.starts_with("sqlite:") => {
            " or --data-dir (data_dir), which holds the default SQLite file"
        }
        _ => "",
    }
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

/// The broker to use, the memory broker again when it is one (it needs sweeping), and the
/// cluster the broker's deployment makes.
type BuiltBroker = (Arc<dyn Broker>, Option<Arc<MemoryBroker>>, Arc<dyn Cluster>);

/// The broker `broker.url` names: in-process for `memory`, Redis for `redis://…`. The memory
/// broker is also returned as such, for its periodic sweep. The cluster follows the broker:
/// nodes sharing a Redis meet there; a memory broker is a cluster of one.
fn build_broker(config: &Config, hub: &Arc<Hub>) -> Result<BuiltBroker, ServeError> {
    let node_id = format!("node-{}", switchboard_core::broker::new_epoch());
    if config.broker.url == "memory" {
        let memory = Arc::new(MemoryBroker::new(Arc::clone(hub)));
        let cluster = Arc::new(LocalCluster::new(node_id));
        return Ok((memory.clone(), Some(memory), cluster));
    }
    let mut redis = switchboard_redis::RedisBrokerConfig::new(config.broker.url.clone());
    redis.prefix = config.broker.prefix.clone();
    redis.presence_ttl = Duration::from_millis(config.presence.ttl_ms);
    let broker = switchboard_redis::RedisBroker::new(&redis, Arc::clone(hub))?;
    let cluster = switchboard_redis::cluster::RedisCluster::new(&redis, node_id.clone())?;
    tracing::info!(
        url = %switchboard_store::redact_url(&config.broker.url),
        prefix = %config.broker.prefix,
        node = %node_id,
        "using the Redis broker"
    );
    Ok((Arc::new(broker), None, Arc::new(cluster)))
}

/// The lock a node holds on its SQLite database for its whole life; released when dropped
/// (also when the process dies: the operating system drops it).
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

/// The file the lock of `store_url` lives in: beside the SQLite database; `None` for stores
/// several processes may share (PostgreSQL) and for in-memory SQLite.
fn lock_path(store_url: &str) -> Option<PathBuf> {
    let path = store_url
        .strip_prefix("sqlite://")
        .or_else(|| store_url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.contains(":memory:") {
        return None;
    }
    Some(PathBuf::from(format!("{path}.lock")))
}

/// Takes the lock of the SQLite database `store_url` names, or says who holds it.
pub fn lock_data(store_url: &str) -> Result<Option<DataLock>, ServeError> {
    let Some(path) = lock_path(store_url) else {
        return Ok(None);
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|source| data_dir_error(dir, source))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| data_dir_error(dir.unwrap_or(Path::new(".")), source))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let holder = text
                .trim()
                .parse::<u32>()
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default();
            let db = path.with_extension("");
            return Err(ServeError::Locked {
                path: db.display().to_string(),
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(ServeError::Io(e)),
    }
    // Who holds it, for the message a second process prints.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    Ok(Some(DataLock { _file: file }))
}

fn data_dir_error(dir: &Path, source: std::io::Error) -> ServeError {
    ServeError::DataDir {
        path: dir.display().to_string(),
        source,
    }
}

/// A node that is open (store migrated, broker set up) but not yet listening.
pub struct Prepared {
    node: Arc<Node>,
    memory: Option<Arc<MemoryBroker>>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop_tx: watch::Sender<bool>,
    stop_rx: watch::Receiver<bool>,
    _lock: Option<DataLock>,
}

/// Opens everything a node needs, in the order a failure is best explained: the token
/// verifier and TLS files, the data-dir lock, the store, the broker.
pub async fn prepare(config: Config) -> Result<Prepared, ServeError> {
    let verifier = verifier_for(&config)?;
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let lock = lock_data(&config.store.url)?;
    let config = Arc::new(config);
    let store = switchboard_store::open(&config.store.url).await?;
    let hub = Arc::new(Hub::default());
    let (broker, memory, cluster) = build_broker(&config, &hub)?;
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
        cluster,
        shutdown: stop_rx.clone(),
    }));
    node.cluster
        .set_handler(Arc::new(ops::admin::Responder::new(&node)));
    if config.demo.pipeline == Some(true) {
        demo::pipeline::seed(&node).await?;
    }
    Ok(Prepared {
        node,
        memory,
        tls,
        stop_tx,
        stop_rx,
        _lock: lock,
    })
}

impl Prepared {
    /// The node (tests and the binary look at it before it serves).
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Waits until the store answers and the broker is ready (what `/readyz` checks), at most
    /// `within`; after that the last cause is reported with the setting to check.
    pub async fn wait_ready(&self, within: Duration) -> Result<(), ServeError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let store = self.node.store.ping().await;
            let broker = self.node.broker.is_ready().await;
            if store.is_ok() && broker {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let secs = within.as_secs();
                return Err(match store {
                    Err(e) => ServeError::NotReady {
                        what: "the store",
                        key: "store.url",
                        cause: e.to_string(),
                        secs,
                    },
                    Ok(()) => ServeError::NotReady {
                        what: "the broker",
                        key: "broker.url (SWITCHBOARD_BROKER__URL)",
                        cause: switchboard_redis::probe(&self.node.config.broker.url)
                            .await
                            .err()
                            .unwrap_or_else(|| "its pub/sub feed did not connect".into()),
                        secs,
                    },
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs the node on `listener` until `shutdown` resolves, then stops within
    /// `shutdown.grace_ms`: WebSockets are closed with 1012 and in-flight requests finish.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Prepared {
            node,
            memory,
            tls,
            stop_tx,
            stop_rx,
            _lock,
        } = self;
        let config = Arc::clone(&node.config);
        let capture = node
            .store
            .capture_changes(node.capture_config())
            .map(|rx| tokio::spawn(node::changes::run(Arc::clone(&node), rx)));
        let pipeline = (config.demo.pipeline == Some(true))
            .then(|| tokio::spawn(demo::pipeline::run(Arc::clone(&node))));

        // Forget idle channel streams whose history has expired, and refilled rate-limit
        // buckets.
        let sweeper = tokio::spawn({
            let node = Arc::clone(&node);
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    node.metrics.upkeep();
                    if let Some(memory) = &memory {
                        memory.sweep(MEMORY_IDLE_SWEEP);
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
            // Validated with the configuration: an entry that does not parse stopped start-up.
            trusted: TrustedProxies::parse(&config.security.trusted_proxies).unwrap_or_default(),
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
        for task in [capture, pipeline].into_iter().flatten() {
            task.abort();
        }
        tracing::info!("stopped");
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_lives_beside_the_sqlite_file() {
        assert_eq!(
            lock_path("sqlite://./data/switchboard.db"),
            Some(PathBuf::from("./data/switchboard.db.lock"))
        );
        assert_eq!(
            lock_path("sqlite:/tmp/x.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x.db.lock"))
        );
        assert_eq!(lock_path("sqlite::memory:"), None);
        assert_eq!(lock_path("postgres://u@h/db"), None);
    }

    #[test]
    fn a_second_lock_on_the_same_file_is_refused_naming_the_holder() {
        let dir = tempfile_dir();
        let url = format!("sqlite://{}/db.sqlite", dir.display());
        let first = lock_data(&url).unwrap();
        assert!(first.is_some());
        let e = lock_data(&url).unwrap_err().to_string();
        assert!(e.contains(&format!("(pid {})", std::process::id())), "{e}");
        assert!(e.contains("--data-dir"), "{e}");
        drop(first);
        assert!(lock_data(&url).unwrap().is_some());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-lock-test-{}-{}",
            std::process::id(),
            switchboard_core::ids::new_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
