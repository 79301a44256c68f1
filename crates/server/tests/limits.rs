//! Limits users rely on (SPEC §6), end to end over real connections: connections per IP (429
//! for every TCP connection over the limit, whatever its transport), subscriptions per connection (native and Socket.IO),
//! REST bodies over the limit (413), CORS by the allow-list, anonymous REST writes limited per
//! IP, and binary frames on the native protocol (`invalid_message`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::{Duration, Instant};

use common::feeds::{Sse, poll};
use common::sio::Sio;
use common::*;
use serde_json::{Value, json};
use switchboard_core::auth::Role;
use tokio_tungstenite::tungstenite::{self, Message};

/// The HTTP status a refused WebSocket upgrade answered, or `None` if it was accepted.
async fn ws_refusal(url: &str) -> Option<u16> {
    match Ws::connect_raw(url, None).await {
        Ok(_) => None,
        Err(tungstenite::Error::Http(res)) => Some(res.status().as_u16()),
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

/// Every TCP connection holds a place from accept until the server has seen it close, which is
/// a moment after the client dropped it (docs/security.md): an open that must succeed is
/// retried until earlier, closed connections (the readiness probe's, say) gave theirs back.
async fn admitted<T, F, Fut>(what: &str, mut open: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = open().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never admitted within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn connections_per_ip_are_limited_on_every_transport() {
    let server = TestServer::start_with(|c| c.limits.max_connections_per_ip = 2).await;
    let (_, now) = admitted("cursor-less poll", || async {
        let (status, body) = poll(&server, "channels=missions", &[]).await;
        (status == 200).then_some((status, body))
    })
    .await;
    let cursor = now["cursor"].as_str().unwrap().to_owned();
    let first = admitted("first websocket", || async {
        Ws::connect_raw(&server.ws_url(""), None).await.ok()
    })
    .await;
    let mut sse = admitted("sse stream", || async {
        let res = Sse::request(&server, "channels=missions", &[]).await;
        (res.status() == 200).then(|| Sse::from_response(res))
    })
    .await;
    assert_eq!(sse.next_event().await.json()["type"], "connected");
    // Two live connections from 127.0.0.1: the third is refused, whatever its transport.
    assert_eq!(ws_refusal(&server.ws_url("")).await, Some(429));
    let res = Sse::request(&server, "channels=missions", &[]).await;
    assert_eq!(res.status(), 429);
    let (status, body) = poll(&server, &format!("channels=missions&cursor={cursor}"), &[]).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "Too many connections from this address");

    // A connection that ends gives its place back.
    drop(first);
    let deadline = Instant::now() + WAIT;
    while ws_refusal(&server.ws_url("")).await == Some(429) {
        assert!(
            Instant::now() < deadline,
            "the closed connection's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn socket_io_connections_count_towards_the_per_ip_limit() {
    let server = TestServer::start_with(|c| c.limits.max_connections_per_ip = 1).await;
    let _held = admitted("socket.io", || async {
        Sio::connect(server.addr, None, None).await.ok()
    })
    .await;
    assert_eq!(ws_refusal(&server.ws_url("")).await, Some(429));
}

#[tokio::test]
async fn subscriptions_per_connection_are_limited_on_both_protocols() {
    let server = TestServer::start_with(|c| c.limits.max_subscriptions_per_connection = 3).await;
    // Native: only channels the client chose count; its personal `conn:` channel does not.
    let mut ws = Ws::connect(&server.ws_url("")).await;
    for n in 1..=3 {
        ws.subscribe(&format!("room:{n}")).await;
    }
    ws.send(json!({"type":"subscribe","channel":"room:4","ref":"over"}))
        .await;
    let refused = ws.recv().await;
    assert_eq!(
        (
            refused["type"].as_str(),
            refused["code"].as_str(),
            refused["ref"].as_str()
        ),
        (Some("error"), Some("bad_request"), Some("over")),
        "{refused}"
    );
    assert_eq!(
        refused["message"],
        "Too many subscriptions on this connection"
    );
    // Leaving one makes room again.
    ws.send(json!({"type":"unsubscribe","channel":"room:1"}))
        .await;
    ws.recv_type("unsubscribed").await;
    ws.subscribe("room:4").await;

    // Socket.IO: `missions`, `lobby` and the personal channel, joined on connect, take no
    // place; three chosen channels fit, a fourth does not, by `subscribe` or `join-room`.
    let mut sio = Sio::connect(server.addr, None, None).await.unwrap();
    sio.recv_event("socket-id").await;
    for (id, room) in [(1, "room:a"), (2, "room:b"), (3, "room:c")] {
        sio.emit_with_ack(id, "subscribe", json!(room)).await;
        assert_eq!(sio.recv_ack(id).await["ok"], true, "{room}");
    }
    sio.emit_with_ack(4, "subscribe", json!("room:d")).await;
    let refused = sio.recv_ack(4).await;
    assert_eq!(refused["code"], "bad_request", "{refused}");
    assert_eq!(
        refused["error"],
        "Too many subscriptions on this connection"
    );
    sio.emit_with_ack(5, "join-room", json!("e")).await;
    assert_eq!(
        sio.recv_ack(5).await["error"],
        "Too many subscriptions on this connection"
    );
    sio.emit_with_ack(6, "unsubscribe", json!("room:a")).await;
    assert_eq!(sio.recv_ack(6).await["ok"], true);
    sio.emit_with_ack(7, "subscribe", json!("room:d")).await;
    assert_eq!(sio.recv_ack(7).await["ok"], true);
}

#[tokio::test]
async fn rest_bodies_over_the_limit_get_413() {
    let server = TestServer::start_with(|c| c.limits.max_message_bytes = 1024).await;
    let c = reqwest::Client::new();
    let big = json!({"location": "x".repeat(2000)});
    let small = json!({"location": "Small"});
    for (method, path, token) in [
        (reqwest::Method::PUT, "/missions/1", Some(hq())),
        (reqwest::Method::POST, "/missions", Some(hq())),
        (reqwest::Method::POST, "/api/publish", Some(hq())),
        (
            reqwest::Method::POST,
            "/api/payments/make-payment-with-socket",
            None,
        ),
    ] {
        let mut req = c.request(method.clone(), server.http(path)).json(&big);
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 413, "{method} {path}");
    }
    // Under the limit the same route is served (the 413 above is about size, not the route).
    let res = put_mission(&server, 1, Some(&hq()), small).await;
    assert_eq!(res.status(), 200);
    let res = reqwest::get(server.http("/missions/1")).await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["location"], "Small");
}

#[tokio::test]
async fn cors_follows_the_allow_list() {
    let server = TestServer::start_with(|c| {
        c.security.allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let c = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        c.request(reqwest::Method::OPTIONS, server.http("/missions/1"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "PUT")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
    };
    let ok = preflight("https://app.example").await.unwrap();
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("PUT"), "{methods}");
    let headers = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "a disallowed origin is not allowed: {:?}",
        refused.headers()
    );
    // Simple requests: the allowed origin is named, another is not.
    for (origin, allowed) in [
        ("https://app.example", true),
        ("https://evil.example", false),
    ] {
        let res = c
            .get(server.http("/missions"))
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_owned()),
            allowed.then(|| origin.to_owned()),
            "{origin}"
        );
    }
}

