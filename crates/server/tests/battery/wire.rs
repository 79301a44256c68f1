//! Cases below the message layer: hand-built WebSocket frames that break RFC 6455, floods of
//! control frames, a client that stops reading, and HTTP requests that are malformed, too big or
//! never finish.

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_core::auth::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ctx::{Case, Ctx, HEADER_TIMEOUT_MS, MAX_MESSAGE_BYTES};
use crate::raw::{closed_within, frame, handshake, small_buffer_tcp};

/// A raw WebSocket on `/ws` with the `welcome` read past.
async fn raw_ws(ctx: &Ctx) -> (TcpStream, Vec<u8>) {
    let mut tcp = TcpStream::connect(ctx.addr).await.unwrap();
    let rest = handshake(&mut tcp, ctx.addr, "/ws").await;
    (tcp, rest)
}

/// Reads server frames until the close frame and returns its code (1005 for none); fails on
/// EOF before it. Text frames before it are recorded.
async fn close_code(ctx: &Ctx, tcp: &mut TcpStream, mut buf: Vec<u8>) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        // Parse every complete frame in `buf`.
        while buf.len() >= 2 {
            let opcode = buf[0] & 0x0f;
            let (len, head) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&buf[2..10]);
                    (u64::from_be_bytes(b) as usize, 10)
                }
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if buf.len() < head + len {
                break;
            }
            let payload = buf[head..head + len].to_vec();
            buf.drain(..head + len);
            match opcode {
                0x8 if payload.len() >= 2 => return u16::from_be_bytes([payload[0], payload[1]]),
                0x8 => return 1005,
                0x1 => ctx.saw(String::from_utf8_lossy(&payload).to_string()),
                _ => {}
            }
        }
        let mut chunk = vec![0u8; 64 * 1024];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, tcp.read(&mut chunk))
            .await
            .expect("no close frame within 15 s")
            .expect("connection reset before the close frame");
        assert!(n > 0, "EOF before the close frame");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends `bytes` on a fresh raw `/ws` and expects the close `code`.
async fn closes_with(ctx: &Ctx, bytes: Vec<u8>, code: u16) {
    let (mut tcp, rest) = raw_ws(ctx).await;
    tcp.write_all(&bytes).await.unwrap();
    assert_eq!(close_code(ctx, &mut tcp, rest).await, code);
}

