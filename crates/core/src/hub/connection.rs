//! The hub's side of one connection: its bounded queue, its audience and user, and how it is
//! asked to close.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::task::Poll;

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

use super::queue::{OutboundReceiver, PushError, Queue};
use super::{ConnId, Outbound, WireFormat};
use crate::codes::CloseCode;
use crate::publication::Audience;

/// Which transport a connection came in on: the label of the per-transport connection gauge
/// and delivery counter, and what an administrator sees. Four, fixed: metrics labels must stay
/// bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The native WebSocket protocol (`/ws`).
    WebSocket,
    /// Socket.IO (`/socket.io/`), over either Engine.IO transport.
    SocketIo,
    /// A Server-Sent Events stream (`/events`).
    Sse,
    /// One long-poll request (`/poll`).
    Poll,
}

impl Transport {
    /// How many there are: the size of per-transport counter arrays.
    pub const COUNT: usize = 4;
    /// Every transport, in [`index`](Self::index) order.
    pub const ALL: [Transport; Self::COUNT] =
        [Self::WebSocket, Self::SocketIo, Self::Sse, Self::Poll];

    /// Its slot in per-transport counter arrays.
    pub fn index(self) -> usize {
        match self {
            Self::WebSocket => 0,
            Self::SocketIo => 1,
            Self::Sse => 2,
            Self::Poll => 3,
        }
    }

    /// The name metrics, logs and the admin API use (`websocket`, `socketio`, `sse`, `poll`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::SocketIo => "socketio",
            Self::Sse => "sse",
            Self::Poll => "poll",
        }
    }

    /// The wire format its frames are encoded in: Socket.IO's own, the native envelope for
    /// the others (SSE and long-poll carry it as their `data`).
    pub fn format(self) -> WireFormat {
        match self {
            Self::SocketIo => WireFormat::SocketIo,
            _ => WireFormat::Native,
        }
    }
}

/// The hub's view of one connection: where to queue its frames and how to stop it.
#[derive(Debug)]
pub struct ConnectionHandle {
    pub(super) id: ConnId,
    pub(super) format: WireFormat,
    pub(super) transport: Transport,
    audience: AtomicU8,
    /// Its bounded queue, drained by the one [`OutboundReceiver`].
    pub(super) queue: Queue,
    close_reason: OnceLock<CloseCode>,
    close_signal: Notify,
    /// Woken by [`close`](ConnectionHandle::close) for the one task waiting in
    /// [`writer_closed`](ConnectionHandle::writer_closed).
    writer_waker: AtomicWaker,
    user: RwLock<Option<Arc<str>>>,
    overflowed: AtomicBool,
}

impl ConnectionHandle {
    /// Creates the handle and the receiving end its writer task drains; the transport is the
    /// one `format` implies (native: WebSocket). Transports use [`for_transport`](Self::for_transport).
    pub fn new(
        id: ConnId,
        format: WireFormat,
        audience: Audience,
        capacity: usize,
    ) -> (Arc<Self>, OutboundReceiver) {
        let transport = match format {
            WireFormat::Native => Transport::WebSocket,
            WireFormat::SocketIo => Transport::SocketIo,
        };
        Self::for_transport(id, transport, audience, capacity)
    }

    /// Creates the handle of a connection on `transport` (encoded in its wire format), so its
    /// deliveries are counted under that transport.
    pub fn for_transport(
        id: ConnId,
        transport: Transport,
        audience: Audience,
        capacity: usize,
    ) -> (Arc<Self>, OutboundReceiver) {
        let handle = Arc::new(Self {
            id,
            format: transport.format(),
            transport,
            audience: AtomicU8::new(audience.index() as u8),
            queue: Queue::new(capacity),
            close_reason: OnceLock::new(),
            close_signal: Notify::new(),
            writer_waker: AtomicWaker::new(),
            user: RwLock::new(None),
            overflowed: AtomicBool::new(false),
        });
        let rx = OutboundReceiver::new(Arc::clone(&handle));
        (handle, rx)
    }

    /// The connection id: its key in every channel's subscriber set and its `conn:<id>` channel.
    pub fn id(&self) -> &ConnId {
        &self.id
    }

    /// The wire format its frames (replies, catch-up) must be encoded in.
    pub fn format(&self) -> WireFormat {
        self.format
    }

    /// The transport it came in on.
    pub fn transport(&self) -> Transport {
        self.transport
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
        self.queue.push(item).await
    }

    /// Queues a reply without waiting. A full queue means the client does not read what it
    /// asked for: the connection closes as a slow consumer (false), as when a delivery finds
    /// it full, rather than leave the client waiting on an answer that never comes.
    pub fn try_queue(&self, frame: Bytes) -> bool {
        match self.queue.try_push(Outbound::frame(frame)) {
            Ok(()) => true,
            Err((PushError::Full, _)) => {
                self.close(CloseCode::SlowConsumer);
                false
            }
            Err((PushError::Gone, _)) => false,
        }
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
    pub(super) fn offer(&self, item: Outbound) -> Offer {
        match self.queue.try_push(item) {
            Ok(()) => Offer::Queued,
            Err((PushError::Full, _)) => {
                // Set before anything later can be queued, so a writer that sees a later item
                // also sees the flag.
                self.overflowed.store(true, Ordering::Release);
                self.close(CloseCode::SlowConsumer);
                Offer::Dropped
            }
            Err((PushError::Gone, _)) => Offer::Gone,
        }
    }
}

/// What became of a delivery offered to a connection's queue (see the fan-out's counters).
pub(super) enum Offer {
    /// In the queue.
    Queued,
    /// The queue was full: dropped, and the connection is closing as a slow consumer.
    Dropped,
    /// The writer is gone; nobody to deliver to.
    Gone,
}
