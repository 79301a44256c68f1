//! switchboard-redis: the Redis broker, so several Switchboard nodes share channels.
//!
//! - [`cluster`]: the control plane: live nodes and questions asked of all (the admin API).
//! - [`codec`]: the frame a publication travels in (history entries and pub/sub messages).
//! - [`scripts`]: the Lua scripts assigning offsets and reading history atomically.
//! - `feed`: this node's pub/sub connection — subscribes to a channel's feed only while the
//!   local hub has subscribers on it, reconnects with backoff, and fills gaps from history.
//!
//! What lives in Redis, per channel `C` under the configured prefix `P`:
//! - `P:meta:C`, a hash: `epoch` (set once, `HSETNX`: a flushed Redis gets a new one),
//!   `offset` (the last assigned, `HINCRBY`), `ttl` (history TTL in ms). Expires after the
//!   meta TTL without publications, which also starts a new epoch.
//! - `P:history:C`, a list of the last N frames, expiring with the namespace's history TTL.
//! - pub/sub channel `P:feed:C`, carrying every frame of `C` to the nodes subscribed to it.

pub mod cluster;
pub mod codec;
mod feed;
pub mod scripts;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use switchboard_core::broker::{Broker, BrokerError, HistoryPolicy, OnceKey, Recovery, new_epoch};
use switchboard_core::channel::ChannelName;
use switchboard_core::hub::Hub;
use switchboard_core::publication::{Publication, PublicationData, StreamPosition, now_ms};
use tokio::task::JoinHandle;

use crate::codec::FrameKind;
use crate::feed::Feed;
use crate::scripts::Scripts;

/// How long any single Redis operation may take before the caller is told Redis is
/// unavailable: a publisher must fail loudly, not hang.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// Settings of the Redis broker (`[broker]` in the server's configuration).
#[derive(Debug, Clone)]
pub struct RedisBrokerConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Prefix of every key and pub/sub channel, so several deployments (or tests) can share a
    /// Redis without seeing each other.
    pub prefix: String,
    /// How long a channel's offset and epoch survive without publications.
    pub meta_ttl: Duration,
    /// How long a node's presence members outlive its last sign of life (`presence.ttl_ms`).
    pub presence_ttl: Duration,
}

impl RedisBrokerConfig {
    /// Defaults for `url`: prefix `switchboard`, channel metadata kept for 7 days.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "switchboard".into(),
            meta_ttl: Duration::from_secs(7 * 24 * 3600),
            presence_ttl: Duration::from_secs(30),
        }
    }
}

/// Key names under the prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    fn meta(&self, channel: &ChannelName) -> String {
        format!("{}:meta:{channel}", self.prefix)
    }
    fn history(&self, channel: &ChannelName) -> String {
        format!("{}:history:{channel}", self.prefix)
    }
    /// The marker of an idempotent publication ([`OnceKey`]) on `channel`.
    fn once(&self, channel: &ChannelName, key: &str) -> String {
        format!("{}:once:{channel}:{key}", self.prefix)
    }
    pub(crate) fn feed(&self, channel: &ChannelName) -> String {
        format!("{}:feed:{channel}", self.prefix)
    }
}

/// What the broker and its feed task share.
pub(crate) struct Inner {
    conn: ConnectionManager,
    scripts: Scripts,
    pub(crate) keys: Keys,
    meta_ttl_secs: u64,
    pub(crate) hub: Arc<Hub>,
    pub(crate) feed: Feed,
}

/// A [`Broker`] whose offsets, epochs and history live in Redis, delivering through Redis
/// pub/sub to every node with subscribers on a channel.
pub struct RedisBroker {
    inner: Arc<Inner>,
    feed_task: JoinHandle<()>,
}

fn unavailable(e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(format!("redis: {e}"))
}

/// Runs a Redis operation with [`OP_TIMEOUT`], turning every failure into `Unavailable`.
async fn bounded<T>(
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, BrokerError> {
    match tokio::time::timeout(OP_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(unavailable("operation timed out")),
    }
}

/// Whether a failed command certainly never reached Redis, so running it again cannot apply
/// it twice: the connection manager's connection was already dead (a broken pipe when
/// writing — the first command after a Redis restart meets it) or refused. A reset or an EOF
/// after writing is not retried: the command may have run.
fn never_sent(e: &redis::RedisError) -> bool {
    e.is_connection_refusal() || e.to_string().to_ascii_lowercase().contains("broken pipe")
}

/// Like [`bounded`], retrying once on a fresh connection when the first attempt
/// [`never_sent`] the command (`attempt` builds the command anew for each try).
async fn bounded_retrying<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, BrokerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
{
    match tokio::time::timeout(OP_TIMEOUT, attempt()).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if never_sent(&e) => {
            tracing::info!(error = %e, "redis connection was dead; {what} again on a fresh one");
            bounded(attempt()).await
        }
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(unavailable("operation timed out")),
    }
}

