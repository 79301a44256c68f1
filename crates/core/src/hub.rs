//! The node-local registry of subscriptions and the only place that fans out.
//!
//! Sharded by channel name so subscribes on different channels never contend; each channel's
//! subscriber set has its own lock, held only for non-blocking `try_send`s. A publication is
//! encoded at most once per (wire format, audience) actually present among the receivers, and
//! every receiver gets a clone of the same bytes.
//!
//! Besides stored publications (with an offset, replayable) the hub fans out *transient* ones
//! ([`Hub::deliver_transient`]): live-only notices such as typing indicators, which may skip one
//! connection (the one that caused them) and never enter a stream's offset sequence.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::Poll;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::sync::{Notify, mpsc};

use crate::channel::ChannelName;
use crate::codes::CloseCode;
use crate::protocol::encode_delivery;
use crate::publication::{Audience, Publication};
use crate::socketio::encode_publication_args;

/// A connection id, shared cheaply.
pub type ConnId = Arc<str>;

/// How a connection's frames are encoded; one encoding per format per publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// The native JSON envelope of SPEC §4.1 (also the `data:` of SSE and long-poll updates).
    Native,
    /// The argument array of a Socket.IO `EVENT` packet, `["<event>",<data>]` (SPEC §4.2): a
    /// Socket.IO client sees a publication as `emit(event, data)`.
    SocketIo,
}

impl WireFormat {
    const COUNT: usize = 2;

    fn index(self) -> usize {
        match self {
            Self::Native => 0,
            Self::SocketIo => 1,
        }
    }

    /// Encodes a publication for this format and audience.
    pub fn encode(self, publication: &Publication, audience: Audience) -> Bytes {
        match self {
            Self::Native => Bytes::from(encode_delivery(publication, audience)),
            Self::SocketIo => Bytes::from(encode_publication_args(
                &publication.event,
                publication.data.for_audience(audience),
                publication.channel.as_str(),
                publication.offset,
                &publication.epoch,
            )),
        }
    }
}

/// What goes through a connection's bounded outbound queue, in order, to its writer task.
///
/// Kept to at most 40 bytes (one `Bytes` and a tag): every connection's queue allocates its first
/// block of 32 slots up front, so the size of this enum is paid by every idle connection. The
/// large, rare variants are boxed and publications are one shared `Arc` (see [`Encoded`]).
#[derive(Debug)]
pub enum Outbound {
    /// A reply or notice, written as is.
    Frame(Bytes),
    /// A publication, pre-encoded, with its position so the writer can drop duplicates.
    Delivery(Arc<Encoded>),
    /// A subscription is being set up: hold live deliveries for the channel until
    /// [`Outbound::CompleteSubscribe`] arrives.
    BeginSubscribe {
        /// Channel.
        channel: ChannelName,
    },
    /// Catch-up is known: write `reply`, then `catch_up`, then held deliveries after `after`.
    CompleteSubscribe(Box<Completion>),
    /// A transient publication (no offset of its own, not in history): written only while the
    /// channel is live for this connection, dropped while its subscription is being set up or
    /// after it ended. See [`Hub::deliver_transient`]. Its `offset` is not a position.
    Transient(Arc<Encoded>),
    /// The client left the channel: forget its stream state, then write `reply`.
    Unsubscribed(Box<Unsubscription>),
}

/// A publication encoded for one wire format and audience, shared by every subscriber that
/// receives exactly these bytes.
#[derive(Debug)]
pub struct Encoded {
    /// Channel it was published on.
    pub channel: ChannelName,
    /// Its offset in the channel.
    pub offset: u64,
    /// The encoded frame.
    pub frame: Bytes,
}

/// The end of a subscription's setup (see [`Outbound::CompleteSubscribe`]).
#[derive(Debug)]
pub struct Completion {
    /// Channel.
    pub channel: ChannelName,
    /// The `subscribed` reply (or an error reply if the subscription failed); `None` for
    /// implicit subscriptions the client did not ask for.
    pub reply: Option<Bytes>,
    /// The last offset the client will have seen once `catch_up` is written.
    pub after: u64,
    /// Missed publications, in order, pre-encoded for this connection.
    pub catch_up: Vec<(u64, Bytes)>,
    /// False when the subscription failed and held deliveries must be discarded.
    pub ok: bool,
}

/// The client left a channel (see [`Outbound::Unsubscribed`]).
#[derive(Debug)]
pub struct Unsubscription {
    /// Channel.
    pub channel: ChannelName,
    /// The `unsubscribed` reply.
    pub reply: Bytes,
}

