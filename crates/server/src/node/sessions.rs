//! Every connection this node holds, on every transport: what the connection gauge counts,
//! what the admin API lists and disconnects, and where a connection's duration is measured.
//!
//! A transport registers a connection with [`Sessions::open`] and keeps the returned
//! [`Session`] for as long as the connection lives; dropping it deregisters. The registry is a
//! few mutex-guarded maps touched once at open and once at close, never per message, and the
//! per-transport counts are atomics the metrics endpoint reads without a lock.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use switchboard_core::codes::CloseCode;
use switchboard_core::hub::{ConnId, ConnectionHandle, Transport};

const SHARDS: usize = 16;

type Shard = Mutex<HashMap<ConnId, Arc<ConnectionHandle>>>;

/// The registry of this node's connections.
#[derive(Debug)]
pub struct Sessions {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shards: Box<[Shard]>,
    open: [AtomicI64; Transport::COUNT],
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
                open: Default::default(),
            }),
        }
    }
}

impl Inner {
    fn shard(&self, id: &str) -> &Shard {
        let mut h = DefaultHasher::new();
        id.hash(&mut h);
        &self.shards[(h.finish() as usize) % self.shards.len()]
    }
}

/// One registered connection. Dropping it removes the connection from the registry; the
/// transport keeps it exactly as long as the connection (a socket's task, an SSE body, a poll).
#[derive(Debug)]
pub struct Session {
    registry: Weak<Inner>,
    handle: Arc<ConnectionHandle>,
    opened: Instant,
}

impl Session {
    /// How long the connection has been open (the closing log line's `duration_ms`).
    pub fn age(&self) -> Duration {
        self.opened.elapsed()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(inner) = self.registry.upgrade() else {
            return;
        };
        let removed = inner
            .shard(self.handle.id())
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(self.handle.id())
            .is_some();
        if removed {
            inner.open[self.handle.transport().index()].fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Sessions {
    /// Registers `handle`'s connection; it counts until the returned [`Session`] is dropped.
    pub fn open(&self, handle: &Arc<ConnectionHandle>) -> Session {
        let added = self
            .inner
            .shard(handle.id())
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(handle.id().clone(), Arc::clone(handle))
            .is_none();
        if added {
            self.inner.open[handle.transport().index()].fetch_add(1, Ordering::Relaxed);
        }
        Session {
            registry: Arc::downgrade(&self.inner),
            handle: Arc::clone(handle),
            opened: Instant::now(),
        }
    }

    /// Open connections per transport, in [`Transport::ALL`] order.
    pub fn counts(&self) -> [u64; Transport::COUNT] {
        let mut out = [0; Transport::COUNT];
        for (slot, n) in out.iter_mut().zip(&self.inner.open) {
            *slot = u64::try_from(n.load(Ordering::Relaxed)).unwrap_or(0);
        }
        out
    }

    /// Asks every connection of `user` to close with `code`; returns how many were asked. The
    /// user is read from each handle now, so a connection that re-authenticated as someone
    /// else is judged by who it is now.
    pub fn close_user(&self, user: &str, code: CloseCode) -> usize {
        let mut closed = 0;
        for shard in self.inner.shards.iter() {
            let handles: Vec<Arc<ConnectionHandle>> = shard
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .filter(|h| h.user().as_deref() == Some(user))
                .cloned()
                .collect();
            for handle in handles {
                if handle.close_reason().is_none() {
                    closed += 1;
                }
                handle.close(code);
            }
        }
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::publication::Audience;

    fn conn(id: &str, transport: Transport, user: Option<&str>) -> Arc<ConnectionHandle> {
        let (h, rx) = ConnectionHandle::for_transport(id.into(), transport, Audience::Agent, 4);
        drop(rx);
        h.set_user(user);
        h
    }

    #[test]
    fn counts_per_transport_until_dropped() {
        let sessions = Sessions::default();
        let a = sessions.open(&conn("a", Transport::WebSocket, None));
        let b = sessions.open(&conn("b", Transport::Sse, None));
        let _c = sessions.open(&conn("c", Transport::Sse, None));
        assert_eq!(sessions.counts(), [1, 0, 2, 0]);
        drop(a);
        drop(b);
        assert_eq!(sessions.counts(), [0, 0, 1, 0]);
    }

    #[test]
    fn closes_every_connection_of_a_user_and_only_theirs() {
        let sessions = Sessions::default();
        let (a1, a2, b) = (
            conn("a1", Transport::WebSocket, Some("alice")),
            conn("a2", Transport::SocketIo, Some("alice")),
            conn("b", Transport::Poll, Some("bob")),
        );
        let _s: Vec<_> = [&a1, &a2, &b].iter().map(|h| sessions.open(h)).collect();
        assert_eq!(sessions.close_user("alice", CloseCode::AdminDisconnect), 2);
        assert_eq!(a1.close_reason(), Some(CloseCode::AdminDisconnect));
        assert_eq!(a2.close_reason(), Some(CloseCode::AdminDisconnect));
        assert_eq!(b.close_reason(), None);
        // Already closing: not counted twice.
        assert_eq!(sessions.close_user("alice", CloseCode::AdminDisconnect), 0);
        assert_eq!(sessions.close_user("nobody", CloseCode::AdminDisconnect), 0);
    }
}