#[tokio::test]
async fn anonymous_rest_writes_are_limited_per_ip() {
    let server = TestServer::start_with(|c| {
        c.limits.rest_writes_per_minute = 3;
        c.payments.processing_delay_ms = 60_000;
    })
    .await;
    let c = reqwest::Client::new();
    let pay = |forwarded: Option<&'static str>| {
        let mut req = c
            .post(server.http("/api/payments/make-payment-with-socket"))
            .json(&json!({"amount": 1, "socketId": "nobody"}));
        if let Some(f) = forwarded {
            req = req.header("X-Forwarded-For", f);
        }
        req.send()
    };
    for _ in 0..3 {
        assert_eq!(pay(None).await.unwrap().status(), 200);
    }
    let res = pay(None).await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    // The bucket is the address's: other anonymous writes share it, and a forged
    // X-Forwarded-For from an untrusted peer does not get a fresh one.
    assert_eq!(pay(Some("203.0.113.9")).await.unwrap().status(), 429);
    let res = c
        .put(server.http("/missions/1"))
        .json(&json!({"location":"x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "anonymous PUT from the same address");
    // A user with a token has a bucket of their own.
    let res = put_mission(
        &server,
        1,
        Some(&token("hq-9", Role::Hq, &[])),
        json!({"location":"y"}),
    )
    .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn binary_frames_are_invalid_messages_and_the_connection_stays() {
    let server = TestServer::start().await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    let mut other = Ws::connect(&server.ws_url("")).await;
    use futures_util::SinkExt;
    ws.socket
        .send(Message::binary(br#"{"type":"ping"}"#.to_vec()))
        .await
        .unwrap();
    let v = ws.recv().await;
    assert_eq!(
        v,
        json!({"type":"error","code":"invalid_message","message":"Invalid message format"})
    );
    // Not closed: a text ping is answered, and a subscription works.
    ws.send(json!({"type":"ping","ref":2})).await;
    assert_eq!(ws.recv().await, json!({"type":"pong","ref":2}));
    ws.subscribe("lobby").await;
    other.expect_silence(Duration::from_millis(50)).await;
}
