//! Hardening items 5, 7, 8 and 10: HTTP timeouts, per-IP counting of every connection, close
//! codes for WebSocket protocol violations, and Socket.IO consumers that fall behind or send
//! more than their inbox holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/raw.rs"]
mod raw;

use std::time::{Duration, Instant};

use common::sio::Sio;
use common::*;
use futures_util::{SinkExt, StreamExt};
use raw::{closed_within, frame};
use serde_json::{Value, json};
use switchboard_client::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

async fn quick_timeouts() -> TestServer {
    TestServer::start_with(|c| {
        c.http.header_read_timeout_ms = 500;
        c.http.body_timeout_ms = 500;
    })
    .await
}

// ---- item 5: HTTP timeouts -------------------------------------------------------------------

#[tokio::test]
async fn partial_headers_are_cut_off() {
    let server = quick_timeouts().await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut tcp, Duration::from_secs(5)).await,
        "a connection with half a request head stayed open"
    );
}

#[tokio::test]
async fn a_head_trickled_byte_by_byte_is_cut_off() {
    let server = quick_timeouts().await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let started = Instant::now();
    let mut cut = false;
    for b in head {
        // The client's own pace (a byte every 100 ms), not a synchronisation.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if tcp.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        let mut probe = [0u8; 256];
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(1), tcp.read(&mut probe)).await {
            match r {
                Ok(0) | Err(_) => {
                    cut = true;
                    break;
                }
                Ok(n) => panic!(
                    "answered a trickled head: {}",
                    String::from_utf8_lossy(&probe[..n])
                ),
            }
        }
    }
    assert!(
        cut,
        "a head trickled over {:?} was accepted",
        started.elapsed()
    );
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let server = quick_timeouts().await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut tcp, Duration::from_secs(5)).await,
        "an idle keep-alive connection stayed open"
    );
}

#[tokio::test]
async fn a_body_that_stops_is_cut_off() {
    let server = quick_timeouts().await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /missions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"title\":",
        hq()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    assert!(
        closed_within(&mut tcp, Duration::from_secs(5)).await,
        "a request whose body stopped after 10 of 100 bytes stayed open"
    );
}