/// Connects to `url` once and sends `PING`, to name why a broker is not ready (connection
/// refused, wrong password, unknown host) when the broker itself only reports "not ready".
/// `Ok` for a URL that is not `redis://…`.
pub async fn probe(url: &str) -> Result<(), String> {
    if !url.starts_with("redis://") {
        return Ok(());
    }
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let attempt = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(OP_TIMEOUT, attempt).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", OP_TIMEOUT.as_secs())),
    }
}

impl RedisBroker {
    /// A broker delivering to `hub`. Connects lazily: a Redis that is down at start makes the
    /// node not ready (and publishes fail) until it comes up, rather than refusing to start.
    /// Must be called inside a tokio runtime (it spawns the feed task).
    pub fn new(config: &RedisBrokerConfig, hub: Arc<Hub>) -> Result<Self, BrokerError> {
        let client = redis::Client::open(config.url.as_str()).map_err(|e| {
            BrokerError::Unavailable(format!(
                "invalid broker.url {}: {e}",
                redact(config.url.as_str())
            ))
        })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(unavailable)?;
        let (feed, commands) = Feed::new();
        let inner = Arc::new(Inner {
            conn,
            scripts: Scripts::default(),
            keys: Keys {
                prefix: config.prefix.clone(),
            },
            meta_ttl_secs: config.meta_ttl.as_secs().max(1),
            hub,
            feed,
        });
        let feed_task = tokio::spawn(feed::run(Arc::clone(&inner), client, commands));
        Ok(Self { inner, feed_task })
    }

    /// Runs the publish script: offset, history and feed in one atomic step, and, for an
    /// idempotent publication, the key's marker too (`None`: the marker was set already).
    async fn publish_script(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        history: HistoryPolicy,
        once: Option<&OnceKey>,
    ) -> Result<Option<Arc<Publication>>, BrokerError> {
        let timestamp_ms = now_ms();
        let body = codec::encode_body(channel, event, timestamp_ms, &data, None)?;
        let ttl_ms = u64::try_from(history.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut invocation = self.inner.scripts.publish.prepare_invoke();
        invocation
            .key(self.inner.keys.meta(channel))
            .key(self.inner.keys.history(channel));
        let window_ms = match once {
            Some(once) => {
                invocation.key(self.inner.keys.once(channel, &once.key));
                u64::try_from(once.window.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1)
            }
            None => 0,
        };
        invocation
            .arg(new_epoch())
            .arg(history.size)
            .arg(ttl_ms)
            .arg(self.inner.meta_ttl_secs.max(ttl_ms / 1000 + 1))
            .arg(self.inner.keys.feed(channel))
            .arg(body)
            .arg(window_ms);
        let invocation = &invocation;
        let (offset, epoch): (u64, String) = bounded_retrying("publishing", || {
            let mut conn = self.inner.conn.clone();
            async move { invocation.invoke_async(&mut conn).await }
        })
        .await
        .inspect_err(|e| tracing::warn!(channel = %channel, error = %e, "publish failed"))?;
        if offset == 0 {
            tracing::debug!(channel = %channel, event, "idempotent publication already made");
            return Ok(None);
        }
        // Delivery to this node's hub comes back through the feed, in offset order with
        // everyone else's publications on the channel.
        Ok(Some(Arc::new(Publication {
            channel: channel.clone(),
            event: Arc::from(event),
            offset,
            epoch: Arc::from(epoch),
            timestamp_ms,
            data,
        })))
    }

    /// Whether this node's pub/sub connection is up (for tests and metrics).
    pub fn feed_connected(&self) -> bool {
        self.inner.feed.connected.load(Ordering::Acquire)
    }

    /// Number of channels this node is subscribed to on Redis (for tests and metrics).
    pub fn feed_channels(&self) -> usize {
        self.inner.feed.subscribed_count()
    }
}

impl Drop for RedisBroker {
    fn drop(&mut self) {
        self.feed_task.abort();
    }
}

/// A URL with its password replaced, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl Inner {
    /// The recovery read shared by [`Broker::recover`] and the feed's gap filling.
    pub(crate) async fn recover(
        &self,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
    ) -> Result<Recovery, BrokerError> {
        let mut conn = self.conn.clone();
        let mut invocation = self.scripts.recover.prepare_invoke();
        invocation
            .key(self.keys.meta(channel))
            .key(self.keys.history(channel))
            .arg(new_epoch())
            .arg(self.meta_ttl_secs)
            .arg(since.map_or("", |s| s.epoch.as_str()))
            .arg(since.map_or(0, |s| s.offset));
        let (epoch, offset, ttl_ms, entries): (String, u64, u64, Vec<Vec<u8>>) =
            bounded(invocation.invoke_async(&mut conn)).await?;
        let position = StreamPosition { offset, epoch };
        let lost = |position| Recovery {
            position,
            publications: Vec::new(),
            recovered: false,
        };
        let Some(since) = since else {
            return Ok(lost(position));
        };
        if since.epoch != position.epoch || since.offset > position.offset {
            return Ok(lost(position));
        }
        let now = now_ms();
        let mut publications = Vec::with_capacity(entries.len());
        for entry in &entries {
            match codec::peek(entry) {
                Some((_, o)) if o <= since.offset => continue,
                Some(_) => {}
                None => return Ok(lost(position)),
            }
            match codec::decode(entry) {
                Ok(frame) if now.saturating_sub(frame.publication.timestamp_ms) < ttl_ms => {
                    publications.push(Arc::new(frame.publication));
                }
                Ok(_) => {} // expired: older than the namespace's TTL
                Err(e) => {
                    tracing::warn!(channel = %channel, error = %e, "undecodable history entry");
                    return Ok(lost(position));
                }
            }
        }
        // Exact only if nothing between `since` and now is missing (trimmed or expired).
        let contiguous = publications
            .iter()
            .zip(since.offset + 1..)
            .all(|(p, expected)| p.offset == expected)
            && publications.len() as u64 == position.offset - since.offset;
        if !contiguous {
            return Ok(lost(position));
        }
        Ok(Recovery {
            position,
            publications,
            recovered: true,
        })
    }
}

