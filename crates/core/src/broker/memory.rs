//! The in-process broker: per-channel streams in memory, delivery straight to this node's hub.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Broker, BrokerError, HistoryPolicy, OnceKey, Recovery, new_epoch};
use crate::channel::ChannelName;
use crate::hub::Hub;
use crate::publication::{Publication, PublicationData, StreamPosition, now_ms};

struct Stream {
    epoch: Arc<str>,
    offset: u64,
    history: VecDeque<(Instant, Arc<Publication>)>,
    /// The namespace's history TTL, known once something was stored.
    ttl: Option<Duration>,
    last_publish: Instant,
    /// Keys of idempotent publications ([`OnceKey`]) still inside their window, oldest first
    /// by expiry, at most [`ONCE_KEYS`].
    once: VecDeque<(Instant, Box<str>)>,
    /// Removed from the map: whoever locked it after the removal looks the channel up again.
    dead: bool,
}

impl Stream {
    fn new(epoch: Arc<str>) -> Self {
        Self {
            epoch,
            offset: 0,
            history: VecDeque::new(),
            ttl: None,
            last_publish: Instant::now(),
            once: VecDeque::new(),
            dead: false,
        }
    }

    /// Whether `key` was published within its window; remembers it when not. Expired keys
    /// are dropped first, and the oldest when more than [`ONCE_KEYS`] are held, so the memory
    /// an idempotent publisher can pin on one channel is bounded.
    fn seen_once(&mut self, once: &OnceKey, now: Instant) -> bool {
        self.once.retain(|(until, _)| *until > now);
        if self.once.iter().any(|(_, k)| **k == *once.key) {
            return true;
        }
        if self.once.len() >= ONCE_KEYS {
            self.once.pop_front();
        }
        let until = now.checked_add(once.window).unwrap_or(now);
        // Keep the queue ordered by expiry, so `retain` and `pop_front` drop the oldest.
        let at = self.once.partition_point(|(u, _)| *u <= until);
        self.once.insert(at, (until, once.key.as_str().into()));
        false
    }

    fn expire(&mut self, now: Instant) {
        let Some(ttl) = self.ttl else { return };
        while self
            .history
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= ttl)
        {
            self.history.pop_front();
        }
    }

    fn position(&self) -> StreamPosition {
        StreamPosition {
            offset: self.offset,
            epoch: self.epoch.to_string(),
        }
    }

    /// Whether forgetting this stream loses nothing a client could still be given: no live
    /// history, and either nothing was ever published (its state is exactly that of an absent
    /// stream) or its history TTL has passed, or (no history kept) it has been idle for `idle`.
    fn forgettable(&mut self, now: Instant, idle: Duration) -> bool {
        self.expire(now);
        self.once.retain(|(until, _)| *until > now);
        if !self.history.is_empty() || !self.once.is_empty() {
            return false;
        }
        self.offset == 0 || self.ttl.is_some() || now.duration_since(self.last_publish) >= idle
    }
}

/// How many idempotency keys one channel's stream remembers at most (see [`OnceKey`]).
pub(super) const ONCE_KEYS: usize = 4096;

/// The in-process broker: history in memory, delivery straight to this node's hub.
///
/// Each channel's stream has its own lock, held while the offset is assigned *and* the hub
/// fans out, so deliveries of one channel reach every queue in offset order.
///
/// Only channels that matter hold state: a stream exists while the channel has subscribers on
/// this node or live history. Reading the position of a channel nobody listens to creates
/// nothing, and a stream is forgotten when its last subscriber leaves with no live history
/// ([`Broker::on_unsubscribe`]) or when [`sweep`](Self::sweep) finds its history expired.
///
/// Epochs: a stream that has never been published reports the epoch of the current
/// *generation*, `<base>-<n>`, where `<base>` is random per broker and `<n>` grows each time a
/// stream that had publications is forgotten. So an absent channel and a new stream of the same
/// generation are the same history (a client that read "offset 0" of an absent channel recovers
/// the stream's first publications), while a stream created after one with publications was
/// forgotten never reuses an epoch a client may hold.
pub struct MemoryBroker {
    hub: Arc<Hub>,
    streams: Mutex<HashMap<ChannelName, Arc<Mutex<Stream>>>>,
    base: String,
    generation: AtomicU64,
}

