//! The cluster's control plane over Redis: the nodes alive, and a question asked of them all
//! (the admin API's stats, channels, presence and disconnect across every node).
//!
//! What lives in Redis under the prefix `P`:
//! - `P:nodes`, a sorted set: each live node's id scored by the time (ms) it last said it was
//!   alive; a node refreshes its entry every [`BEAT`] and counts as gone [`NODE_TTL`] after
//!   its last refresh (entries older than that are removed by whoever sees them).
//! - pub/sub channel `P:control`: questions, `{"id","from","request"}`, heard by every node.
//! - pub/sub channel `P:reply:<node>`: the answers to `<node>`'s questions, `{"id","node","answer"}`.
//! - `P:presence:C`, a hash per channel: connection id → `{"user","connectionId","node"}`. A
//!   member counts only while its node refreshed `P:nodes` within `presence_ttl`: the members of
//!   a node killed without saying goodbye disappear from answers within that, and the reader
//!   that notices deletes them.
//!
//! A question is answered by whoever hears it, on its own connection, so one node's slow
//! answer never delays another's. The asker waits for the nodes listed alive when it asked,
//! at most the caller's deadline, and reports the silent ones instead of waiting for them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use rand::Rng;
use redis::aio::ConnectionManager;
use serde_json::{Value, json};
use switchboard_core::broker::BrokerError;
use switchboard_core::channel::ChannelName;
use switchboard_core::cluster::{Cluster, ClusterHandler, NodeAnswer, answer_with};
use switchboard_core::protocol::PresenceMember;
use switchboard_core::publication::now_ms;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{RedisBrokerConfig, bounded, unavailable};

/// How often a node refreshes its entry in `P:nodes`, at most (a third of `presence_ttl` when
/// that is shorter, so a live node never looks dead between two refreshes).
pub const BEAT: Duration = Duration::from_secs(2);
/// How long after its last refresh a node counts as gone for the admin API.
pub const NODE_TTL: Duration = Duration::from_secs(6);
/// How long a shared presence set is kept after its last join (a set whose every node died).
const PRESENCE_KEY_TTL_SECS: u64 = 24 * 3600;
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

type Waiters = Mutex<HashMap<u64, mpsc::UnboundedSender<(String, Value)>>>;

struct Shared {
    id: String,
    prefix: String,
    presence_ttl: Duration,
    beat: Duration,
    conn: ConnectionManager,
    handler: OnceLock<Arc<dyn ClusterHandler>>,
    waiters: Waiters,
    next: AtomicU64,
}

impl Shared {
    fn nodes_key(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
    fn control(&self) -> String {
        format!("{}:control", self.prefix)
    }
    fn reply(&self, node: &str) -> String {
        format!("{}:reply:{node}", self.prefix)
    }
    fn presence(&self, channel: &ChannelName) -> String {
        format!("{}:presence:{channel}", self.prefix)
    }
}

/// A [`Cluster`] whose nodes meet in Redis.
pub struct RedisCluster {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl RedisCluster {
    /// Joins the cluster of the Redis `config` names as node `id`. Connects lazily and keeps
    /// retrying, like the broker: a Redis that is down only makes the node invisible to the
    /// others until it is back. Must be called inside a tokio runtime.
    pub fn new(config: &RedisBrokerConfig, id: impl Into<String>) -> Result<Self, BrokerError> {
        let client = redis::Client::open(config.url.as_str()).map_err(unavailable)?;
        let conn = ConnectionManager::new_lazy_with_config(
            client.clone(),
            redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(Duration::from_secs(3))),
        )
        .map_err(unavailable)?;
        let presence_ttl = config.presence_ttl.max(Duration::from_millis(300));
        let shared = Arc::new(Shared {
            id: id.into(),
            prefix: config.prefix.clone(),
            presence_ttl,
            beat: (presence_ttl / 3).clamp(Duration::from_millis(100), BEAT),
            conn,
            handler: OnceLock::new(),
            waiters: Mutex::default(),
            next: AtomicU64::new(1),
        });
        let tasks = vec![
            tokio::spawn(beat(Arc::clone(&shared))),
            tokio::spawn(listen(Arc::clone(&shared), client)),
        ];
        Ok(Self { shared, tasks })
    }

