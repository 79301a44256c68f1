//! A connection's bounded outbound queue, kept inside its [`ConnectionHandle`].
//!
//! Why not `tokio::sync::mpsc`: its channel allocates its shared state (cache-padded, ~510 bytes)
//! and a first block of 32 slots (~540 bytes) when it is created, and keeps the block for the
//! connection's life. Every idle connection paid that ~1 KiB, a sixth of its footprint (dhat,
//! docs/architecture.md). This queue is a `VecDeque` behind a mutex in the handle the hub
//! already shares: it allocates nothing until the first frame, grows with a burst and gives
//! the memory back once drained. There is one receiver (the connection's writer) and the
//! mutex is held for one push or one pop, never across an await.
//!
//! The contract is the channel's: bounded (a delivery finding it full is refused, a reply
//! waits for room), FIFO, a receiver that is cancel-safe, and senders that learn when the
//! receiver is gone.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

use super::{ConnectionHandle, Outbound};

/// Capacity kept after the queue drains: a burst's memory beyond it is given back.
const KEEP_SLOTS: usize = 64;

/// Why [`Queue::try_push`] refused an item.
pub(super) enum PushError {
    /// At capacity.
    Full,
    /// The receiver is gone: nothing queued would ever be written.
    Gone,
}

/// The state shared by the hub (pushing) and the connection's writer (popping).
#[derive(Debug)]
pub(super) struct Queue {
    state: Mutex<State>,
    capacity: usize,
    /// The receiver waiting for a first item.
    receiver: AtomicWaker,
    /// Senders waiting for room ([`Queue::push`]).
    room: Notify,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Outbound>,
    receiver_gone: bool,
}