#[tokio::test]
async fn long_lived_streams_outlive_the_http_timeouts() {
    let server = quick_timeouts().await;
    let mut sse = TcpStream::connect(server.addr).await.unwrap();
    sse.write_all(
        b"GET /events?channels=missions HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = [0u8; 512];
    let n = sse.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let mut ws = Ws::connect(&server.ws_url("")).await;
    // Three header timeouts of silence: neither stream may be cut.
    assert!(!closed_within(&mut sse, Duration::from_millis(1500)).await);
    ws.send(json!({"type":"ping"})).await;
    assert_eq!(ws.recv_type("pong").await["type"], "pong");
}

// ---- item 5 and 10: every connection counts against the per-IP limit -------------------------

async fn http_status(addr: std::net::SocketAddr) -> Option<(u16, TcpStream)> {
    let mut tcp = TcpStream::connect(addr).await.ok()?;
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .ok()?;
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    let code = head.get(9..12)?.parse().ok()?;
    Some((code, tcp))
}

#[tokio::test]
async fn plain_http_connections_count_against_the_per_ip_limit() {
    let server = TestServer::start_with(|c| c.limits.max_connections_per_ip = 3).await;
    let mut kept = Vec::new();
    let mut codes = Vec::new();
    for _ in 0..6 {
        if let Some((code, tcp)) = http_status(server.addr).await {
            codes.push(code);
            kept.push(tcp);
        } else {
            codes.push(0);
        }
    }
    let served = codes.iter().filter(|&&c| c == 200).count();
    assert!(
        served <= 3,
        "{served} keep-alive connections served over a limit of 3: {codes:?}"
    );
    assert!(codes.contains(&429), "{codes:?}");
}

#[tokio::test]
async fn engine_io_sessions_without_connect_count_against_the_per_ip_limit() {
    let server = TestServer::start_with(|c| c.limits.max_connections_per_ip = 3).await;
    let mut opened = Vec::new();
    for _ in 0..5 {
        let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
        if let Ok((mut socket, _)) = tokio_tungstenite::connect_async(url).await
            && let Ok(Some(Ok(Message::Text(open)))) =
                tokio::time::timeout(WAIT, socket.next()).await
            && open.starts_with('0')
        {
            opened.push(socket);
        }
    }
    assert!(
        opened.len() <= 3,
        "{} raw Engine.IO sessions opened over a limit of 3",
        opened.len()
    );
}

// ---- item 8: protocol violations close with 1002 / 1007 -------------------------------------

async fn close_code_after(raw_bytes: &[u8]) -> u16 {
    let server = TestServer::start().await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    let MaybeTlsStream::Plain(tcp) = ws.socket.get_mut() else {
        unreachable!()
    };
    tcp.write_all(raw_bytes).await.unwrap();
    ws.close_code().await
}

#[tokio::test]
async fn protocol_violations_close_with_1002_or_1007() {
    let cases: [(&str, Vec<u8>, u16); 7] = [
        (
            "invalid UTF-8",
            frame(0x81, &[0xff, 0xfe, 0xfd], true),
            1007,
        ),
        ("unmasked frame", frame(0x81, b"{}", false), 1002),
        ("RSV1 set", frame(0xC1, b"{}", true), 1002),
        ("unknown opcode", frame(0x83, b"{}", true), 1002),
        ("continuation without start", frame(0x80, b"{}", true), 1002),
        (
            "control frame over 125 bytes",
            frame(0x89, &[0u8; 126], true),
            1002,
        ),
        ("fragmented control frame", frame(0x09, b"x", true), 1002),
    ];
    let mut wrong = Vec::new();
    for (name, bytes, want) in cases {
        let got = close_code_after(&bytes).await;
        if got != want {
            wrong.push(format!("{name}: {got} (want {want})"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

// ---- item 7: Socket.IO consumers that fall behind are disconnected ---------------------------

/// Publishes `n` events of `pad` bytes on `channel`, one after the other (each answered), so
/// the hub's queue of a reader keeps up and only socketioxide's own buffer fills.
async fn publish_burst(server: &TestServer, channel: &str, n: usize, pad: usize) {
    let mut publisher = Ws::connect(&server.ws_url("")).await;
    let pad = "x".repeat(pad);
    for i in 0..n {
        publisher
            .send(json!({"type":"publish","channel":channel,"event":"burst","data":{"i":i,"pad":pad}}))
            .await;
        publisher.recv_type("published").await;
    }
}

fn slow_sio_config(c: &mut switchboard::Config) {
    c.limits.outbound_queue = 16;
    c.limits.client_messages_per_minute = 100_000;
}

/// Polling: the socket does not poll during a burst of 40, then polls again. It must get a
/// disconnect packet (or find its session gone), not 16 events and then pings forever.
#[tokio::test]
async fn a_polling_socket_that_falls_behind_is_disconnected() {
    let server = TestServer::start_with(slow_sio_config).await;
    let http = reqwest::Client::new();
    let base = server.http("/socket.io/?EIO=4&transport=polling");
    let open = http.get(&base).send().await.unwrap().text().await.unwrap();
    let sid: Value = serde_json::from_str(open.strip_prefix('0').unwrap()).unwrap();
    let url = format!("{base}&sid={}", sid["sid"].as_str().unwrap());
    let post = |body: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.post(&url).body(body).send().await.unwrap();
            assert!(r.status().is_success());
        }
    };
    post("40").await;
    post("421[\"join-room\",\"slow\"]").await;
    // Until the join is acknowledged.
    let deadline = Instant::now() + WAIT;
    'joined: loop {
        assert!(Instant::now() < deadline, "join-room never acknowledged");
        let body = http.get(&url).send().await.unwrap().text().await.unwrap();
        for p in body.split('\x1e') {
            if p.starts_with("431") {
                break 'joined;
            }
        }
    }
    publish_burst(&server, "room:slow", 40, 16).await;
    let (mut events, mut disconnected) = (0, false);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && !disconnected {
        let Ok(Ok(res)) =
            tokio::time::timeout(Duration::from_secs(16), http.get(&url).send()).await
        else {
            break;
        };
        if !res.status().is_success() {
            disconnected = true; // the session is gone
            break;
        }
        let body = res.text().await.unwrap();
        for p in body.split('\x1e') {
            match p {
                "41" | "1" => disconnected = true,
                "2" => post("3").await,
                p if p.starts_with("42[\"burst\"") => events += 1,
                _ => {}
            }
        }
    }
    assert!(
        disconnected,
        "a polling socket that fell behind got {events} events and stayed connected"
    );
    assert!(events < 40, "it was not behind: {events}");
}

/// The websocket transport: a socket that does not read during a burst larger than the socket
/// buffers, then reads again, must find a disconnect after what fitted.
#[tokio::test]
async fn a_websocket_socket_io_consumer_that_falls_behind_is_disconnected() {
    let server = TestServer::start_with(slow_sio_config).await;
    let tcp = raw::small_buffer_tcp(server.addr).await;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
    let mut socket = Connection::handshake(&url, MaybeTlsStream::Plain(tcp), None)
        .await
        .unwrap();
    assert!(sio_text(&mut socket).await.unwrap().starts_with('0'));
    socket.send(Message::text("40")).await.unwrap();
    assert!(sio_text(&mut socket).await.unwrap().starts_with("40"));
    socket
        .send(Message::text("421[\"join-room\",\"slow\"]"))
        .await
        .unwrap();
    while !sio_text(&mut socket).await.unwrap().starts_with("431") {}
    // 6 MiB while not reading: more than the kernel buffers, so socketioxide's fills.
    publish_burst(&server, "room:slow", 100, 64 * 1024).await;
    let (mut bursts, mut disconnected) = (0, false);
    while let Some(t) = sio_text(&mut socket).await {
        if t == "41" {
            disconnected = true;
            break;
        }
        if t.starts_with("42[\"burst\"") {
            bursts += 1;
        }
    }
    assert!(disconnected, "got {bursts} events, then no disconnect");
    assert!(bursts < 100, "not behind: {bursts}");
}

/// The next Engine.IO text message (answering pings), `None` when the socket ends or nothing
/// arrives for [`WAIT`].
async fn sio_text(socket: &mut Socket) -> Option<String> {
    loop {
        match tokio::time::timeout(WAIT, socket.next()).await.ok()?? {
            Ok(Message::Text(t)) if t.as_str() == "2" => {
                socket.send(Message::text("3")).await.ok()?;
            }
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Every refused client event is answered: more `typing` events than the inbox holds, sent
/// in one burst without acks, each gives a delivery to the other member or an `error`.
#[tokio::test]
async fn every_refused_socket_io_event_is_answered() {
    const N: usize = 400;
    let server = TestServer::start_with(|c| c.limits.client_messages_per_minute = 100_000).await;
    let mut other = Sio::connect(server.addr, None, None).await.unwrap();
    other.emit_with_ack(1, "join-room", json!("busy")).await;
    other.recv_ack(1).await;

    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", server.addr);
    let mut sender = Connection::open(url).await.unwrap();
    let next_text = async |s: &mut Socket| loop {
        match tokio::time::timeout(WAIT, s.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Text(t) if t.as_str() == "2" => s.send(Message::text("3")).await.unwrap(),
            Message::Text(t) => return t.to_string(),
            _ => {}
        }
    };
    assert!(next_text(&mut sender).await.starts_with('0'));
    sender.send(Message::text("40")).await.unwrap();
    assert!(next_text(&mut sender).await.starts_with("40"));
    sender
        .send(Message::text("421[\"join-room\",\"busy\"]"))
        .await
        .unwrap();
    while !next_text(&mut sender).await.starts_with("431") {}
    // One burst: the frames reach the server together.
    for _ in 0..N {
        sender
            .feed(Message::text("42[\"typing\",{\"roomId\":\"busy\"}]"))
            .await
            .unwrap();
    }
    sender.flush().await.unwrap();
    // A chat message after the burst marks its end for both sides (retried if it is refused
    // too); the inbox is ordered, so everything before it was handled first.
    let mut errors = 0;
    let mut id = 100;
    'acked: loop {
        sender
            .send(Message::text(format!(
                "42{id}[\"chat-message\",{{\"roomId\":\"busy\",\"message\":\"end\"}}]"
            )))
            .await
            .unwrap();
        loop {
            let t = next_text(&mut sender).await;
            if t.starts_with("42[\"error\"") {
                errors += 1;
            } else if let Some(ack) = t.strip_prefix(&format!("43{id}")) {
                if ack.contains("\"ok\"") {
                    break 'acked;
                }
                id += 1;
                continue 'acked;
            }
        }
    }
    let mut delivered = 0;
    loop {
        match other.recv().await {
            common::sio::Packet::Event(e, _) if e == "user-typing" => delivered += 1,
            common::sio::Packet::Event(e, _) if e == "new-message" => break,
            _ => {}
        }
    }
    println!("{N} typing events: {delivered} delivered, {errors} refused with an error");
    assert_eq!(delivered + errors, N, "some refused events got no answer");
}

// ---- item 1: a connection that does not read is a slow consumer ------------------------------

/// A client that stops reading while its queue is far from full (1024 items) is closed with
/// 4009 once its socket has taken nothing for `limits.write_timeout_ms`, not only when the
/// queue overflows.
#[tokio::test]
async fn a_client_that_stops_reading_is_closed_after_the_write_timeout() {
    let server = TestServer::start_with(|c| {
        c.limits.client_messages_per_minute = 100_000;
        c.limits.write_timeout_ms = 1_000;
    })
    .await;
    let channel = "room:stall";
    let tcp = raw::small_buffer_tcp(server.addr).await;
    let socket = Connection::handshake(&server.ws_url(""), MaybeTlsStream::Plain(tcp), None)
        .await
        .unwrap();
    let mut stalled = Ws {
        socket,
        connection_id: String::new(),
        seen: Vec::new(),
    };
    let welcome = stalled.recv().await;
    let stalled_id = welcome["connectionId"].as_str().unwrap().to_owned();
    stalled.subscribe(channel).await;
    let mut watcher = Ws::connect(&server.ws_url("")).await;
    let mut publisher = Ws::connect(&server.ws_url("")).await;
    let pad = "x".repeat(16 * 1024);
    let mut cut_at = None;
    // 8 MiB at most: more than the socket buffers can hold, far less than the 1024-item queue.
    for i in 0..512 {
        publisher
            .send(json!({"type":"publish","channel":channel,"event":"flood","data":{"i":i,"pad":pad}}))
            .await;
        publisher.recv_type("published").await;
        watcher
            .send(json!({"type":"presence","channel":channel}))
            .await;
        let p = watcher.recv_type("presence").await;
        if !p["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["connectionId"] == stalled_id.as_str())
        {
            cut_at = Some(i);
            break;
        }
        if i >= 200 {
            // Past the socket buffers, publish at a modest pace (the scenario: little traffic),
            // so the queue stays far from full while the write timeout runs.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let cut_at = cut_at.expect("a client that stopped reading was never closed");
    assert_eq!(stalled.close_code().await, 4009, "cut after {cut_at}");
}