    /// The nodes alive now (refreshed within [`NODE_TTL`]), this one included once it beat.
    pub async fn live_nodes(&self) -> Result<Vec<String>, BrokerError> {
        live_nodes(&self.shared, NODE_TTL).await
    }
}

async fn live_nodes(shared: &Shared, within: Duration) -> Result<Vec<String>, BrokerError> {
    let since = now_ms().saturating_sub(within.as_millis() as u64);
    let mut conn = shared.conn.clone();
    bounded(
        redis::cmd("ZRANGE")
            .arg(shared.nodes_key())
            .arg(since)
            .arg("+inf")
            .arg("BYSCORE")
            .query_async(&mut conn),
    )
    .await
}

/// Refreshes this node's entry and prunes the entries of nodes gone silent.
async fn beat(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(shared.beat);
    // Entries are kept for the longer of the two uses (admin liveness, presence).
    let keep = NODE_TTL.max(shared.presence_ttl);
    loop {
        every.tick().await;
        let now = now_ms();
        let stale = now.saturating_sub(keep.as_millis() as u64);
        let mut conn = shared.conn.clone();
        let refreshed = bounded(
            redis::pipe()
                .cmd("ZADD")
                .arg(shared.nodes_key())
                .arg(now)
                .arg(&shared.id)
                .ignore()
                .cmd("ZREMRANGEBYSCORE")
                .arg(shared.nodes_key())
                .arg("-inf")
                .arg(format!("({stale}"))
                .ignore()
                .query_async::<()>(&mut conn),
        )
        .await;
        if let Err(e) = refreshed {
            tracing::debug!(error = %e, "cluster heartbeat failed");
        }
    }
}

/// Hears questions and the answers to this node's questions, reconnecting with backoff.
async fn listen(shared: Arc<Shared>, client: redis::Client) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match subscribed(&shared, &client).await {
            Ok(mut pubsub) => {
                backoff = MIN_BACKOFF;
                let mut messages = pubsub.on_message();
                while let Some(msg) = messages.next().await {
                    let channel = msg.get_channel_name().to_owned();
                    let Ok(body) = serde_json::from_slice::<Value>(msg.get_payload_bytes()) else {
                        continue;
                    };
                    if channel == shared.control() {
                        tokio::spawn(answer(Arc::clone(&shared), body));
                    } else {
                        deliver_reply(&shared, body);
                    }
                }
                tracing::warn!("cluster control connection lost; reconnecting");
            }
            Err(e) => tracing::warn!(error = %e, "cluster control connection failed"),
        }
        let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
        tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn subscribed(shared: &Shared, client: &redis::Client) -> Result<redis::aio::PubSub, String> {
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(shared.control()).await?;
        pubsub.subscribe(shared.reply(&shared.id)).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match tokio::time::timeout(Duration::from_secs(3), attempt).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Answers one question heard on `P:control`, to the asker's reply channel.
async fn answer(shared: Arc<Shared>, question: Value) {
    let (Some(id), Some(from)) = (question["id"].as_u64(), question["from"].as_str()) else {
        return;
    };
    let body = answer_with(shared.handler.get(), question["request"].clone()).await;
    let reply = json!({ "id": id, "node": shared.id, "answer": body }).to_string();
    let mut conn = shared.conn.clone();
    let sent = bounded(
        redis::cmd("PUBLISH")
            .arg(shared.reply(from))
            .arg(reply)
            .query_async::<u64>(&mut conn),
    )
    .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cluster answer not sent");
    }
}

fn deliver_reply(shared: &Shared, reply: Value) {
    let (Some(id), Some(node)) = (reply["id"].as_u64(), reply["node"].as_str()) else {
        return;
    };
    let waiters = shared.waiters.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = waiters.get(&id) {
        let _ = tx.send((node.to_owned(), reply["answer"].clone()));
    }
}

/// Removes a question's waiter however the asking ends (answered, timed out, cancelled).
struct Waiting<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.shared
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

#[async_trait]
impl Cluster for RedisCluster {
    fn node_id(&self) -> &str {
        &self.shared.id
    }

    fn set_handler(&self, handler: Arc<dyn ClusterHandler>) {
        let _ = self.shared.handler.set(handler);
    }

