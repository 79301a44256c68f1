//! Helpers for tests against a real Redis on 127.0.0.1.
//!
//! A test that needs Redis calls [`redis_or_skip`]: when Redis is unreachable it prints why and
//! the test returns early, unless `SWITCHBOARD_REQUIRE_SERVICES=1`, where it fails instead (CI
//! with services must not pass by skipping). Every test uses its own key prefix and deletes its
//! keys at the end, because tests run in parallel against one shared Redis.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use switchboard_core::broker::Broker;
use switchboard_core::channel::ChannelName;
use switchboard_core::hub::{ConnectionHandle, Hub, Outbound, OutboundReceiver, WireFormat};
use switchboard_core::publication::Audience;
use switchboard_redis::{RedisBroker, RedisBrokerConfig};

/// Where the test Redis is.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Whether services are mandatory for this run.
pub fn services_required() -> bool {
    std::env::var("SWITCHBOARD_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A connection to the test Redis, or `None` (after printing why) when it is unreachable and
/// services are optional. Panics when it is unreachable and services are required.
pub async fn redis_or_skip(test: &str) -> Option<redis::aio::MultiplexedConnection> {
    let attempt = async {
        let client = redis::Client::open(REDIS_URL).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(conn)
    };
    let outcome = match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(r) => r,
        Err(_) => Err("timed out".into()),
    };
    match outcome {
        Ok(conn) => Some(conn),
        Err(e) if services_required() => {
            panic!("{test}: Redis at {REDIS_URL} is required (SWITCHBOARD_REQUIRE_SERVICES=1): {e}")
        }
        Err(e) => {
            // Written to stderr directly: the test harness hides `eprintln!` of passing tests.
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("SKIPPED {test}: Redis at {REDIS_URL} unreachable ({e})\n"),
            );
            None
        }
    }
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("sbtest:{:016x}", rand::rng().random::<u64>())
}

/// A broker config for `prefix` with short metadata TTL, so a test that dies early leaves
/// nothing behind for long.
pub fn config(url: &str, prefix: &str) -> RedisBrokerConfig {
    let mut c = RedisBrokerConfig::new(url);
    c.prefix = prefix.to_owned();
    c.meta_ttl = Duration::from_secs(300);
    c
}

/// One "node": a hub and a Redis broker delivering to it.
pub struct TestNode {
    pub hub: Arc<Hub>,
    pub broker: RedisBroker,
}

impl TestNode {
    pub fn new(url: &str, prefix: &str) -> Self {
        let hub = Arc::new(Hub::default());
        let broker = RedisBroker::new(&config(url, prefix), Arc::clone(&hub)).unwrap();
        Self { hub, broker }
    }

    /// Waits until the node's pub/sub connection is up.
    pub async fn connected(&self) {
        for _ in 0..200 {
            if self.broker.feed_connected() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("feed never connected");
    }

    /// Subscribes a fresh connection to `channel` the way the server does.
    pub async fn subscribe(&self, id: &str, channel: &ChannelName) -> OutboundReceiver {
        let (conn, rx) =
            ConnectionHandle::new(id.into(), WireFormat::Native, Audience::Agent, 4096);
        self.hub.subscribe(channel, &conn);
        self.broker.on_subscribe(channel).await.unwrap();
        rx
    }
}

/// Waits for the next delivery on `rx` and returns `(offset, frame text)`.
pub async fn next_delivery(rx: &mut OutboundReceiver) -> (u64, String) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Outbound::Delivery(d)) => {
                return (d.offset, String::from_utf8(d.frame.to_vec()).unwrap());
            }
            Ok(_) => {}
            Err(_) => panic!("no delivery within 5 s"),
        }
    }
}

/// Asserts nothing more arrives on `rx` for a short while, and that the hub still holds the
/// connection: a connection the hub dropped is not "quiet", it fails.
pub async fn assert_quiet(rx: &mut OutboundReceiver) {
    match tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
        Err(_) => assert!(
            Arc::strong_count(rx.handle()) > 1,
            "the hub dropped the connection"
        ),
        Ok(item) => panic!("unexpected delivery: {item:?}"),
    }
}

/// Deletes every key under `prefix` (never FLUSHALL: other runs share this Redis).
pub async fn delete_prefix(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: u64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(conn)
            .await
            .unwrap();
    }
}
