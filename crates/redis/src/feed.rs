//! This node's Redis pub/sub connection: the only way publications reach the local hub.
//!
//! One task owns the connection. It subscribes to a channel's feed when the hub gains its first
//! subscriber on the channel (`ensure`, awaited before the subscriber's catch-up is read, so
//! nothing published after the catch-up can be missed) and unsubscribes when the hub has none
//! left (`release`, or the periodic sweep if the request queue was full). The hub is the source
//! of truth: every request is "make Redis match the hub for this channel".
//!
//! Ordering: one connection carries every channel's frames in the order Redis published them,
//! which for one channel is offset order. The task remembers the last offset it delivered per
//! channel; a frame skipping ahead (frames lost while the connection was down) is preceded by
//! the missing publications read from history, and after a reconnect every channel is caught
//! up the same way.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use rand::Rng;
use redis::aio::PubSubSink;
use switchboard_core::broker::BrokerError;
use switchboard_core::channel::ChannelName;
use switchboard_core::publication::StreamPosition;
use tokio::sync::{mpsc, oneshot};

use crate::Inner;
use crate::codec::{self, FrameKind};

/// Bound of the subscribe/unsubscribe request queue.
const COMMAND_QUEUE: usize = 1024;
/// Reconnect backoff bounds: quick after a blip, at most one attempt per 5 s during an outage.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often stale subscriptions are dropped and the connection is pinged.
const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// How long a subscribe, unsubscribe or ping on the pub/sub connection may take.
const FEED_TIMEOUT: Duration = Duration::from_secs(3);