/// The hub's view of one connection: where to queue its frames and how to stop it.
#[derive(Debug)]
pub struct ConnectionHandle {
    id: ConnId,
    format: WireFormat,
    audience: AtomicU8,
    tx: mpsc::Sender<Outbound>,
    close_reason: OnceLock<CloseCode>,
    close_signal: Notify,
    /// Woken by [`close`](ConnectionHandle::close) for the one task waiting in
    /// [`writer_closed`](ConnectionHandle::writer_closed).
    writer_waker: AtomicWaker,
    user: RwLock<Option<Arc<str>>>,
    overflowed: AtomicBool,
}

impl ConnectionHandle {
    /// Creates the handle and the receiving end its writer task drains.
    pub fn new(
        id: ConnId,
        format: WireFormat,
        audience: Audience,
        capacity: usize,
    ) -> (Arc<Self>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let handle = Arc::new(Self {
            id,
            format,
            audience: AtomicU8::new(audience.index() as u8),
            tx,
            close_reason: OnceLock::new(),
            close_signal: Notify::new(),
            writer_waker: AtomicWaker::new(),
            user: RwLock::new(None),
            overflowed: AtomicBool::new(false),
        });
        (handle, rx)
    }

    /// The connection id.
    pub fn id(&self) -> &ConnId {
        &self.id
    }

    /// The wire format its frames (replies, catch-up) must be encoded in.
    pub fn format(&self) -> WireFormat {
        self.format
    }

    /// The audience deliveries are encoded for; changes when the client re-authenticates.
    pub fn audience(&self) -> Audience {
        match self.audience.load(Ordering::Relaxed) {
            1 => Audience::Hq,
            _ => Audience::Agent,
        }
    }

    /// Switches the audience (after an `auth` message).
    pub fn set_audience(&self, audience: Audience) {
        self.audience
            .store(audience.index() as u8, Ordering::Relaxed);
    }

    /// Queues a reply, waiting for room: replies are answers to the client's own requests, so
    /// back-pressure on them only slows that client's reader.
    pub async fn send(&self, item: Outbound) -> bool {
        self.tx.send(item).await.is_ok()
    }

    /// Asks the connection to close with `code`. The first reason wins.
    pub fn close(&self, code: CloseCode) {
        if self.close_reason.set(code).is_ok() {
            self.close_signal.notify_waiters();
            self.writer_waker.wake();
        }
    }

    /// Like [`closed`](Self::closed), for the connection's writer task alone: polling it is one
    /// atomic load and a lock-free waker registration, where a `Notify` takes a mutex on every
    /// poll. The writer polls it once per delivery (the close must win over a stalled write),
    /// and that mutex was 2–3% of the server's CPU in the closed-loop flamegraph. Only one task
    /// may wait on it at a time: a second waiter replaces the first's registration.
    pub fn writer_closed(&self) -> impl Future<Output = CloseCode> + '_ {
        std::future::poll_fn(move |cx| {
            if let Some(code) = self.close_reason.get() {
                return Poll::Ready(*code);
            }
            self.writer_waker.register(cx.waker());
            // Checked again after registering: a close in between has already called `wake`
            // on the old waker (or none), so it must be seen here.
            match self.close_reason.get() {
                Some(code) => Poll::Ready(*code),
                None => Poll::Pending,
            }
        })
    }

    /// Waits until [`close`](Self::close) is called and returns the reason. Any number of
    /// tasks (reader, writer) may wait at once.
    pub async fn closed(&self) -> CloseCode {
        loop {
            let notified = self.close_signal.notified();
            tokio::pin!(notified);
            // Register before checking, so a close between the check and the await is seen.
            notified.as_mut().enable();
            if let Some(code) = self.close_reason.get() {
                return *code;
            }
            notified.await;
        }
    }

    /// The user id shown in presence (`None` when anonymous).
    pub fn user(&self) -> Option<Arc<str>> {
        self.user.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the user after (re-)authentication.
    pub fn set_user(&self, user: Option<&str>) {
        *self.user.write().unwrap_or_else(|e| e.into_inner()) = user.map(Arc::from);
    }

    /// The close reason, if closing was requested.
    pub fn close_reason(&self) -> Option<CloseCode> {
        self.close_reason.get().copied()
    }

    /// Whether a delivery was ever dropped because the queue was full. From then on the
    /// connection's stream has a gap: its writer must not write any further delivery (a client
    /// resuming from a later offset would silently skip the dropped one), only close.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Acquire)
    }

    /// Queues a delivery without waiting; a full queue marks the connection a slow consumer.
    fn offer(&self, item: Outbound) -> Offer {
        match self.tx.try_send(item) {
            Ok(()) => Offer::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Set before anything later can be queued, so a writer that sees a later item
                // also sees the flag.
                self.overflowed.store(true, Ordering::Release);
                self.close(CloseCode::SlowConsumer);
                Offer::Dropped
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Gone,
        }
    }
}

