//! The one write loop of every socket transport (native WebSocket, Socket.IO): it drains the
//! connection's bounded queue through its [`StreamGate`], batches what is already queued into
//! one write, pings on the transport's heartbeat, and ends the connection with the code the
//! hub, the session or shutdown decided. A transport only says how to write frames and how to
//! close — the seam of centrifuge's `transport.go` (write, write many, close with a disconnect).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use switchboard_core::codes::CloseCode;
use switchboard_core::gate::StreamGate;
use switchboard_core::hub::{ConnectionHandle, OutboundReceiver};
use tokio::time::{Instant, Interval};

use crate::node::Node;

/// Most queued items gathered into one write.
const BATCH: usize = 64;
/// How long the replies queued before a close may take to flush.
pub const CLOSE_FLUSH: Duration = Duration::from_secs(2);

/// Why a write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// The peer is gone: nothing more can be written, not even a close.
    Gone,
    /// End the connection with this code (Socket.IO's own buffer full: a slow consumer).
    Close(CloseCode),
}

/// How frames reach one kind of socket.
pub trait Transport: Send {
    /// Whether the replies still queued when the connection ends are written before the close
    /// (an `auth_error` before 4002). Never for a slow consumer: its queue is the problem.
    const FLUSH_ON_CLOSE: bool;

    /// Writes `frames` in order, draining the vector. Empty frames are replies with nothing
    /// to say and are skipped.
    fn write_many(
        &mut self,
        frames: &mut Vec<Bytes>,
    ) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// How often this loop pings; `None` when the protocol keeps itself alive.
    fn heartbeat(&self) -> Option<Duration> {
        None
    }

    /// Sends one keep-alive.
    fn ping(&mut self) -> impl Future<Output = Result<(), WriteError>> + Send {
        async { Ok(()) }
    }

    /// Ends the connection, telling the client why with `code` in the protocol's way.
    fn close(self, code: CloseCode) -> impl Future<Output = ()> + Send;
}

/// Runs until the connection closes (client gone, slow consumer, the session's decision) or
/// the node shuts down (1012).
pub async fn run<T: Transport>(
    node: Arc<Node>,
    mut transport: T,
    mut rx: OutboundReceiver,
    handle: Arc<ConnectionHandle>,
) {
    let mut gate = StreamGate::default();
    let mut out = Vec::new();
    let mut ping = transport
        .heartbeat()
        .map(|period| tokio::time::interval_at(Instant::now() + period, period));
    // Created once and polled by reference: building these per delivery registered and removed
    // a waiter on two `Notify`s (one of them shared by every connection) for each write, about
    // 5% of the server's CPU in the closed-loop flamegraph (bench/results/2026-11-23.md).
    let closed = handle.writer_closed();
    let shutdown = node.shutting_down();
    tokio::pin!(closed, shutdown);
    // A client that stops reading blocks our writes: past this, it is a slow consumer even if
    // its queue never fills (nothing much published, or a flood of its own pings).
    let stall = Duration::from_millis(node.config.limits.write_timeout_ms);
    let code = loop {
        tokio::select! {
            biased;
            code = &mut closed => break code,
            () = &mut shutdown => break CloseCode::Restarting,
            item = rx.recv() => {
                // After an overflow the stream has a gap: write nothing more, so the client's
                // last offset stays before the dropped publication and resuming recovers it.
                if handle.overflowed() {
                    break CloseCode::SlowConsumer;
                }
                gate.process(item, &mut out);
                while out.len() < BATCH && !handle.overflowed() {
                    match rx.try_recv() {
                        Some(item) => gate.process(item, &mut out),
                        None => break,
                    }
                }
                // A client that stopped reading blocks this write; the close (4009 from the
                // hub, 1012 on shutdown) must still win, so the write is raced against it.
                tokio::select! {
                    biased;
                    code = &mut closed => break code,
                    () = &mut shutdown => break CloseCode::Restarting,
                    r = tokio::time::timeout(stall, transport.write_many(&mut out)) => match r {
                        Ok(Ok(())) => {}
                        Ok(Err(WriteError::Gone)) => {
                            handle.close(CloseCode::Normal);
                            return;
                        }
                        Ok(Err(WriteError::Close(code))) => break code,
                        Err(_) => break CloseCode::SlowConsumer,
                    },
                }
            }
            () = tick(&mut ping), if ping.is_some() => {
                tokio::select! {
                    biased;
                    code = &mut closed => break code,
                    () = &mut shutdown => break CloseCode::Restarting,
                    r = tokio::time::timeout(stall, transport.ping()) => match r {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => {
                            handle.close(CloseCode::Normal);
                            return;
                        }
                        Err(_) => break CloseCode::SlowConsumer,
                    },
                }
            }
        }
    };
    if code == CloseCode::SlowConsumer {
        // One line per slow consumer, saying which limit it hit: its queue overflowed
        // (`limits.outbound_queue`) or its socket took nothing for `limits.write_timeout_ms`.
        let reason = if handle.overflowed() {
            "outbound queue full"
        } else {
            "write stalled"
        };
        tracing::info!(reason, "slow consumer; closing with 4009");
    }
    handle.close(code);
    if T::FLUSH_ON_CLOSE && code != CloseCode::SlowConsumer && !handle.overflowed() {
        let flush = async {
            while let Some(item) = rx.try_recv() {
                gate.process(item, &mut out);
            }
            transport.write_many(&mut out).await
        };
        let _ = tokio::time::timeout(CLOSE_FLUSH, flush).await;
    }
    tracing::debug!(code = code.code(), "closing");
    transport.close(code).await;
}

async fn tick(ping: &mut Option<Interval>) {
    match ping {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}