/// A request to the feed task: make the Redis subscription of `channel` match the hub.
pub(crate) struct Request {
    channel: ChannelName,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// The feed's state shared with the broker.
pub(crate) struct Feed {
    commands: mpsc::Sender<Request>,
    /// Channels subscribed on the current connection (or to resubscribe after a reconnect).
    subscribed: Mutex<HashSet<ChannelName>>,
    /// Whether the pub/sub connection is up.
    pub(crate) connected: AtomicBool,
}

impl Feed {
    pub(crate) fn new() -> (Self, mpsc::Receiver<Request>) {
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        (
            Self {
                commands,
                subscribed: Mutex::default(),
                connected: AtomicBool::new(false),
            },
            rx,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<ChannelName>> {
        self.subscribed.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn subscribed_count(&self) -> usize {
        self.lock().len()
    }

    /// Returns once this node receives `channel`'s feed, or fails when Redis is unreachable.
    pub(crate) async fn ensure(&self, channel: &ChannelName) -> Result<(), BrokerError> {
        if !self.connected.load(Ordering::Acquire) {
            return Err(BrokerError::Unavailable(
                "redis: pub/sub connection is down".into(),
            ));
        }
        if self.lock().contains(channel) {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        let request = Request {
            channel: channel.clone(),
            done: Some(tx),
        };
        let outcome = tokio::time::timeout(FEED_TIMEOUT * 2, async {
            self.commands
                .send(request)
                .await
                .map_err(|_| "feed task stopped".to_owned())?;
            rx.await
                .map_err(|_| "feed task dropped the request".to_owned())?
        })
        .await;
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(BrokerError::Unavailable(format!("redis: subscribe: {e}"))),
            Err(_) => Err(BrokerError::Unavailable(
                "redis: subscribe timed out".into(),
            )),
        }
    }

    /// Asks the task to drop `channel`'s feed if the hub no longer needs it. Never blocks; a
    /// full queue leaves it to the periodic sweep.
    pub(crate) fn release(&self, channel: &ChannelName) {
        let _ = self.commands.try_send(Request {
            channel: channel.clone(),
            done: None,
        });
    }
}

/// The last delivered position per subscribed channel.
type Delivered = HashMap<ChannelName, (Arc<str>, u64)>;

/// The feed task: connect, resubscribe, catch up, then relay frames until the connection
/// breaks; repeat with backoff. Ends when the broker is dropped.
pub(crate) async fn run(
    inner: Arc<Inner>,
    client: redis::Client,
    mut commands: mpsc::Receiver<Request>,
) {
    let mut backoff = MIN_BACKOFF;
    let mut delivered = Delivered::new();
    loop {
        let connection = tokio::time::timeout(FEED_TIMEOUT, client.get_async_pubsub()).await;
        let (mut sink, mut stream) = match connection {
            Ok(Ok(pubsub)) => pubsub.split(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis pub/sub connect failed");
                if !wait_refusing(&mut commands, &mut backoff).await {
                    return;
                }
                continue;
            }
            Err(_) => {
                tracing::warn!("redis pub/sub connect timed out");
                if !wait_refusing(&mut commands, &mut backoff).await {
                    return;
                }
                continue;
            }
        };
        // Resubscribe whatever the hub still listens to.
        let wanted: Vec<ChannelName> = {
            let mut set = inner.feed.lock();
            set.retain(|c| inner.hub.has_subscribers(c));
            set.iter().cloned().collect()
        };
        delivered.retain(|c, _| wanted.contains(c));
        if !wanted.is_empty() {
            let keys: Vec<String> = wanted.iter().map(|c| inner.keys.feed(c)).collect();
            if let Err(e) = timed(sink.subscribe(&keys)).await {
                tracing::warn!(error = %e, "redis resubscribe failed");
                if !wait_refusing(&mut commands, &mut backoff).await {
                    return;
                }
                continue;
            }
        }
        inner.feed.connected.store(true, Ordering::Release);
        backoff = MIN_BACKOFF;
        tracing::info!(channels = wanted.len(), "redis pub/sub connected");
        for channel in &wanted {
            if let Some((epoch, offset)) = delivered.get(channel).cloned() {
                fill(&inner, &mut delivered, channel, &epoch, offset, u64::MAX).await;
            }
        }

        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.tick().await;
        let broken = loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => relay(&inner, &mut delivered, msg.get_payload_bytes()).await,
                    None => break "connection closed",
                },
                cmd = commands.recv() => match cmd {
                    Some(cmd) => {
                        if let Err(e) = sync(&inner, &mut sink, &mut delivered, cmd).await {
                            tracing::warn!(error = %e, "redis pub/sub command failed");
                            break "command failed";
                        }
                    }
                    None => return,
                },
                _ = sweep.tick() => {
                    let stale: Vec<ChannelName> = inner.feed.lock().iter()
                        .filter(|c| !inner.hub.has_subscribers(c)).cloned().collect();
                    for channel in stale {
                        if sync(&inner, &mut sink, &mut delivered, Request { channel, done: None }).await.is_err() {
                            break;
                        }
                    }
                    if timed(sink.ping::<String>()).await.is_err() {
                        break "ping failed";
                    }
                }
            }
        };
        inner.feed.connected.store(false, Ordering::Release);
        tracing::warn!(
            reason = broken,
            "redis pub/sub connection lost; reconnecting"
        );
        drop(stream);
    }
}

async fn timed<T>(
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(FEED_TIMEOUT, fut).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Sleeps the backoff (with jitter), answering subscribe requests with an error meanwhile so
/// subscribers fail fast. False when the broker is gone.
async fn wait_refusing(commands: &mut mpsc::Receiver<Request>, backoff: &mut Duration) -> bool {
    let jitter = rand::rng().random_range(0..=backoff.as_millis() as u64 / 2);
    let sleep = tokio::time::sleep(*backoff + Duration::from_millis(jitter));
    tokio::pin!(sleep);
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            cmd = commands.recv() => match cmd {
                Some(Request { done: Some(done), .. }) => {
                    let _ = done.send(Err("pub/sub connection is down".into()));
                }
                Some(_) => {}
                None => return false,
            },
        }
    }
}

