//! Slow consumers (SPEC §5): a client that stops reading is closed with 4009 (WebSocket) or has
//! its stream ended with a `close` notice (SSE), and never delays anyone else. The healthy
//! reader's delivery latency is measured while the stalled one is being cut off.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use futures_util::StreamExt;
use serde_json::json;
use switchboard_client::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

const PAD: usize = 16 * 1024;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A TCP connection with a small receive buffer, so a client that stops reading backs up into
/// the server quickly (the server's send buffer still grows to its own limit).
async fn small_buffer_tcp(server: &TestServer) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8 * 1024).unwrap();
    socket.connect(server.addr).await.unwrap()
}

async fn stalled_ws(server: &TestServer) -> Ws {
    let tcp = small_buffer_tcp(server).await;
    let socket = Connection::handshake(&server.ws_url(""), MaybeTlsStream::Plain(tcp), None)
        .await
        .unwrap();
    let mut ws = Ws {
        socket,
        connection_id: String::new(),
        seen: Vec::new(),
    };
    let welcome = ws.recv().await;
    ws.connection_id = welcome["connectionId"].as_str().unwrap().to_owned();
    ws
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Publishes padded `flood` events numbered from `start` on `channel` (one at a time, each
/// acknowledged) until `stop` says so after at least `min` events; returns the next number.
async fn flood(
    publisher: &mut Ws,
    channel: &str,
    start: usize,
    min: usize,
    max: usize,
    mut stop: impl AsyncFnMut() -> bool,
) -> usize {
    let pad = "x".repeat(PAD);
    for i in start..start + max {
        publisher
            .send(json!({"type":"publish","channel":channel,"event":"flood",
                "data":{"t":now_us(),"i":i,"pad":pad}}))
            .await;
        publisher.recv_type("published").await;
        if i + 1 - start >= min && i % 10 == 9 && stop().await {
            return i + 1;
        }
    }
    start + max
}

#[tokio::test]
async fn stalled_websocket_is_closed_with_4009_without_slowing_others() {
    let server = TestServer::start_with(|c| {
        // The test publishes as fast as it can from one client.
        c.limits.client_messages_per_minute = 100_000;
        c.limits.outbound_queue = 16;
    })
    .await;
    let channel = "room:flood";
    let mut stalled = stalled_ws(&server).await;
    stalled.subscribe(channel).await;
    let stalled_id = stalled.connection_id.clone();

    let mut healthy = Ws::connect(&server.ws_url("")).await;
    healthy.subscribe(channel).await;
    // The healthy reader reads as fast as it can and notes each delivery's latency.
    let reader = tokio::spawn(async move {
        let mut latencies = Vec::new();
        let mut order = Vec::new();
        while let Some(Ok(msg)) = healthy.socket.next().await {
            let Message::Text(t) = msg else { continue };
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "flood" {
                latencies.push(now_us().saturating_sub(v["data"]["t"].as_u64().unwrap()));
                order.push(v["data"]["i"].as_u64().unwrap());
            } else if v["type"] == "done" {
                break;
            }
        }
        (latencies, order)
    });

    let mut watcher = Ws::connect(&server.ws_url("")).await;
    let mut publisher = Ws::connect(&server.ws_url("")).await;
    let started = Instant::now();
    // Phase 1: flood until the hub has cut the stalled reader off (it leaves presence).
    let cut_at = flood(&mut publisher, channel, 0, 10, 4000, async || {
        watcher
            .send(json!({"type":"presence","channel":channel}))
            .await;
        let p = watcher.recv_type("presence").await;
        !p["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["connectionId"] == stalled_id.as_str())
    })
    .await;
    assert!(cut_at < 4000, "the stalled reader was never cut off");
    // The stalled client reads again right away: whatever was buffered, then the 4009 close.
    let stalled_task = tokio::spawn(async move {
        let code = stalled.close_code().await;
        (code, stalled)
    });
    // Phase 2: keep publishing so the healthy reader's latency is measured over a few hundred
    // deliveries, during and after the cut-off.
    let published = flood(&mut publisher, channel, cut_at, 300, 300, async || false).await;
    let flood_time = started.elapsed();
    publisher
        .send(json!({"type":"publish","channel":channel,"event":"done","data":null}))
        .await;

    let (code, stalled) = stalled_task.await.unwrap();
    assert_eq!(code, 4009);
    // What it did get is a gap-free prefix: nothing after a dropped delivery was written, so a
    // client resuming from its last offset recovers everything.
    let got: Vec<u64> = stalled
        .seen
        .iter()
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .filter(|v| v["type"] == "flood")
        .map(|v| v["data"]["i"].as_u64().unwrap())
        .collect();
    assert!(got.len() <= cut_at, "the stalled reader was cut short");
    assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>());

    let (mut latencies, order) = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("healthy reader finished")
        .unwrap();
    assert_eq!(
        order,
        (0..published as u64).collect::<Vec<_>>(),
        "healthy reader lost nothing"
    );
    latencies.sort_unstable();
    let (p50, p99, max) = (
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        *latencies.last().unwrap(),
    );
    println!(
        "slow consumer (websocket): cut off after {cut_at} publications; {published} publications \
         of {} KiB in {flood_time:?}; \
         healthy reader latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        PAD / 1024,
        p50 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        max as f64 / 1000.0
    );
    assert!(p99 < 500_000, "healthy reader p99 latency {p99} µs");
}

/// An SSE client that stops reading has its stream ended with a `close` notice (4009); the
/// last id it received resumes exactly after the last event it got.
#[tokio::test]
async fn stalled_sse_stream_ends_and_resumes_from_its_last_id() {
    let server = TestServer::start_with(|c| {
        // The test publishes as fast as it can from one client.
        c.limits.client_messages_per_minute = 100_000;
        c.limits.outbound_queue = 16;
        if let Some(room) = c.namespaces.get_mut("room") {
            room.history_size = 10_000;
        }
    })
    .await;
    let channel = "room:sse-flood";
    let mut tcp = small_buffer_tcp(&server).await;
    tcp.write_all(
        format!(
            "GET /events?channels={channel} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
            server.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // Wait for the stream to be open (registered with the hub) before flooding.
    let mut head = vec![0u8; 512];
    let n = tcp.read(&mut head).await.unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));

    // About 10 MB: more than the client's small receive buffer, the server's send buffer
    // (4 MiB at most here) and the 16-item queue together.
    let mut publisher = Ws::connect(&server.ws_url("")).await;
    let published = flood(&mut publisher, channel, 0, 600, 600, async || false).await;

    // Read everything the server will still send.
    let mut raw = Vec::new();
    let read_all = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = tcp.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
            if raw.ends_with(b"0\r\n\r\n") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read_all)
        .await
        .expect("stream ended");
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.contains("event: close\r\n") || text.contains("event: close\n"),
        "no close notice at the end"
    );
    assert!(text.contains(r#""code":4009"#));
    // The last id before the close notice, and the last flood offset delivered.
    let last_id = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("at least the connected id")
        .to_owned();
    let delivered = text.matches("event: flood").count();
    assert!(delivered < published, "the stalled stream was cut short");

    // Resuming from that id gets exactly the rest.
    let mut sse = common::feeds::Sse::open(
        &server,
        &format!("channels={channel}"),
        &[("Last-Event-ID", &last_id)],
    )
    .await;
    sse.next_event().await; // connected
    assert_eq!(sse.next_event().await.json()["recovered"], true);
    let mut rest = Vec::new();
    while rest.len() < published - delivered {
        let ev = sse.next_event().await;
        rest.push(ev.json()["data"]["i"].as_u64().unwrap());
    }
    assert_eq!(
        rest,
        (delivered as u64..published as u64).collect::<Vec<_>>()
    );
    println!(
        "slow consumer (sse): {delivered} of {published} delivered before the stream ended; \
         the remaining {} recovered by Last-Event-ID",
        published - delivered
    );
}