enum Offer {
    Queued,
    Dropped,
    Gone,
}

type Subscribers = HashMap<ConnId, Arc<ConnectionHandle>>;
type Shard = RwLock<HashMap<ChannelName, Arc<Mutex<Subscribers>>>>;

/// Counters the metrics endpoint reads.
#[derive(Debug, Default)]
pub struct HubStats {
    /// Frames queued to connections.
    pub deliveries: AtomicUsize,
    /// Frames dropped because a queue was full.
    pub dropped: AtomicUsize,
    /// Active subscriptions on this node.
    pub subscriptions: AtomicUsize,
}

/// The sharded subscription registry of one node.
#[derive(Debug)]
pub struct Hub {
    shards: Box<[Shard]>,
    stats: HubStats,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new(64)
    }
}

impl Hub {
    /// A hub with `shards` independent locks.
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1)).map(|_| RwLock::default()).collect(),
            stats: HubStats::default(),
        }
    }

    /// Counters for metrics.
    pub fn stats(&self) -> &HubStats {
        &self.stats
    }

    fn shard(
        &self,
        channel: &ChannelName,
    ) -> &RwLock<HashMap<ChannelName, Arc<Mutex<Subscribers>>>> {
        let mut h = DefaultHasher::new();
        channel.hash(&mut h);
        let i = (h.finish() as usize) % self.shards.len();
        &self.shards[i]
    }

    /// Adds `conn` to `channel`. Returns false when it was already subscribed.
    pub fn subscribe(&self, channel: &ChannelName, conn: &Arc<ConnectionHandle>) -> bool {
        let entry = {
            let mut shard = self
                .shard(channel)
                .write()
                .unwrap_or_else(|e| e.into_inner());
            Arc::clone(shard.entry(channel.clone()).or_default())
        };
        let mut subs = entry.lock().unwrap_or_else(|e| e.into_inner());
        let added = subs.insert(conn.id.clone(), Arc::clone(conn)).is_none();
        if added {
            self.stats.subscriptions.fetch_add(1, Ordering::Relaxed);
        }
        added
    }

    /// Removes `conn` from `channel`. Returns false when it was not subscribed.
    pub fn unsubscribe(&self, channel: &ChannelName, conn: &str) -> bool {
        let mut shard = self
            .shard(channel)
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let Some(entry) = shard.get(channel) else {
            return false;
        };
        let (removed, empty) = {
            let mut subs = entry.lock().unwrap_or_else(|e| e.into_inner());
            let removed = subs.remove(conn).is_some();
            (removed, subs.is_empty())
        };
        if empty {
            shard.remove(channel);
        }
        if removed {
            self.stats.subscriptions.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Whether anyone on this node listens on `channel` (checked before any encoding work).
    pub fn has_subscribers(&self, channel: &ChannelName) -> bool {
        self.shard(channel)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(channel)
    }

    /// Number of subscribers on `channel` on this node.
    pub fn subscriber_count(&self, channel: &ChannelName) -> usize {
        let entry = self
            .shard(channel)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
            .cloned();
        entry.map_or(0, |e| e.lock().unwrap_or_else(|e| e.into_inner()).len())
    }

    /// The connections subscribed to `channel` on this node, with their users (presence).
    pub fn members(&self, channel: &ChannelName) -> Vec<(ConnId, Option<Arc<str>>)> {
        let entry = self
            .shard(channel)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
            .cloned();
        entry.map_or_else(Vec::new, |e| {
            e.lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .map(|c| (c.id.clone(), c.user()))
                .collect()
        })
    }

    /// Fans `publication` out to this node's subscribers. Never waits: a full queue closes that
    /// connection as a slow consumer instead of delaying the others.
    pub fn deliver(&self, publication: &Publication) {
        self.fan_out(publication, None, false);
    }

    /// Fans out a transient publication: live subscribers only, skipping `except` (the
    /// connection that caused it, for "to the others" notices). Its `offset` is the channel's
    /// current one and is not a new position, so it is queued as [`Outbound::Transient`] and
    /// bypasses the per-channel duplicate check.
    pub fn deliver_transient(&self, publication: &Publication, except: Option<&str>) {
        self.fan_out(publication, except, true);
    }

    fn fan_out(&self, publication: &Publication, except: Option<&str>, transient: bool) {
        let entry = self
            .shard(&publication.channel)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&publication.channel)
            .cloned();
        let Some(entry) = entry else { return };
        let subs = entry.lock().unwrap_or_else(|e| e.into_inner());
        let mut cache: [[Option<Arc<Encoded>>; 2]; WireFormat::COUNT] = Default::default();
        let shared = publication.data.is_shared();
        let (mut delivered, mut dropped) = (0usize, 0usize);
        for conn in subs.values() {
            if except.is_some_and(|e| *e == *conn.id) {
                continue;
            }
            let audience = if shared {
                Audience::Agent
            } else {
                conn.audience()
            };
            let slot = &mut cache[conn.format.index()][audience.index()];
            let encoded = slot
                .get_or_insert_with(|| {
                    Arc::new(Encoded {
                        channel: publication.channel.clone(),
                        offset: publication.offset,
                        frame: conn.format.encode(publication, audience),
                    })
                })
                .clone();
            let item = if transient {
                Outbound::Transient(encoded)
            } else {
                Outbound::Delivery(encoded)
            };
            match conn.offer(item) {
                Offer::Queued => delivered += 1,
                Offer::Dropped => dropped += 1,
                Offer::Gone => {}
            }
        }
        self.stats
            .deliveries
            .fetch_add(delivered, Ordering::Relaxed);
        self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writer_closed_wakes_on_close_and_returns_at_once_after() {
        let (handle, _rx) =
            ConnectionHandle::new(Arc::from("w"), WireFormat::Native, Audience::Agent, 4);
        let waiter = {
            let handle = Arc::clone(&handle);
            tokio::spawn(async move { handle.writer_closed().await })
        };
        // Let the waiter register before the close.
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        handle.close(CloseCode::SlowConsumer);
        let code = tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken by close")
            .expect("task");
        assert_eq!(code, CloseCode::SlowConsumer);
        // Later calls see the first reason immediately.
        handle.close(CloseCode::Normal);
        assert_eq!(handle.writer_closed().await, CloseCode::SlowConsumer);
    }

    #[test]
    fn queue_items_stay_small() {
        // Every connection's queue allocates 32 slots up front: at 88 bytes (before the large
        // variants were boxed) that was 2.8 KiB of each idle connection's memory.
        assert!(
            std::mem::size_of::<Outbound>() <= 40,
            "Outbound is {} bytes",
            std::mem::size_of::<Outbound>()
        );
    }
    use crate::publication::PublicationData;

    fn publication(channel: &ChannelName, offset: u64) -> Publication {
        Publication {
            channel: channel.clone(),
            event: Arc::from("e"),
            offset,
            epoch: Arc::from("x"),
            timestamp_ms: 1,
            data: PublicationData::by_audience(&"agent", &"hq").unwrap(),
        }
    }

    #[test]
    fn fans_out_shared_bytes_per_audience() {
        let hub = Hub::default();
        let ch = ChannelName::parse("missions").unwrap();
        let (a1, mut r1) =
            ConnectionHandle::new("a1".into(), WireFormat::Native, Audience::Agent, 8);
        let (a2, mut r2) =
            ConnectionHandle::new("a2".into(), WireFormat::Native, Audience::Agent, 8);
        let (h1, mut r3) = ConnectionHandle::new("h1".into(), WireFormat::Native, Audience::Hq, 8);
        for c in [&a1, &a2, &h1] {
            assert!(hub.subscribe(&ch, c));
        }
        assert!(!hub.subscribe(&ch, &a1));
        hub.deliver(&publication(&ch, 1));
        let frame = |r: &mut mpsc::Receiver<Outbound>| match r.try_recv().unwrap() {
            Outbound::Delivery(d) => d.frame.clone(),
            other => panic!("{other:?}"),
        };
        let (f1, f2, f3) = (frame(&mut r1), frame(&mut r2), frame(&mut r3));
        // Same allocation for the two agents: encoded once, shared.
        assert_eq!(f1.as_ptr(), f2.as_ptr());
        assert!(
            std::str::from_utf8(&f1)
                .unwrap()
                .contains("\"data\":\"agent\"")
        );
        assert!(
            std::str::from_utf8(&f3)
                .unwrap()
                .contains("\"data\":\"hq\"")
        );
        assert_eq!(hub.stats().deliveries.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn full_queue_closes_only_that_connection() {
        let hub = Hub::default();
        let ch = ChannelName::parse("lobby").unwrap();
        let (slow, _keep) =
            ConnectionHandle::new("s".into(), WireFormat::Native, Audience::Agent, 1);
        let (fast, mut rf) =
            ConnectionHandle::new("f".into(), WireFormat::Native, Audience::Agent, 8);
        hub.subscribe(&ch, &slow);
        hub.subscribe(&ch, &fast);
        hub.deliver(&publication(&ch, 1));
        hub.deliver(&publication(&ch, 2));
        assert_eq!(slow.close_reason(), Some(CloseCode::SlowConsumer));
        assert!(slow.overflowed() && !fast.overflowed());
        assert_eq!(fast.close_reason(), None);
        assert!(rf.try_recv().is_ok() && rf.try_recv().is_ok());
        assert_eq!(hub.stats().dropped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn socketio_and_native_each_encoded_once_per_audience() {
        let hub = Hub::default();
        let ch = ChannelName::parse("missions").unwrap();
        let (n, mut rn) = ConnectionHandle::new("n".into(), WireFormat::Native, Audience::Agent, 8);
        let (s1, mut r1) =
            ConnectionHandle::new("s1".into(), WireFormat::SocketIo, Audience::Agent, 8);
        let (s2, mut r2) =
            ConnectionHandle::new("s2".into(), WireFormat::SocketIo, Audience::Agent, 8);
        let (sh, mut rh) =
            ConnectionHandle::new("sh".into(), WireFormat::SocketIo, Audience::Hq, 8);
        for c in [&n, &s1, &s2, &sh] {
            hub.subscribe(&ch, c);
        }
        hub.deliver(&publication(&ch, 1));
        let frame = |r: &mut mpsc::Receiver<Outbound>| match r.try_recv().unwrap() {
            Outbound::Delivery(d) => {
                assert_eq!(d.offset, 1);
                d.frame.clone()
            }
            other => panic!("{other:?}"),
        };
        let (fs1, fs2) = (frame(&mut r1), frame(&mut r2));
        assert_eq!(
            &fs1[..],
            br#"["e","agent",{"channel":"missions","offset":1,"epoch":"x"}]"#
        );
        assert_eq!(
            fs1.as_ptr(),
            fs2.as_ptr(),
            "one encoding shared by both sockets"
        );
        assert_eq!(
            &frame(&mut rh)[..],
            br#"["e","hq",{"channel":"missions","offset":1,"epoch":"x"}]"#
        );
        assert!(frame(&mut rn).starts_with(br#"{"type":"e""#));
    }

    #[test]
    fn transient_skips_the_excluded_connection() {
        let hub = Hub::default();
        let ch = ChannelName::parse("room:7").unwrap();
        let (a, mut ra) =
            ConnectionHandle::new("a".into(), WireFormat::SocketIo, Audience::Agent, 8);
        let (b, mut rb) = ConnectionHandle::new("b".into(), WireFormat::Native, Audience::Agent, 8);
        hub.subscribe(&ch, &a);
        hub.subscribe(&ch, &b);
        hub.deliver_transient(&publication(&ch, 3), Some("a"));
        assert!(
            ra.try_recv().is_err(),
            "the excluded connection gets nothing"
        );
        match rb.try_recv().unwrap() {
            Outbound::Transient(t) => {
                assert_eq!(t.channel, ch);
                assert!(
                    std::str::from_utf8(&t.frame)
                        .unwrap()
                        .contains("\"type\":\"e\"")
                );
            }
            other => panic!("{other:?}"),
        }
        hub.deliver_transient(&publication(&ch, 3), None);
        assert!(matches!(ra.try_recv(), Ok(Outbound::Transient(_))));
        assert!(matches!(rb.try_recv(), Ok(Outbound::Transient(_))));
    }

    #[test]
    fn unsubscribe_removes_empty_channels() {
        let hub = Hub::default();
        let ch = ChannelName::parse("room:1").unwrap();
        let (c, _r) = ConnectionHandle::new("c".into(), WireFormat::Native, Audience::Agent, 8);
        hub.subscribe(&ch, &c);
        assert!(hub.has_subscribers(&ch));
        assert!(hub.unsubscribe(&ch, "c"));
        assert!(!hub.has_subscribers(&ch));
        assert!(!hub.unsubscribe(&ch, "c"));
        assert_eq!(hub.stats().subscriptions.load(Ordering::Relaxed), 0);
    }
}