/// Makes the Redis subscription of one channel match the hub. An error means the connection
/// is unusable (the caller reconnects); the requester is answered either way.
async fn sync(
    inner: &Inner,
    sink: &mut PubSubSink,
    delivered: &mut Delivered,
    cmd: Request,
) -> Result<(), String> {
    let Request { channel, done } = cmd;
    let key = inner.keys.feed(&channel);
    // Decide and record under the lock, after the hub check: a subscriber that registers in
    // the hub afterwards finds the channel missing from the set and sends its own request.
    let (subscribe, unsubscribe) = {
        let mut set = inner.feed.lock();
        let want = inner.hub.has_subscribers(&channel);
        let have = set.contains(&channel);
        if !want && have {
            set.remove(&channel);
        }
        (want && !have, !want && have)
    };
    let mut result = Ok(());
    if unsubscribe {
        result = timed(sink.unsubscribe(&key)).await;
        delivered.remove(&channel);
        tracing::debug!(channel = %channel, "redis feed unsubscribed");
    }
    // Also after an unsubscribe that raced with a new local subscriber.
    if result.is_ok()
        && (subscribe || inner.hub.has_subscribers(&channel))
        && !inner.feed.lock().contains(&channel)
    {
        result = timed(sink.subscribe(&key)).await;
        if result.is_ok() {
            inner.feed.lock().insert(channel.clone());
            tracing::debug!(channel = %channel, "redis feed subscribed");
        }
    }
    if let Some(done) = done {
        let _ = done.send(result.clone());
    }
    result
}

/// Hands one frame from Redis to the hub, keeping each channel's deliveries in offset order.
async fn relay(inner: &Inner, delivered: &mut Delivered, payload: &[u8]) {
    let frame = match codec::decode(payload) {
        Ok(frame) => frame,
        Err(e) => {
            tracing::warn!(error = %e, "undecodable frame on redis feed");
            return;
        }
    };
    let mut publication = frame.publication;
    match frame.kind {
        FrameKind::Stream => {
            let channel = publication.channel.clone();
            match delivered.get(&channel).cloned() {
                Some((epoch, last)) if *epoch == *publication.epoch => {
                    // One allocation per channel and epoch, not one per publication: the
                    // subscribers' stream gates then compare epochs by pointer.
                    publication.epoch = Arc::clone(&epoch);
                    if publication.offset <= last {
                        return; // already delivered by a catch-up
                    }
                    if publication.offset > last + 1 {
                        fill(inner, delivered, &channel, &epoch, last, publication.offset).await;
                    }
                }
                // A new epoch (Redis restarted or lost the channel) whose first publications
                // came before this feed was back: deliver them from history first, so
                // subscribers that stayed connected get the new epoch whole.
                Some(_) if publication.offset > 1 => {
                    let epoch = Arc::clone(&publication.epoch);
                    fill(inner, delivered, &channel, &epoch, 0, publication.offset).await;
                }
                _ => {}
            }
            inner.hub.deliver(&publication);
            delivered.insert(
                channel,
                (Arc::clone(&publication.epoch), publication.offset),
            );
        }
        FrameKind::External => inner.hub.deliver(&publication),
        FrameKind::Transient => inner
            .hub
            .deliver_transient(&publication, frame.except.as_deref()),
    }
}

/// Delivers what `channel` published after `last` and before `before` from history, so the
/// hub sees no gap; when the channel's epoch is no longer `epoch`, the new epoch's publications
/// from its first. If history no longer has them, the gap is logged: clients resuming later
/// are told `recovered: false` by their own recovery read.
async fn fill(
    inner: &Inner,
    delivered: &mut Delivered,
    channel: &ChannelName,
    epoch: &str,
    last: u64,
    before: u64,
) {
    let since = StreamPosition {
        offset: last,
        epoch: epoch.to_owned(),
    };
    let mut recovery = inner.recover(channel, Some(&since)).await;
    // The epoch changed while the feed was away (a reconnect after a Redis restart): what was
    // lost is lost, but the new epoch's publications so far are in history; deliver them all.
    if let Ok(r) = &recovery
        && !r.recovered
        && r.position.epoch != epoch
    {
        let start = StreamPosition {
            offset: 0,
            epoch: r.position.epoch.clone(),
        };
        recovery = inner.recover(channel, Some(&start)).await;
    }
    match recovery {
        Ok(recovery) if recovery.recovered => {
            for p in recovery.publications.iter().filter(|p| p.offset < before) {
                inner.hub.deliver(p);
                delivered.insert(channel.clone(), (Arc::clone(&p.epoch), p.offset));
            }
        }
        Ok(_) => tracing::warn!(channel = %channel, last, "feed gap not in history"),
        Err(e) => tracing::warn!(channel = %channel, error = %e, "feed gap fill failed"),
    }
}
