//! The Broker: the one path between publishers and hubs.
//!
//! It assigns each publication its offset and epoch, keeps the channel's history, and delivers
//! to every node's hub that has subscribers. `MemoryBroker` is the single-process
//! implementation and the test double; a Redis broker fills the same trait to scale out.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;

use crate::channel::ChannelName;
use crate::hub::Hub;
use crate::publication::{Publication, PublicationData, StreamPosition, now_ms};

/// How much history a channel keeps (per namespace, from configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Publications kept; 0 keeps none (offsets and epochs are still tracked).
    pub size: usize,
    /// How long a publication stays recoverable.
    pub ttl: Duration,
}

/// Why a broker operation failed. Publishers see this as a loud failure, never a silent loss.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker's backing service is unreachable.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The payload could not be encoded.
    #[error("could not encode publication: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The outcome of reading a channel's stream for a subscriber.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The channel's current position.
    pub position: StreamPosition,
    /// Publications after the client's `since`, in order (empty without `since`).
    pub publications: Vec<Arc<Publication>>,
    /// Whether `publications` is exactly what the client missed.
    pub recovered: bool,
}

/// Publishes, remembers, and delivers publications.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Assigns the next offset on `channel`, appends to history, and delivers to every hub with
    /// subscribers. Returns the publication as delivered.
    async fn publish(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        history: HistoryPolicy,
    ) -> Result<Arc<Publication>, BrokerError>;

    /// Delivers a publication whose offset and epoch were assigned elsewhere (the durable user
    /// inbox sequences in the database) to every node's hub, without touching this broker's
    /// offsets or history.
    async fn deliver(&self, publication: Arc<Publication>) -> Result<(), BrokerError>;

    /// Delivers a transient publication: to current subscribers only, except the connection
    /// `except` (the one that caused it, for "to the others" notices such as typing
    /// indicators). It takes no offset and is never stored, so it cannot be recovered and does
    /// not open a gap in the channel's history; it carries the channel's current position.
    async fn publish_transient(
        &self,
        channel: &ChannelName,
        event: &str,
        data: PublicationData,
        except: Option<&str>,
    ) -> Result<(), BrokerError>;

    /// The channel's position and, when `since` is given, what was published after it.
    async fn recover(
        &self,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
    ) -> Result<Recovery, BrokerError>;

    /// Whether the broker can currently publish (for `/readyz`).
    async fn is_ready(&self) -> bool;

    /// Called after this node's hub gained a subscriber on `channel`, and before the
    /// subscriber's catch-up is read: when it returns `Ok`, every publication on `channel`
    /// from then on reaches this node's hub. A broker that delivers across nodes subscribes to
    /// the channel's feed here; the in-memory broker has nothing to do.
    async fn on_subscribe(&self, _channel: &ChannelName) -> Result<(), BrokerError> {
        Ok(())
    }

    /// Called after this node's hub lost its last subscriber on `channel`, so a cross-node
    /// broker can stop receiving traffic nobody here listens to. Must not block: it runs in
    /// connection teardown (including `Drop`).
    fn on_unsubscribe(&self, _channel: &ChannelName) {}
}

/// A new random epoch: short, URL-safe, different after every history loss.
pub fn new_epoch() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

struct Stream {
    epoch: Arc<str>,
    offset: u64,
    history: VecDeque<(Instant, Arc<Publication>)>,
    last_publish: Instant,
}

impl Stream {
    fn new() -> Self {
        Self {
            epoch: Arc::from(new_epoch()),
            offset: 0,
            history: VecDeque::new(),
            last_publish: Instant::now(),
        }
    }

