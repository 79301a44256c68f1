//! The in-process broker: per-channel streams in memory, delivery straight to this node's hub.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Broker, BrokerError, HistoryPolicy, Recovery, new_epoch};
use crate::channel::ChannelName;
use crate::hub::Hub;
use crate::publication::{Publication, PublicationData, StreamPosition, now_ms};

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
