//! Switchboard: a real-time API server.
//!
//! - [`config`]: layered configuration (file ← env ← flags) with validation.
//! - [`cli`]: the `switchboard` command line (`serve`, `token`, `migrate`).
//! - [`node`]: the per-process state every app and transport reaches through.
//! - [`http`]: router, REST errors, auth extraction, Origin allow-list.
//! - [`transports`]: the native WebSocket and Socket.IO transports.
//! - [`session`]: the native protocol's per-connection logic, independent of the socket.
//! - [`apps`]: the reference applications (missions, chat, payments).
//!
//! The server is a function: [`serve`] takes a config, a bound listener and a shutdown future,
//! so tests run it on `127.0.0.1:0` in-process.

pub mod apps;
pub mod cli;
pub mod config;
pub mod conn_limit;
pub mod http;
pub mod node;
pub mod session;
pub mod transports;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchboard_core::auth::JwtVerifier;
use switchboard_core::broker::MemoryBroker;
use switchboard_core::hub::Hub;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::Config;
use node::Node;

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// No signing secret: the CLI generates one; library callers must set it.
    #[error("auth.jwt_secret is empty")]
    NoSecret,
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] switchboard_store::StoreError),
    /// The HTTP server failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs a node on `listener` until `shutdown` resolves, then stops within `shutdown.grace_ms`:
/// WebSockets are closed with 1012 and in-flight requests finish.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if config.auth.jwt_secret.is_empty() {
        return Err(ServeError::NoSecret);
    }
    let config = Arc::new(config);
    let store = switchboard_store::open(&config.store.url).await?;
    let hub = Arc::new(Hub::default());
    let broker = Arc::new(MemoryBroker::new(Arc::clone(&hub)));
    let verifier = JwtVerifier::hs256(config.auth.jwt_secret.as_bytes());
    let (stop_tx, stop_rx) = watch::channel(false);
    let node = Arc::new(Node::new(
        Arc::clone(&config),
        store,
        broker.clone(),
        hub,
        verifier,
        stop_rx.clone(),
    ));

    // Forget idle channel streams whose history has expired.
    let sweeper = tokio::spawn({
        let broker = Arc::clone(&broker);
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                broker.sweep(Duration::from_secs(600));
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

    let app = http::router(Arc::clone(&node));
    let mut graceful = stop_rx.clone();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = graceful.wait_for(|stop| *stop).await;
    });
    let grace = Duration::from_millis(config.shutdown.grace_ms);
    let mut deadline = stop_rx;
    let result = tokio::select! {
        r = server => r.map_err(ServeError::from),
        () = async move {
            let _ = deadline.wait_for(|stop| *stop).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
            Ok(())
        }
    };
    sweeper.abort();
    trigger.abort();
    tracing::info!("stopped");
    result
}
