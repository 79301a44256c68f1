//! Hardening (issue items 2 and 3): event names a transport or client library reserves, and the
//! native protocol's own message types, are refused on every publish path and never emitted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::feeds::Sse;
use common::sio::Sio;
use common::*;
use serde_json::json;

/// socket.io-client disconnects (`parse error`) on an `EVENT` packet with one of these names.
const SOCKET_IO_RESERVED: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Message types of the native protocol and the SSE stream's own notices.
const PROTOCOL_LOOKALIKES: [&str; 16] = [
    "welcome",
    "authenticated",
    "auth_error",
    "subscribed",
    "unsubscribed",
    "published",
    "presence",
    "pong",
    "error",
    "auth",
    "subscribe",
    "unsubscribe",
    "publish",
    "ping",
    "connected",
    "close",
];

/// The answer to a publish, skipping deliveries of the channel the client is subscribed to.
async fn answer(ws: &mut Ws) -> serde_json::Value {
    loop {
        let v = ws.recv().await;
        if v["type"] == "published" || v["type"] == "error" {
            return v;
        }
    }
}

fn all_reserved() -> impl Iterator<Item = &'static str> {
    SOCKET_IO_RESERVED
        .iter()
        .chain(PROTOCOL_LOOKALIKES.iter())
        .copied()
}

#[tokio::test]
async fn anonymous_client_publish_of_a_reserved_name_is_refused() {
    let server = TestServer::start().await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    for (i, event) in all_reserved().enumerate() {
        ws.send(json!({"type":"publish","channel":"room:x","event":event,"data":"x","ref":i}))
            .await;
        let answer = ws.recv().await;
        assert_eq!(answer["type"], "error", "{event}: {answer}");
        assert_eq!(answer["code"], "forbidden", "{event}: {answer}");
        assert_eq!(answer["ref"], json!(i));
    }
    // An ordinary name still works.
    ws.send(json!({"type":"publish","channel":"room:x","event":"note","data":"x"}))
        .await;
    assert_eq!(ws.recv().await["type"], "published");
}

#[tokio::test]
async fn server_publish_api_refuses_reserved_names_even_for_hq() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    for event in all_reserved() {
        let res = http
            .post(server.http("/api/publish"))
            .bearer_auth(hq())
            .json(&json!({"channel":"room:x","event":event,"data":"x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{event} was accepted");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["field"], "event", "{event}: {body}");
    }
    // Server-owned app events stay publishable through the server API.
    let res = http
        .post(server.http("/api/publish"))
        .bearer_auth(hq())
        .json(&json!({"channel":"room:x","event":"new-message","data":"x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// The attack of item 2: a native client publishes `connect` into a room; a Socket.IO socket
/// in that room must never receive it (socket.io-client would drop the connection), neither
/// live nor when it rejoins and reads the room's history.
#[tokio::test]
async fn socket_io_rooms_never_receive_a_reserved_event() {
    let server = TestServer::start().await;
    let mut sio = Sio::connect(server.addr, None, None).await.unwrap();
    sio.recv_event("socket-id").await;
    sio.emit_with_ack(1, "join-room", json!("x")).await;
    sio.recv_ack(1).await;

    let mut ws = Ws::connect(&server.ws_url("")).await;
    let epoch = ws.subscribe("room:x").await["epoch"].clone();
    for event in SOCKET_IO_RESERVED {
        ws.send(json!({"type":"publish","channel":"room:x","event":event,"data":"x"}))
            .await;
        answer(&mut ws).await;
    }
    ws.send(json!({"type":"publish","channel":"room:x","event":"after","data":"x"}))
        .await;
    assert_eq!(answer(&mut ws).await["type"], "published");

    // Everything the socket received up to the ordinary event: no reserved name among it.
    let mut seen = Vec::new();
    loop {
        match sio.recv().await {
            common::sio::Packet::Event(e, _) if e == "after" => break,
            common::sio::Packet::Event(e, _) => seen.push(e),
            common::sio::Packet::Ack(..) => {}
        }
    }
    for event in &seen {
        assert!(
            !SOCKET_IO_RESERVED.contains(&event.as_str()),
            "socket.io socket received reserved event {event:?} (all: {seen:?})"
        );
    }
    // Resuming from history must not bring one back either.
    let mut late = Ws::connect(&server.ws_url("")).await;
    late.send(json!({"type":"subscribe","channel":"room:x","since":{"offset":0,"epoch":epoch}}))
        .await;
    let sub = late.recv().await;
    assert_eq!(sub["type"], "subscribed", "{sub}");
    assert_eq!(sub["recovered"], true, "{sub}");
    loop {
        let v = late.recv().await;
        let kind = v["type"].as_str().unwrap().to_owned();
        assert!(
            !SOCKET_IO_RESERVED.contains(&kind.as_str()),
            "history replayed reserved event {kind:?}"
        );
        if kind == "after" {
            break;
        }
    }
}

/// Item 3 on SSE: a subscriber never gets `event: error` or `event: close` from a publication
/// (an EventSource treats a named `error` event as a failure of the stream).
#[tokio::test]
async fn sse_subscribers_never_get_protocol_named_events() {
    let server = TestServer::start().await;
    let mut sse = Sse::open(&server, "channels=room:s", &[]).await;
    assert_eq!(sse.next_event().await.json()["type"], "connected");
    let mut ws = Ws::connect(&server.ws_url("")).await;
    for event in ["error", "close", "connected", "subscribed", "welcome"] {
        ws.send(json!({"type":"publish","channel":"room:s","event":event,"data":"x"}))
            .await;
        ws.recv().await;
    }
    ws.send(json!({"type":"publish","channel":"room:s","event":"fine","data":"x"}))
        .await;
    assert_eq!(ws.recv().await["type"], "published");
    let next = sse.next_event().await;
    assert_eq!(next.event.as_deref(), Some("fine"), "{next:?}");
}