impl Queue {
    /// An empty queue holding at most `capacity` items (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            capacity: capacity.max(1),
            receiver: AtomicWaker::new(),
            room: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding it cannot leave the deque half-changed: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` unless the queue is full or its receiver is gone.
    pub(super) fn try_push(&self, item: Outbound) -> Result<(), (PushError, Outbound)> {
        let mut state = self.lock();
        if state.receiver_gone {
            return Err((PushError::Gone, item));
        }
        if state.items.len() >= self.capacity {
            return Err((PushError::Full, item));
        }
        let was_empty = state.items.is_empty();
        state.items.push_back(item);
        drop(state);
        // Only the first item can find the receiver asleep: it drains everything it finds
        // before it waits again.
        if was_empty {
            self.receiver.wake();
        }
        Ok(())
    }

    /// Queues `item`, waiting for room; false when the receiver is gone.
    pub(super) async fn push(&self, mut item: Outbound) -> bool {
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before trying, so a pop between the try and the await is seen.
            room.as_mut().enable();
            match self.try_push(item) {
                Ok(()) => return true,
                Err((PushError::Gone, _)) => return false,
                Err((PushError::Full, back)) => item = back,
            }
            room.await;
        }
    }

    fn pop(&self) -> Option<Outbound> {
        let mut state = self.lock();
        let was_full = state.items.len() >= self.capacity;
        let item = state.items.pop_front();
        if state.items.is_empty() && state.items.capacity() > KEEP_SLOTS {
            state.items = VecDeque::new();
        }
        drop(state);
        // A sender waits only on a full queue, so the first pop after its try sees it full
        // (and a full queue is never empty: the capacity is at least one).
        if was_full {
            self.room.notify_waiters();
        }
        item
    }

    fn close_receiver(&self) {
        let mut state = self.lock();
        state.receiver_gone = true;
        // Dropped after the lock is released: the last reference to a publication may free it.
        let items = std::mem::take(&mut state.items);
        drop(state);
        drop(items);
        self.room.notify_waiters();
    }
}

/// The receiving end of a connection's queue: its writer drains it. Dropping it refuses every
/// later push and wakes the senders waiting for room.
#[derive(Debug)]
pub struct OutboundReceiver {
    handle: Arc<ConnectionHandle>,
}

impl OutboundReceiver {
    pub(super) fn new(handle: Arc<ConnectionHandle>) -> Self {
        Self { handle }
    }

    /// Waits for the next item. Cancel-safe: an item is taken only when it is returned. There
    /// is no end of stream: the handle it drains lives as long as this receiver, so the writer
    /// learns of the end from the handle's close.
    pub fn recv(&mut self) -> impl Future<Output = Outbound> + Send + '_ {
        let queue = &self.handle.queue;
        std::future::poll_fn(move |cx| {
            if let Some(item) = queue.pop() {
                return Poll::Ready(item);
            }
            queue.receiver.register(cx.waker());
            // Checked again after registering: a push in between woke the old waker (or none).
            match queue.pop() {
                Some(item) => Poll::Ready(item),
                None => Poll::Pending,
            }
        })
    }

    /// The connection whose queue this drains (a test tells from its count of owners whether
    /// the hub still holds it).
    pub fn handle(&self) -> &Arc<ConnectionHandle> {
        &self.handle
    }

    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        self.handle.queue.pop()
    }
}

impl Drop for OutboundReceiver {
    fn drop(&mut self) {
        self.handle.queue.close_receiver();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::hub::WireFormat;
    use crate::publication::Audience;

    fn queue(capacity: usize) -> (Arc<ConnectionHandle>, OutboundReceiver) {
        ConnectionHandle::new("q".into(), WireFormat::Native, Audience::Agent, capacity)
    }

    fn text(item: Outbound) -> Vec<u8> {
        match item {
            Outbound::Frame(bytes) => bytes.to_vec(),
            other => panic!("not a frame: {other:?}"),
        }
    }

    #[tokio::test]
    async fn items_come_out_in_order_and_a_waiting_receiver_is_woken() {
        let (handle, mut rx) = queue(4);
        assert!(rx.try_recv().is_none());
        let waiting = tokio::spawn(async move {
            let first = text(rx.recv().await);
            let second = text(rx.recv().await);
            (first, second)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(handle.try_queue(bytes::Bytes::from_static(b"1")));
        assert!(handle.try_queue(bytes::Bytes::from_static(b"2")));
        let (first, second) = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the receiver was never woken")
            .unwrap();
        assert_eq!((first, second), (b"1".to_vec(), b"2".to_vec()));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_a_reply_waits_for_room() {
        let (handle, mut rx) = queue(1);
        assert!(handle.send(Outbound::frame("a")).await);
        assert!(matches!(
            handle.queue.try_push(Outbound::frame("b")),
            Err((PushError::Full, _))
        ));
        let sender = Arc::clone(&handle);
        let blocked = tokio::spawn(async move { sender.send(Outbound::frame("c")).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!blocked.is_finished(), "a send into a full queue must wait");
        assert_eq!(text(rx.try_recv().unwrap()), b"a");
        let sent = tokio::time::timeout(Duration::from_secs(5), blocked)
            .await
            .expect("the pop never made room for the waiting send")
            .unwrap();
        assert!(sent);
        assert_eq!(text(rx.try_recv().unwrap()), b"c");
    }

    #[tokio::test]
    async fn dropping_the_receiver_refuses_pushes_and_frees_waiting_senders() {
        let (handle, rx) = queue(1);
        assert!(handle.send(Outbound::frame("a")).await);
        let sender = Arc::clone(&handle);
        let blocked = tokio::spawn(async move { sender.send(Outbound::frame("b")).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(rx);
        let sent = tokio::time::timeout(Duration::from_secs(5), blocked)
            .await
            .expect("a waiting send must end when the receiver goes")
            .unwrap();
        assert!(!sent);
        assert!(matches!(
            handle.queue.try_push(Outbound::frame("c")),
            Err((PushError::Gone, _))
        ));
        assert!(
            handle.queue.lock().items.is_empty(),
            "queued items are dropped"
        );
    }

    #[test]
    fn an_idle_queue_holds_no_memory_and_a_burst_gives_it_back() {
        let (handle, mut rx) = queue(1024);
        assert_eq!(handle.queue.lock().items.capacity(), 0);
        for _ in 0..500 {
            assert!(handle.try_queue(bytes::Bytes::from_static(b"x")));
        }
        assert!(handle.queue.lock().items.capacity() >= 500);
        while rx.try_recv().is_some() {}
        assert!(handle.queue.lock().items.capacity() <= KEEP_SLOTS);
    }
}