/// Sends a raw HTTP request and returns the status line's code and the whole answer.
async fn http_raw(ctx: &Ctx, request: &[u8]) -> (u16, String) {
    let mut tcp = TcpStream::connect(ctx.addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    ctx.saw(text.clone());
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

pub fn cases() -> Vec<Case> {
    vec![
        case!("frames: a message over max_message_bytes → 1009", |ctx| {
            let big = vec![b'x'; MAX_MESSAGE_BYTES + 1];
            closes_with(&ctx, frame(0x81, &big, true), 1009).await;
        }),
        case!("frames: invalid UTF-8 in a text frame → 1007", |ctx| {
            closes_with(&ctx, frame(0x81, &[0x7b, 0xff, 0xfe, 0x7d], true), 1007).await;
        }),
        case!("frames: an unmasked client frame → 1002", |ctx| {
            closes_with(&ctx, frame(0x81, br#"{"type":"ping"}"#, false), 1002).await;
        }),
        case!("frames: RSV bits set → 1002", |ctx| {
            closes_with(&ctx, frame(0xC1, br#"{"type":"ping"}"#, true), 1002).await;
        }),
        case!("frames: an unknown opcode → 1002", |ctx| {
            closes_with(&ctx, frame(0x83, b"x", true), 1002).await;
        }),
        case!(
            "frames: a continuation with nothing to continue → 1002",
            |ctx| {
                closes_with(&ctx, frame(0x80, b"x", true), 1002).await;
            }
        ),
        case!("frames: a control frame over 125 bytes → 1002", |ctx| {
            closes_with(&ctx, frame(0x89, &[7u8; 126], true), 1002).await;
        }),
        case!("frames: a ping flood → 4008, pongs not queued", |ctx| {
            let (mut tcp, rest) = raw_ws(&ctx).await;
            let mut flood = Vec::new();
            for _ in 0..2_000 {
                flood.extend(frame(0x89, b"p", true));
            }
            // The server may stop reading once it has closed; the write can fail then.
            let _ = tcp.write_all(&flood).await;
            assert_eq!(close_code(&ctx, &mut tcp, rest).await, 4008);
        }),
        case!("frames: a subscriber that stops reading → 4009", |ctx| {
            let mut tcp = small_buffer_tcp(ctx.addr).await;
            let rest = handshake(&mut tcp, ctx.addr, "/ws").await;
            tcp.write_all(&frame(
                0x81,
                br#"{"type":"subscribe","channel":"room:battery-slow"}"#,
                true,
            ))
            .await
            .unwrap();
            let (_, hq) = ctx.user(Role::Hq, &[]);
            let blob = "s".repeat(16 * 1024);
            let marker = "slow consumer; closing with 4009";
            let before = ctx.log_count(marker);
            // Publish until the server cuts the client off (its queue of 64 overflows once the
            // socket buffers are full: well under 1,000 × 16 KiB); the client reads nothing.
            for i in 0..1_000 {
                let res = ctx
                    .http
                    .post(ctx.url("/api/publish"))
                    .bearer_auth(&hq)
                    .json(&json!({"channel":"room:battery-slow","event":"blob","data":{"i":i,"s":blob}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200, "publish {i}");
                if ctx.log_count(marker) > before {
                    break;
                }
            }
            assert!(
                ctx.log_count(marker) > before,
                "never cut off as a slow consumer"
            );
            // The close frame waits behind the unread data: reading now gets it.
            assert_eq!(close_code(&ctx, &mut tcp, rest).await, 4009);
        }),
        case!(
            "http: a request head that never ends → closed after the head timeout",
            |ctx| {
                let mut tcp = TcpStream::connect(ctx.addr).await.unwrap();
                tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .await
                    .unwrap();
                let start = Instant::now();
                let within = Duration::from_millis(HEADER_TIMEOUT_MS + 3_000);
                assert!(
                    closed_within(&mut tcp, within).await,
                    "still open after {within:?}"
                );
                let took = start.elapsed();
                assert!(
                    took >= Duration::from_millis(HEADER_TIMEOUT_MS - 200),
                    "closed after {took:?}"
                );
            }
        ),
        case!("http: a body that stops → 4xx, then closed", |ctx| {
            let (_, hq) = ctx.user(Role::Hq, &[]);
            let mut tcp = TcpStream::connect(ctx.addr).await.unwrap();
            let head = format!(
                "PUT /missions/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {hq}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"status\""
            );
            tcp.write_all(head.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            tokio::time::timeout(Duration::from_secs(6), tcp.read_to_end(&mut out))
                .await
                .expect("the stalled body was not cut off")
                .unwrap();
            let text = String::from_utf8_lossy(&out).to_string();
            ctx.saw(text.clone());
            let status: u16 = text
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap();
            assert!((400..500).contains(&status), "{text}");
        }),
        case!("http: a request line that is not HTTP → 400", |ctx| {
            let (status, _) = http_raw(&ctx, b"HELLO WORLD\r\n\r\n").await;
            assert_eq!(status, 400);
        }),
        case!("http: a 70 KiB request target → 414", |ctx| {
            let target = format!("/poll?channels={}", "a".repeat(70 * 1024));
            let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let (status, _) = http_raw(&ctx, req.as_bytes()).await;
            assert_eq!(status, 414);
        }),
        case!("http: 200 KiB of headers → 431", |ctx| {
            let req = format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
                "b".repeat(200 * 1024)
            );
            let (status, _) = http_raw(&ctx, req.as_bytes()).await;
            assert_eq!(status, 431);
        }),
    ]
}
