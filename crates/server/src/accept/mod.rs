//! The HTTP server: accepts TCP connections, counts each against its IP, runs TLS when set
//! up, and serves HTTP/1.1 (with upgrades) through hyper with the timeouts of `[http]`.
//!
//! `axum::serve` has no header-read or body timeout and counts nothing per connection, so the
//! accept loop is ours (docs/security.md, "Connections and timeouts", says why each knob is
//! where it is):
//!
//! - [`stream`]: the accepted socket (per-IP permit, read pause while writes are blocked,
//!   lingering close), under TLS and under any upgrade.
//! - [`body`]: the request body deadline.

pub mod body;
pub mod stream;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;

use crate::http::forwarded::{Proxied, TrustedProxies};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use self::body::TimedBody;
use self::stream::{Guarded, Tracker};
use crate::limits::connections::ConnectionLimiter;

use crate::tls::{HANDSHAKE_TIMEOUT, MAX_HANDSHAKES};

/// The most a request head (request line and headers) may take, and so the most one idle
/// connection makes hyper buffer: past it the answer is `431`. hyper's default (about 400 KiB)
/// let 10,000 connections hold 4 GB of headers; 96 KiB still fits the longest request target
/// the `http` crate accepts (64 KiB, then `414`) with room for ordinary headers.
const MAX_HEAD_BYTES: usize = 96 * 1024;

/// What the accept loop needs besides the listener.
pub struct Server {
    /// The application.
    pub router: Router,
    /// The per-IP connection limit shared with the transports.
    pub limiter: ConnectionLimiter,
    /// `security.trusted_proxies`: their connections take no per-IP permit, and their
    /// requests are attributed to the client `X-Forwarded-For` names.
    pub trusted: TrustedProxies,
    /// TLS, when `tls.cert` and `tls.key` are set.
    pub tls: Option<TlsAcceptor>,
    /// `http.header_read_timeout_ms`.
    pub header_read_timeout: Duration,
    /// `http.body_timeout_ms`.
    pub body_timeout: Duration,
    /// `http.linger_ms`.
    pub linger: Duration,
}

/// The answer to a connection over the per-IP limit (plain HTTP only; over TLS it is closed):
/// the same JSON error body every REST refusal has.
const TOO_MANY: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
content-length: 50\r\nconnection: close\r\n\r\n{\"error\":\"Too many connections from this address\"}";

impl Server {
    /// Accepts until `stop` turns true, then asks every connection to finish (idle keep-alive
    /// ones close at once) and waits for all of them, upgraded ones included, for at most
    /// `grace`.
    pub async fn run(
        self,
        listener: TcpListener,
        mut stop: watch::Receiver<bool>,
        grace: Duration,
    ) -> std::io::Result<()> {
        let tracker = Tracker::default();
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let this = Arc::new(self);
        loop {
            let accepted = tokio::select! {
                biased;
                stopped = stop.wait_for(|s| *s) => {
                    drop(stopped);
                    break;
                }
                a = listener.accept() => a,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let permit = if this.trusted.contains(peer.ip()) {
                None
            } else {
                let Some(permit) = this.limiter.acquire(peer.ip()) else {
                    tracing::info!(peer = %peer.ip(), "too many connections from this address");
                    if this.tls.is_none() {
                        tokio::spawn(refuse(tcp));
                    }
                    continue;
                };
                Some(permit)
            };
            let io = Guarded::new(tcp, permit, tracker.live(), this.linger);
            let (this, stop, handshakes) =
                (Arc::clone(&this), stop.clone(), Arc::clone(&handshakes));
            tokio::spawn(async move {
                match &this.tls {
                    None => this.serve_connection(io, peer, stop).await,
                    Some(acceptor) => {
                        let Ok(_slot) = handshakes.acquire().await else {
                            return;
                        };
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                            Ok(Ok(tls)) => {
                                drop(_slot);
                                this.serve_connection(tls, peer, stop).await;
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(peer = %peer, error = %e, "tls handshake failed")
                            }
                            Err(_) => tracing::debug!(peer = %peer, "tls handshake timed out"),
                        }
                    }
                }
            });
        }
        drop(listener);
        if tokio::time::timeout(grace, tracker.all_closed())
            .await
            .is_err()
        {
            tracing::warn!(
                open = tracker.count(),
                "shutdown grace period over; closing remaining connections"
            );
        }
        Ok(())
    }

    async fn serve_connection<I>(&self, io: I, peer: SocketAddr, mut stop: watch::Receiver<bool>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = ConnService {
            router: self.router.clone(),
            peer,
            body_timeout: self.body_timeout,
            trusted: self.trusted.clone(),
        };
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(MAX_HEAD_BYTES)
            .keep_alive(true);
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let stopping = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let finished = tokio::select! {
            r = conn.as_mut() => Some(r),
            () = stopping => None,
        };
        let result = match finished {
            Some(r) => r,
            None => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(peer = %peer, error = %e, "http connection ended");
        }
    }
}

/// Answers 429 and closes (lingering, so the client reads the answer). The request head is
/// read first (at most 8 KiB, within the same 2 s): an HTTP client that gets a response before
/// it has sent its request reports a protocol error instead of the 429.
async fn refuse(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        while head.len() < 8 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tcp.write_all(TOO_MANY).await;
        let _ = tcp.shutdown().await;
        let mut buf = [0u8; 1024];
        while let Ok(n) = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// One connection's view of the router: each request gets the client's address (as axum's
/// `ConnectInfo`: the peer, or behind a trusted proxy the client it names, marked
/// [`Proxied`]) and a body deadline.
#[derive(Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
    body_timeout: Duration,
    trusted: TrustedProxies,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let mut req = req.map(|body| TimedBody::new(body, self.body_timeout));
        let mut client = self.peer;
        if self.trusted.contains(self.peer.ip()) {
            client.set_ip(self.trusted.client_ip(self.peer.ip(), req.headers()));
            req.extensions_mut().insert(Proxied);
        }
        req.extensions_mut().insert(ConnectInfo(client));
        let mut router = self.router.clone();
        tower_service::Service::call(&mut router, req)
    }
}