impl MemoryBroker {
    /// A broker delivering to `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        Self {
            hub,
            streams: Mutex::default(),
            base: new_epoch(),
            generation: AtomicU64::new(0),
        }
    }

    /// The epoch of streams that have never been published, in this generation.
    fn empty_epoch(&self) -> String {
        format!("{}-{}", self.base, self.generation.load(Ordering::Acquire))
    }

    fn stream(&self, channel: &ChannelName) -> Arc<Mutex<Stream>> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(stream) = streams.get(channel) {
            return Arc::clone(stream);
        }
        let stream = Arc::new(Mutex::new(Stream::new(Arc::from(self.empty_epoch()))));
        streams.insert(channel.clone(), Arc::clone(&stream));
        stream
    }

    fn existing(&self, channel: &ChannelName) -> Option<Arc<Mutex<Stream>>> {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
            .cloned()
    }

    /// Forgets `channel`'s stream if nobody here listens and nothing in it is still live.
    fn release(&self, channel: &ChannelName, idle: Duration) {
        let now = Instant::now();
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let Some(stream) = streams.get(channel) else {
            return;
        };
        if self.hub.has_subscribers(channel) {
            return;
        }
        let mut s = stream.lock().unwrap_or_else(|e| e.into_inner());
        if !s.forgettable(now, idle) {
            return;
        }
        let published = s.offset > 0;
        s.dead = true;
        drop(s);
        streams.remove(channel);
        if published {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Forgets every stream with no subscriber on this node and no live history: expired
    /// history, never published, or (namespaces that keep no history) idle for longer than
    /// `idle`. A client resuming one of them later sees a new epoch and is told its history is
    /// gone, which is the truth.
    ///
    /// A stream with live subscribers on this node is kept however idle: forgetting it would
    /// restart its offsets under a new epoch while those subscribers' writers still expect the
    /// old numbering, and they would drop the new publications as duplicates.
    pub fn sweep(&self, idle: Duration) {
        let now = Instant::now();
        let mut dropped_published = false;
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.retain(|name, stream| {
            if self.hub.has_subscribers(name) {
                return true;
            }
            let mut s = stream.lock().unwrap_or_else(|e| e.into_inner());
            if s.forgettable(now, idle) {
                dropped_published |= s.offset > 0;
                s.dead = true;
                return false;
            }
            true
        });
        let held = streams.len();
        streams.shrink_to(held.saturating_mul(2));
        if dropped_published {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Assigns the next offset, stores and delivers, all under the stream's lock, unless
    /// `skip` (asked under the same lock, so it is atomic with the offset) says not to.
    fn append(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        history: HistoryPolicy,
        skip: impl Fn(&mut Stream, Instant) -> bool,
    ) -> Option<Arc<Publication>> {
        loop {
            let stream = self.stream(channel);
            let mut s = stream.lock().unwrap_or_else(|e| e.into_inner());
            if s.dead {
                continue; // forgotten after we looked it up: take the new one
            }
            let now = Instant::now();
            if skip(&mut s, now) {
                return None;
            }
            s.offset += 1;
            s.last_publish = now;
            let publication = Arc::new(Publication {
                channel: channel.clone(),
                event: Arc::from(event),
                offset: s.offset,
                epoch: Arc::clone(&s.epoch),
                timestamp_ms: now_ms(),
                data,
            });
            if history.size > 0 {
                s.ttl = Some(history.ttl);
                s.expire(now);
                s.history.push_back((now, Arc::clone(&publication)));
                while s.history.len() > history.size {
                    s.history.pop_front();
                }
            }
            // Still under the stream lock: per-channel order is the order queues see.
            self.hub.deliver(&publication);
            return Some(publication);
        }
    }

    /// Number of channel streams held (for tests and metrics).
    pub fn stream_count(&self) -> usize {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        history: HistoryPolicy,
    ) -> Result<Arc<Publication>, BrokerError> {
        Ok(self
            .append(channel, event, data, history, |_, _| false)
            .unwrap_or_else(
                // `append` returns `None` only when its check says so, and this one never does.
                || unreachable!("an unconditional publish was skipped"),
            ))
    }

    async fn publish_once(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        history: HistoryPolicy,
        once: &OnceKey,
    ) -> Result<Option<Arc<Publication>>, BrokerError> {
        Ok(self.append(channel, event, data, history, |s, now| {
            s.seen_once(once, now)
        }))
    }

    async fn deliver(&self, publication: Arc<Publication>) -> Result<(), BrokerError> {
        self.hub.deliver(&publication);
        Ok(())
    }

    async fn publish_transient(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        except: Option<&str>,
    ) -> Result<(), BrokerError> {
        // Nobody here: nothing to encode, and no stream to create for it.
        if !self.hub.has_subscribers(channel) {
            return Ok(());
        }
        loop {
            let stream = self.stream(channel);
            let s = stream.lock().unwrap_or_else(|e| e.into_inner());
            if s.dead {
                continue;
            }
            let publication = Publication {
                channel: channel.clone(),
                event: Arc::from(event),
                offset: s.offset,
                epoch: Arc::clone(&s.epoch),
                timestamp_ms: now_ms(),
                data,
            };
            // Under the stream lock, like stored publications, so it keeps its place among them.
            self.hub.deliver_transient(&publication, except);
            return Ok(());
        }
    }

    async fn recover(
        &self,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
    ) -> Result<Recovery, BrokerError> {
        // Nobody here listens and nothing was kept: answer for the absent stream without
        // creating one (a long-poll naming a thousand new channels must not leave a thousand
        // streams behind). A subscriber, registered with the hub before this read, gets a real
        // stream, so its position stays the one it was given.
        loop {
            let stream = match self.existing(channel) {
                Some(stream) => stream,
                None if !self.hub.has_subscribers(channel) => {
                    return Ok(absent(self.empty_epoch(), since));
                }
                None => self.stream(channel),
            };
            let mut s = stream.lock().unwrap_or_else(|e| e.into_inner());
            if s.dead {
                continue;
            }
            s.expire(Instant::now());
            return Ok(read(&s, since));
        }
    }

    async fn is_ready(&self) -> bool {
        true
    }

    fn on_unsubscribe(&self, channel: &ChannelName) {
        // Never published, or history expired: nothing to keep for the next subscriber. A
        // stream that keeps no history stays until `sweep` finds it idle, so a client that
        // reconnects soon still hears "nothing missed".
        self.release(channel, Duration::MAX);
    }
}

/// The recovery of a channel with no stream: offset 0 in the current generation's epoch.
fn absent(epoch: String, since: Option<&StreamPosition>) -> Recovery {
    let recovered = since.is_some_and(|s| s.offset == 0 && s.epoch == epoch);
    Recovery {
        position: StreamPosition { offset: 0, epoch },
        publications: Vec::new(),
        recovered,
    }
}

/// What a subscriber at `since` missed, from a locked, expired stream.
fn read(s: &Stream, since: Option<&StreamPosition>) -> Recovery {
    let position = s.position();
    let Some(since) = since else {
        return Recovery {
            position,
            publications: Vec::new(),
            recovered: false,
        };
    };
    if since.epoch != *s.epoch || since.offset > s.offset {
        return Recovery {
            position,
            publications: Vec::new(),
            recovered: false,
        };
    }
    if since.offset == s.offset {
        return Recovery {
            position,
            publications: Vec::new(),
            recovered: true,
        };
    }
    let oldest = s.history.front().map(|(_, p)| p.offset);
    match oldest {
        Some(oldest) if oldest <= since.offset + 1 => Recovery {
            position,
            publications: s
                .history
                .iter()
                .filter(|(_, p)| p.offset > since.offset)
                .map(|(_, p)| Arc::clone(p))
                .collect(),
            recovered: true,
        },
        _ => Recovery {
            position,
            publications: Vec::new(),
            recovered: false,
        },
    }
}