    fn expire(&mut self, ttl: Duration, now: Instant) {
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
}

/// The in-process broker: history in memory, delivery straight to this node's hub.
///
/// Each channel's stream has its own lock, held while the offset is assigned *and* the hub
/// fans out, so deliveries of one channel reach every queue in offset order.
pub struct MemoryBroker {
    hub: Arc<Hub>,
    streams: Mutex<HashMap<ChannelName, Arc<Mutex<Stream>>>>,
    ttls: Mutex<HashMap<ChannelName, Duration>>,
}

impl MemoryBroker {
    /// A broker delivering to `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        Self {
            hub,
            streams: Mutex::default(),
            ttls: Mutex::default(),
        }
    }

    fn stream(&self, channel: &ChannelName) -> Arc<Mutex<Stream>> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            streams
                .entry(channel.clone())
                .or_insert_with(|| Arc::new(Mutex::new(Stream::new()))),
        )
    }

    /// Forgets streams idle for longer than `idle` whose history has expired, so channels used
    /// once (a connection's personal channel) do not accumulate. A client resuming one of them
    /// later sees a new epoch and is told its history is gone, which is the truth.
    ///
    /// A stream with live subscribers on this node is kept however idle: forgetting it would
    /// restart its offsets under a new epoch while those subscribers' writers still expect the
    /// old numbering, and they would drop the new publications as duplicates.
    pub fn sweep(&self, idle: Duration) {
        let now = Instant::now();
        let ttls = self.ttls.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        streams.retain(|name, stream| {
            if self.hub.has_subscribers(name) {
                return true;
            }
            let mut s = stream.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(ttl) = ttls.get(name) {
                s.expire(*ttl, now);
            }
            !(s.history.is_empty() && now.duration_since(s.last_publish) >= idle)
        });
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
        let stream = self.stream(channel);
        let mut s = stream.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
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
            s.expire(history.ttl, now);
            s.history.push_back((now, Arc::clone(&publication)));
            while s.history.len() > history.size {
                s.history.pop_front();
            }
            self.ttls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(channel.clone())
                .or_insert(history.ttl);
        }
        // Still under the stream lock: per-channel order is the order queues see.
        self.hub.deliver(&publication);
        Ok(publication)
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
        let stream = self.stream(channel);
        let s = stream.lock().unwrap_or_else(|e| e.into_inner());
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
        Ok(())
    }

    async fn recover(
        &self,
        channel: &ChannelName,
        since: Option<&StreamPosition>,
    ) -> Result<Recovery, BrokerError> {
        let ttl = self
            .ttls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
            .copied();
        let stream = self.stream(channel);
        let mut s = stream.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ttl) = ttl {
            s.expire(ttl, Instant::now());
        }
        let position = s.position();
        let Some(since) = since else {
            return Ok(Recovery {
                position,
                publications: Vec::new(),
                recovered: false,
            });
        };
        if since.epoch != *s.epoch || since.offset > s.offset {
            return Ok(Recovery {
                position,
                publications: Vec::new(),
                recovered: false,
            });
        }
        if since.offset == s.offset {
            return Ok(Recovery {
                position,
                publications: Vec::new(),
                recovered: true,
            });
        }
        let oldest = s.history.front().map(|(_, p)| p.offset);
        match oldest {
            Some(oldest) if oldest <= since.offset + 1 => Ok(Recovery {
                position,
                publications: s
                    .history
                    .iter()
                    .filter(|(_, p)| p.offset > since.offset)
                    .map(|(_, p)| Arc::clone(p))
                    .collect(),
                recovered: true,
            }),
            _ => Ok(Recovery {
                position,
                publications: Vec::new(),
                recovered: false,
            }),
        }
    }

    async fn is_ready(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(size: usize) -> HistoryPolicy {
        HistoryPolicy {
            size,
            ttl: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn offsets_grow_and_recovery_is_exact() {
        let broker = MemoryBroker::new(Arc::new(Hub::default()));
        let ch = ChannelName::parse("missions").unwrap();
        let data = PublicationData::shared(&1).unwrap();
        let first = broker
            .publish(&ch, "e", data.clone(), policy(3))
            .await
            .unwrap();
        assert_eq!(first.offset, 1);
        let since = StreamPosition {
            offset: 1,
            epoch: first.epoch.to_string(),
        };
        for _ in 0..3 {
            broker
                .publish(&ch, "e", data.clone(), policy(3))
                .await
                .unwrap();
        }
        let r = broker.recover(&ch, Some(&since)).await.unwrap();
        assert!(r.recovered);
        assert_eq!(
            r.publications.iter().map(|p| p.offset).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        assert_eq!(r.position.offset, 4);
        // One more: offset 2 falls out of a 3-entry history, so offset 1 can't be recovered.
        broker
            .publish(&ch, "e", data.clone(), policy(3))
            .await
            .unwrap();
        assert!(!broker.recover(&ch, Some(&since)).await.unwrap().recovered);
        // Bogus epoch.
        let bogus = StreamPosition {
            offset: 4,
            epoch: "nope".into(),
        };
        let r = broker.recover(&ch, Some(&bogus)).await.unwrap();
        assert!(!r.recovered);
        assert_eq!(r.position.offset, 5);
        // Up to date.
        let now = StreamPosition {
            offset: 5,
            epoch: first.epoch.to_string(),
        };
        let r = broker.recover(&ch, Some(&now)).await.unwrap();
        assert!(r.recovered && r.publications.is_empty());
    }

    #[tokio::test]
    async fn transient_publications_take_no_offset_and_skip_history() {
        use crate::hub::{ConnectionHandle, Outbound, WireFormat};
        use crate::publication::Audience;
        let hub = Arc::new(Hub::default());
        let broker = MemoryBroker::new(Arc::clone(&hub));
        let ch = ChannelName::parse("room:1").unwrap();
        let data = PublicationData::shared(&"x").unwrap();
        // No subscriber: nothing happens, not even a stream.
        broker
            .publish_transient(&ch, "t", data.clone(), None)
            .await
            .unwrap();
        assert_eq!(broker.stream_count(), 0);
        let (me, mut rme) =
            ConnectionHandle::new("me".into(), WireFormat::Native, Audience::Agent, 8);
        let (other, mut rother) =
            ConnectionHandle::new("o".into(), WireFormat::Native, Audience::Agent, 8);
        hub.subscribe(&ch, &me);
        hub.subscribe(&ch, &other);
        let first = broker
            .publish(&ch, "e", data.clone(), policy(10))
            .await
            .unwrap();
        broker
            .publish_transient(&ch, "t", data.clone(), Some("me"))
            .await
            .unwrap();
        let second = broker
            .publish(&ch, "e", data.clone(), policy(10))
            .await
            .unwrap();
        assert_eq!((first.offset, second.offset), (1, 2), "no offset taken");
        let since = StreamPosition {
            offset: 0,
            epoch: first.epoch.to_string(),
        };
        let r = broker.recover(&ch, Some(&since)).await.unwrap();
        assert!(r.recovered);
        assert_eq!(r.publications.len(), 2, "not in history");
        let kinds = |r: &mut tokio::sync::mpsc::Receiver<Outbound>| {
            std::iter::from_fn(|| r.try_recv().ok())
                .map(|o| match o {
                    Outbound::Delivery(_) => "d",
                    Outbound::Transient(_) => "t",
                    _ => "?",
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(kinds(&mut rme), ["d", "d"]);
        assert_eq!(kinds(&mut rother), ["d", "t", "d"]);
    }

    #[tokio::test(start_paused = true)]
    async fn history_expires_and_idle_streams_are_swept() {
        let broker = MemoryBroker::new(Arc::new(Hub::default()));
        let ch = ChannelName::parse("conn:abc").unwrap();
        let p = broker
            .publish(
                &ch,
                "e",
                PublicationData::shared(&1).unwrap(),
                HistoryPolicy {
                    size: 10,
                    ttl: Duration::from_millis(50),
                },
            )
            .await
            .unwrap();
        assert_eq!(broker.stream_count(), 1);
        std::thread::sleep(Duration::from_millis(60));
        let since = StreamPosition {
            offset: 0,
            epoch: p.epoch.to_string(),
        };
        assert!(!broker.recover(&ch, Some(&since)).await.unwrap().recovered);
        broker.sweep(Duration::from_millis(10));
        assert_eq!(broker.stream_count(), 0);
    }

    #[tokio::test]
    async fn streams_with_subscribers_are_never_swept() {
        use crate::hub::{ConnectionHandle, WireFormat};
        use crate::publication::Audience;
        let hub = Arc::new(Hub::default());
        let broker = MemoryBroker::new(Arc::clone(&hub));
        let ch = ChannelName::parse("conn:live").unwrap();
        let (conn, mut rx) =
            ConnectionHandle::new("c".into(), WireFormat::Native, Audience::Agent, 8);
        hub.subscribe(&ch, &conn);
        let data = PublicationData::shared(&1).unwrap();
        let first = broker
            .publish(&ch, "e", data.clone(), policy(0))
            .await
            .unwrap();
        broker.sweep(Duration::ZERO);
        assert_eq!(broker.stream_count(), 1);
        let second = broker.publish(&ch, "e", data, policy(0)).await.unwrap();
        assert_eq!((second.offset, &second.epoch), (2, &first.epoch));
        assert!(rx.try_recv().is_ok() && rx.try_recv().is_ok());
        hub.unsubscribe(&ch, "c");
        broker.sweep(Duration::ZERO);
        assert_eq!(broker.stream_count(), 0);
    }
}
