//! The sharded subscription registry of one node and the fan-out.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use super::connection::Offer;
use super::{ConnId, ConnectionHandle, Encoded, Outbound, Transport, WireFormat, is_wire_reserved};
use crate::channel::ChannelName;
use crate::publication::{Audience, Publication};

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

/// What one fan-out of one publication did, handed to the [`FanOutObserver`] once per
/// publication: the hot path counts in local variables and reports a batch, never an
/// increment per subscriber.
#[derive(Debug)]
pub struct FanOut<'a> {
    /// What was fanned out.
    pub publication: &'a Publication,
    /// Frames queued, per [`Transport::index`].
    pub delivered: [usize; Transport::COUNT],
    /// Frames dropped because a queue was full (those connections close as slow consumers).
    pub dropped: usize,
    /// Whether it was a transient (live-only) publication.
    pub transient: bool,
}

/// Sees every fan-out once, after it: how the server's metrics count deliveries per transport,
/// drops and publish latency without the core knowing of any metrics library. Called with the
/// channel's subscriber lock released; must not block.
pub trait FanOutObserver: Send + Sync + std::fmt::Debug + 'static {
    /// One fan-out happened.
    fn fanned_out(&self, fan_out: &FanOut<'_>);
}

/// The sharded subscription registry of one node.
#[derive(Debug)]
pub struct Hub {
    shards: Box<[Shard]>,
    stats: HubStats,
    observer: OnceLock<Arc<dyn FanOutObserver>>,
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
            observer: OnceLock::new(),
        }
    }

    /// Installs the observer every fan-out reports to (the server's metrics). Only the first
    /// call takes effect: the hub is shared before the metrics exist, and an observer swapped
    /// mid-flight would split counts between two registries. Returns whether it was installed.
    pub fn set_observer(&self, observer: Arc<dyn FanOutObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// The counters `/metrics` reads: relaxed atomics, so reading them takes no hub lock.
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
        // Publishing refuses these names; this also keeps out any that reach the hub another
        // way (history written by an older node, another publisher on a shared broker).
        if is_wire_reserved(&publication.event) {
            return;
        }
        // The registry's own name for the channel goes into every delivery: one allocation
        // for as long as anyone here is subscribed, so each connection's gate compares it by
        // pointer (the publication's name is a fresh allocation per publication).
        let entry = self
            .shard(&publication.channel)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get_key_value(&publication.channel)
            .map(|(name, subs)| (name.clone(), Arc::clone(subs)));
        let Some((channel, entry)) = entry else {
            return;
        };
        let subs = entry.lock().unwrap_or_else(|e| e.into_inner());
        let mut cache: [[Option<Arc<Encoded>>; 2]; WireFormat::COUNT] = Default::default();
        let shared = publication.data.is_shared();
        let mut delivered = [0usize; Transport::COUNT];
        let mut dropped = 0usize;
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
                        channel: channel.clone(),
                        offset: publication.offset,
                        epoch: Arc::clone(&publication.epoch),
                        frame: if transient {
                            conn.format.encode_transient(publication, audience)
                        } else {
                            conn.format.encode(publication, audience)
                        },
                    })
                })
                .clone();
            let item = if transient {
                Outbound::Transient(encoded)
            } else {
                Outbound::Delivery(encoded)
            };
            match conn.offer(item) {
                Offer::Queued => delivered[conn.transport.index()] += 1,
                Offer::Dropped => dropped += 1,
                Offer::Gone => {}
            }
        }
        drop(subs);
        self.stats
            .deliveries
            .fetch_add(delivered.iter().sum(), Ordering::Relaxed);
        self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
        if let Some(observer) = self.observer.get() {
            observer.fanned_out(&FanOut {
                publication,
                delivered,
                dropped,
                transient,
            });
        }
    }

    /// Every channel with subscribers on this node and how many, whose name starts with
    /// `prefix` (the admin API's channel list); at most `limit`, in no particular order. Takes
    /// each shard's read lock in turn, never two at once.
    pub fn channels(&self, prefix: &str, limit: usize) -> Vec<(ChannelName, usize)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let entries: Vec<(ChannelName, Arc<Mutex<Subscribers>>)> = shard
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter(|(name, _)| name.as_str().starts_with(prefix))
                .map(|(name, subs)| (name.clone(), Arc::clone(subs)))
                .collect();
            for (name, subs) in entries {
                if out.len() >= limit {
                    return out;
                }
                let n = subs.lock().unwrap_or_else(|e| e.into_inner()).len();
                if n > 0 {
                    out.push((name, n));
                }
            }
        }
        out
    }
}