    async fn ask_all(
        &self,
        request: Value,
        timeout: Duration,
    ) -> Result<Vec<NodeAnswer>, BrokerError> {
        let shared = &*self.shared;
        let mut expected: HashSet<String> =
            live_nodes(shared, NODE_TTL).await?.into_iter().collect();
        // This node answers even before its first heartbeat landed.
        expected.insert(shared.id.clone());
        let id = shared.next.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        shared
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let _waiting = Waiting { shared, id };
        let question = json!({ "id": id, "from": shared.id, "request": request }).to_string();
        let mut conn = shared.conn.clone();
        let _heard: u64 = bounded(
            redis::cmd("PUBLISH")
                .arg(shared.control())
                .arg(question)
                .query_async(&mut conn),
        )
        .await?;
        let mut answers: HashMap<String, Value> = HashMap::new();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        while !expected.iter().all(|n| answers.contains_key(n)) {
            tokio::select! {
                () = &mut deadline => break,
                got = rx.recv() => match got {
                    Some((node, answer)) => { answers.insert(node, answer); }
                    None => break,
                },
            }
        }
        // Nodes that answered although they were not listed (a heartbeat just missed) count.
        expected.extend(answers.keys().cloned());
        let mut out: Vec<NodeAnswer> = expected
            .into_iter()
            .map(|node| {
                let answer = answers
                    .remove(&node)
                    .ok_or_else(|| format!("no answer within {} ms", timeout.as_millis()));
                NodeAnswer { node, answer }
            })
            .collect();
        out.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(out)
    }

    async fn presence_add(
        &self,
        channel: &ChannelName,
        member: &PresenceMember,
    ) -> Result<(), BrokerError> {
        let shared = &*self.shared;
        let entry = json!({
            "user": member.user,
            "connectionId": member.connection_id,
            "node": shared.id,
        })
        .to_string();
        let mut conn = shared.conn.clone();
        bounded(
            redis::pipe()
                .cmd("HSET")
                .arg(shared.presence(channel))
                .arg(&member.connection_id)
                .arg(entry)
                .ignore()
                .cmd("EXPIRE")
                .arg(shared.presence(channel))
                .arg(PRESENCE_KEY_TTL_SECS)
                .ignore()
                .query_async::<()>(&mut conn),
        )
        .await
    }

    fn presence_remove(&self, channel: &ChannelName, connection_id: &str) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (key, field) = (self.shared.presence(channel), connection_id.to_owned());
        let mut conn = self.shared.conn.clone();
        runtime.spawn(async move {
            let removed = bounded(
                redis::cmd("HDEL")
                    .arg(key)
                    .arg(field)
                    .query_async::<u64>(&mut conn),
            )
            .await;
            if let Err(e) = removed {
                tracing::debug!(error = %e, "presence entry not removed (it expires with its node)");
            }
        });
    }

    async fn presence(
        &self,
        channel: &ChannelName,
    ) -> Result<Option<Vec<PresenceMember>>, BrokerError> {
        let shared = &*self.shared;
        let mut conn = shared.conn.clone();
        let entries: HashMap<String, String> = bounded(
            redis::cmd("HGETALL")
                .arg(shared.presence(channel))
                .query_async(&mut conn),
        )
        .await?;
        let mut live: HashSet<String> = live_nodes(shared, shared.presence_ttl)
            .await?
            .into_iter()
            .collect();
        live.insert(shared.id.clone());
        let mut members = Vec::with_capacity(entries.len());
        let mut ghosts = Vec::new();
        for (id, entry) in entries {
            let Ok(v) = serde_json::from_str::<Value>(&entry) else {
                ghosts.push(id);
                continue;
            };
            if !v["node"].as_str().is_some_and(|n| live.contains(n)) {
                ghosts.push(id);
                continue;
            }
            members.push(PresenceMember {
                user: v["user"].as_str().map(str::to_owned),
                connection_id: id,
            });
        }
        if !ghosts.is_empty() {
            let removed = bounded(
                redis::cmd("HDEL")
                    .arg(shared.presence(channel))
                    .arg(&ghosts)
                    .query_async::<u64>(&mut conn),
            )
            .await;
            if let Err(e) = removed {
                tracing::debug!(error = %e, "ghost presence entries not removed");
            }
        }
        members.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
        Ok(Some(members))
    }
}
