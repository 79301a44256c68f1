//! Hardening item 1: a client that floods WebSocket ping frames and never reads must not make
//! the server queue the pongs it owes without bound, on the native WebSocket and on Socket.IO's
//! websocket transport; the native one is closed for the flood (4008). The server runs in this
//! process, and the client writes hand-built frames from one fixed buffer, so the growth of the
//! process's resident memory is the server's backlog. One test per binary: the measurements
//! must not overlap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/raw.rs"]
mod raw;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::TestServer;
use raw::{closed_within, frame, handshake, rss_bytes, small_buffer_tcp};
use tokio::io::AsyncWriteExt;

/// Pings sent at most: 400,000 × 131 bytes; before the fix the server queued a 127-byte pong
/// for each (about 50 MB).
const TOTAL: u64 = 400_000;
const BATCH: u64 = 200;

struct Flood {
    sent: u64,
    /// The server ended the connection (a write failed).
    closed: bool,
    /// The server stopped taking our pings (a write made no progress for 3 s).
    blocked: bool,
    growth: u64,
    took: Duration,
}

async fn flood(addr: SocketAddr, path: &str) -> (Flood, tokio::net::TcpStream) {
    let mut tcp = small_buffer_tcp(addr).await;
    handshake(&mut tcp, addr, path).await;
    let batch = frame(0x89, &[0x5a; 125], true).repeat(BATCH as usize);
    let base = rss_bytes();
    let mut peak = base;
    let (mut sent, mut closed, mut blocked) = (0, false, false);
    let started = Instant::now();
    while sent < TOTAL && started.elapsed() < Duration::from_secs(30) {
        match tokio::time::timeout(Duration::from_secs(3), tcp.write_all(&batch)).await {
            Ok(Ok(())) => sent += BATCH,
            Ok(Err(_)) => {
                closed = true;
                break;
            }
            Err(_) => {
                blocked = true;
                break;
            }
        }
        if sent % 20_000 == 0 {
            peak = peak.max(rss_bytes());
        }
    }
    peak = peak.max(rss_bytes());
    let f = Flood {
        sent,
        closed,
        blocked,
        growth: peak.saturating_sub(base),
        took: started.elapsed(),
    };
    (f, tcp)
}

fn report(name: &str, f: &Flood) {
    println!(
        "{name}: {} pings in {:?}; closed {}, blocked {}; RSS +{:.1} MiB",
        f.sent,
        f.took,
        f.closed,
        f.blocked,
        f.growth as f64 / 1048576.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_floods_are_bounded_and_the_native_one_is_closed() {
    // Native WebSocket.
    let server = TestServer::start().await;
    let (native, mut tcp) = flood(server.addr, "/ws").await;
    report("native", &native);
    let ended = native.closed || closed_within(&mut tcp, Duration::from_secs(15)).await;
    drop(tcp);
    drop(server);

    // Socket.IO, websocket transport (no CONNECT needed: Engine.IO answers the pings' frames).
    let server = TestServer::start().await;
    let (sio, tcp) = flood(server.addr, "/socket.io/?EIO=4&transport=websocket").await;
    report("socket.io", &sio);
    drop(tcp);

    assert!(ended, "the native ping flood was never cut off");
    assert!(
        native.growth < 16 << 20,
        "native pong backlog grew RSS by {} bytes",
        native.growth
    );
    assert!(
        sio.growth < 16 << 20,
        "socket.io pong backlog grew RSS by {} bytes",
        sio.growth
    );
}
