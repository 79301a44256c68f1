//! One accepted TCP connection, as the HTTP server, TLS and (after an upgrade) a WebSocket see
//! it. It does three things no layer above can do for every transport:
//!
//! - **Counts** the connection against its IP (`limits.max_connections_per_ip`) and in the
//!   server's live-connection tracker for as long as the socket exists, upgraded or not.
//! - **Stops reading while a write is blocked.** A client that sends and never reads (a flood
//!   of WebSocket pings whose pongs the socket library queues, pipelined requests) makes the
//!   server buffer replies it cannot send. While the socket does not take our bytes, its input
//!   is not read either, so what is owed stays bounded and TCP pushes back on the sender.
//! - **Closes lingeringly.** Dropped, it shuts down its write side (the close frame or the last
//!   response is followed by a FIN) and keeps reading and discarding until the client closes
//!   or `http.linger_ms` passes. Closing with unread bytes in the receive buffer would make the
//!   kernel send a reset, and a client receiving it drops the close frame it had not read yet
//!   (it reports 1006 instead of 1009, 1012 or 4002).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::limits::connections::ConnectionPermit;

/// Counts the server's live connections (including upgraded and lingering ones), so shutdown
/// can wait for the last close frame to reach its client before the process exits.
#[derive(Debug, Clone, Default)]
pub struct Tracker(Arc<TrackerState>);

#[derive(Debug, Default)]
struct TrackerState {
    live: AtomicUsize,
    zero: Notify,
}

/// One connection's place in a [`Tracker`].
#[derive(Debug)]
pub struct Live(Arc<TrackerState>);

impl Tracker {
    /// Registers one more live connection.
    pub fn live(&self) -> Live {
        self.0.live.fetch_add(1, Ordering::SeqCst);
        Live(Arc::clone(&self.0))
    }

    /// Connections alive now.
    pub fn count(&self) -> usize {
        self.0.live.load(Ordering::SeqCst)
    }

    /// Resolves once no connection is alive.
    pub async fn all_closed(&self) {
        loop {
            let zero = self.0.zero.notified();
            tokio::pin!(zero);
            zero.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            zero.await;
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.zero.notify_waiters();
        }
    }
}

/// What a connection holds until it is fully closed.
#[derive(Debug)]
struct Held {
    /// `None` for a trusted proxy's connection: it carries many clients, each counted by
    /// the transport that serves it (see `http::forwarded`).
    _permit: Option<ConnectionPermit>,
    _live: Live,
}

/// An accepted connection; see the module docs.
#[derive(Debug)]
pub struct Guarded {
    inner: Option<TcpStream>,
    held: Option<Held>,
    /// The last write did not complete: reads wait until a write makes progress.
    write_blocked: bool,
    parked_reader: Option<Waker>,
    linger: Duration,
}

impl Guarded {
    /// Wraps an accepted stream holding its per-IP permit (none for a trusted proxy) and its
    /// place in the tracker.
    pub fn new(
        stream: TcpStream,
        permit: Option<ConnectionPermit>,
        live: Live,
        linger: Duration,
    ) -> Self {
        Self {
            inner: Some(stream),
            held: Some(Held {
                _permit: permit,
                _live: live,
            }),
            write_blocked: false,
            parked_reader: None,
            linger,
        }
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    fn after_write<T>(&mut self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_pending() {
            self.write_blocked = true;
        } else if self.write_blocked {
            self.write_blocked = false;
            if let Some(reader) = self.parked_reader.take() {
                reader.wake();
            }
        }
        r
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.write_blocked {
            // Woken by the next write that makes progress (whoever polls it).
            this.parked_reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Pin::new(this.stream()?).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(this.stream()?).poll_write(cx, buf);
        this.after_write(r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(this.stream()?).poll_write_vectored(cx, bufs);
        this.after_write(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A TCP flush is a no-op: it says nothing about whether the peer takes bytes again.
        Pin::new(self.get_mut().stream()?).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().stream()?).poll_shutdown(cx)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let (Some(stream), Some(held)) = (self.inner.take(), self.held.take()) else {
            return;
        };
        if self.linger.is_zero() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream, held, self.linger));
        }
    }
}

/// Sends a FIN after what was written, then reads and discards until the client closes or
/// `period` passes. The connection stays counted meanwhile.
async fn linger(mut stream: TcpStream, held: Held, period: Duration) {
    let drain = async {
        let _ = stream.shutdown().await;
        let mut buf = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(period, drain).await;
    drop(held);
}