#[async_trait]
impl Broker for RedisBroker {
    async fn publish(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        history: HistoryPolicy,
    ) -> Result<Arc<Publication>, BrokerError> {
        self.publish_script(channel, event, data, history, None)
            .await?
            .ok_or_else(|| BrokerError::Unavailable("an unconditional publish was refused".into()))
    }

    async fn publish_once(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        history: HistoryPolicy,
        once: &OnceKey,
    ) -> Result<Option<Arc<Publication>>, BrokerError> {
        self.publish_script(channel, event, data, history, Some(once))
            .await
    }

    async fn publish_transient(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        except: Option<&str>,
    ) -> Result<(), BrokerError> {
        // Live only: no offset is taken and nothing is stored. The frame's position fields are
        // placeholders; the stream gate writes transient items without looking at them.
        let body = codec::encode_body(channel, event, now_ms(), &data, except)?;
        let frame = codec::encode_frame(FrameKind::Transient, 0, "transient", &body);
        let mut conn = self.inner.conn.clone();
        let _receivers: u64 = bounded(
            redis::cmd("PUBLISH")
                .arg(self.inner.keys.feed(channel))
                .arg(frame)
                .query_async(&mut conn),
        )
        .await
        .inspect_err(|e| {
            tracing::warn!(channel = %channel, error = %e, "transient publish failed");
        })?;
        Ok(())
    }

    async fn deliver(&self, publication: Arc<Publication>) -> Result<(), BrokerError> {
        let body = codec::encode_body(
            &publication.channel,
            &publication.event,
            publication.timestamp_ms,
            &publication.data,
            None,
        )?;
        let frame = codec::encode_frame(
            FrameKind::External,
            publication.offset,
            &publication.epoch,
            &body,
        );
        let mut conn = self.inner.conn.clone();
        let _receivers: u64 = bounded(
            redis::cmd("PUBLISH")
                .arg(self.inner.keys.feed(&publication.channel))
                .arg(frame)
                .query_async(&mut conn),
        )
        .await
        .inspect_err(|e| {
            tracing::warn!(channel = %publication.channel, error = %e, "deliver failed");
        })?;
        Ok(())
    }

    async fn recover(
        &self,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
    ) -> Result<Recovery, BrokerError> {
        self.inner.recover(channel, since).await
    }

    async fn is_ready(&self) -> bool {
        if !self.feed_connected() {
            return false;
        }
        let mut conn = self.inner.conn.clone();
        bounded(redis::cmd("PING").query_async::<String>(&mut conn))
            .await
            .is_ok()
    }

    async fn on_subscribe(&self, channel: &ChannelName) -> Result<(), BrokerError> {
        self.inner.feed.ensure(channel).await
    }

    fn on_unsubscribe(&self, channel: &ChannelName) {
        self.inner.feed.release(channel);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    #[test]
    fn redacts_credentials() {
        assert_eq!(
            super::redact("redis://u:pw@127.0.0.1:6379"),
            "redis://***@127.0.0.1:6379"
        );
        assert_eq!(
            super::redact("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
