//! Socket.IO (SPEC §4.2) and rooms (§1.2) seen from Rust: rooms reach native subscribers too,
//! "to the others" notices skip the sender and are never stored, handshakes are checked.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use common::sio::{Packet, Sio};
use common::*;
use serde_json::{Value, json};
use switchboard_core::auth::Role;

#[tokio::test]
async fn room_messages_reach_native_subscribers_and_notices_skip_the_sender() {
    let server = TestServer::start().await;
    let mut native = Ws::connect(&server.ws_url("")).await;
    let sub = native.subscribe("room:r1").await;
    let epoch = sub["epoch"].as_str().unwrap().to_owned();

    let mut a = Sio::connect(server.addr, None, None).await.unwrap();
    assert_eq!(a.recv_event("socket-id").await, json!(a.sid));
    a.emit("join-room", json!("r1")).await;
    let joined = native.recv().await;
    assert_eq!(joined["type"], "user-joined");
    assert_eq!(joined["channel"], "room:r1");
    assert_eq!(joined["data"], json!(a.sid));

    a.emit(
        "chat-message",
        json!({"roomId":"r1","message":" hi\u{0007} there "}),
    )
    .await;
    let got = native.recv().await;
    assert_eq!(got["type"], "new-message");
    assert_eq!(got["channel"], "room:r1");
    let msg = &got["data"];
    assert_eq!(msg["message"], "hi there");
    assert_eq!(msg["sender"], json!(a.sid));
    assert!(msg["id"].is_string());
    assert!(msg["timestamp"].as_str().unwrap().ends_with('Z'));
    // The sender is in the room and gets the same DTO.
    assert_eq!(a.recv_event("new-message").await, *msg);

    // Typing: the others only.
    a.emit("typing", json!({"roomId":"r1"})).await;
    let typing = native.recv().await;
    assert_eq!(typing["type"], "user-typing");
    assert_eq!(typing["data"], json!(a.sid));
    a.emit("chat-message", json!({"roomId":"r1","message":"second"}))
        .await;
    // The next thing the sender sees is its message, not its own typing notice.
    match a.recv().await {
        Packet::Event(e, d) => assert_eq!(
            (e.as_str(), &d["message"]),
            ("new-message", &json!("second"))
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(native.recv().await["data"]["message"], "second");

    // History holds the two messages and neither notice.
    let mut late = Ws::connect(&server.ws_url("")).await;
    late.send(json!({"type":"subscribe","channel":"room:r1","since":{"offset":0,"epoch":epoch}}))
        .await;
    let sub = late.recv().await;
    assert_eq!(
        (sub["type"].as_str(), sub["recovered"].as_bool()),
        (Some("subscribed"), Some(true))
    );
    assert_eq!(late.recv().await["data"]["message"], "hi there");
    assert_eq!(late.recv().await["data"]["message"], "second");
    late.expect_silence(Duration::from_millis(200)).await;

    // Invalid text is refused through the ack; nothing is published.
    a.emit_with_ack(
        7,
        "chat-message",
        json!({"roomId":"r1","message":"\u{0000} "}),
    )
    .await;
    let refused = a.recv_ack(7).await;
    assert_eq!(refused["error"], "Message must not be empty");
    a.emit_with_ack(
        8,
        "chat-message",
        json!({"roomId":"r1","message":"x".repeat(2001)}),
    )
    .await;
    assert_eq!(a.recv_ack(8).await["code"], "bad_request");
    native.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn subscribe_acks_and_mission_updates_arrive_as_events() {
    let server = TestServer::start().await;
    let mut a = Sio::connect(server.addr, None, None).await.unwrap();
    a.recv_event("socket-id").await;
    a.emit_with_ack(1, "subscribe", json!("missions:2")).await;
    let ack = a.recv_ack(1).await;
    assert_eq!(ack["ok"], true);
    assert_eq!(ack["channel"], "missions:2");
    assert!(ack["offset"].is_u64() && ack["epoch"].is_string());
    a.emit_with_ack(2, "subscribe", json!("city:nairobi")).await;
    assert_eq!(a.recv_ack(2).await["code"], "forbidden");

    let res = put_mission(&server, 2, Some(&hq()), json!({"status":"active"})).await;
    assert_eq!(res.status(), 200);
    let expected = json!({"id":2,"codename":"Glass Harbor","status":"active","location":"Lisbon"});
    // Once from `missions` (joined on connect), once from `missions:2`.
    assert_eq!(a.recv_event("mission-update").await, expected);
    assert_eq!(a.recv_event("mission-update").await, expected);

    a.emit_with_ack(3, "unsubscribe", json!("missions:2")).await;
    assert_eq!(a.recv_ack(3).await["ok"], true);
    a.emit_with_ack(4, "unsubscribe", json!("missions:2")).await;
    assert_eq!(a.recv_ack(4).await["code"], "not_found");
}

#[tokio::test]
async fn handshake_checks_token_and_origin() {
    let server = TestServer::start().await;
    let bad = Sio::connect(server.addr, Some(json!({"token":"nope"})), None).await;
    assert_eq!(bad.err().as_deref(), Some("Invalid token"));
    let expired = token_with(SECRET, "u", Role::Agent, &[], now() - 10);
    let err = Sio::connect(server.addr, Some(json!({ "token": expired })), None).await;
    assert_eq!(err.err().as_deref(), Some("Token expired"));
    let evil = Sio::connect(server.addr, None, Some("http://evil.example")).await;
    assert_eq!(evil.err().as_deref(), Some("403 Forbidden"));

    // An HQ token: the HQ DTO, and the user's personal channel.
    let mut h = Sio::connect(server.addr, Some(json!({"token": hq()})), None)
        .await
        .unwrap();
    h.recv_event("socket-id").await;
    let res = put_mission(&server, 3, Some(&hq()), json!({"location":"Ankara"})).await;
    assert_eq!(res.status(), 200);
    let dto: Value = h.recv_event("mission-update").await;
    assert_eq!(dto["objective"], "Photograph the shipment manifests");
    assert!(dto.get("handler_notes").is_none());
    // The personal channel `user:hq-1`: a publication there reaches this socket.
    let res = reqwest::Client::new()
        .post(server.http("/api/publish"))
        .bearer_auth(hq())
        .json(&json!({"channel":"user:hq-1","event":"note","data":{"n":1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (data, meta) = h.recv_publication("note").await;
    assert_eq!(data, json!({"n":1}));
    assert_eq!(meta["channel"], "user:hq-1");

    let locked = TestServer::start_with(|c| c.auth.allow_anonymous = false).await;
    let anon = Sio::connect(locked.addr, None, None).await;
    assert_eq!(anon.err().as_deref(), Some("Authentication required"));
}

/// Fan-out measurement (not a pass/fail test): one mission update to N native and N Socket.IO
/// subscribers; prints how long until every client of each kind has it.
/// `cargo test --release -p switchboard --test socketio_rooms -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand"]
async fn measure_fan_out_native_vs_socketio() {
    const N: usize = 300;
    // 600 anonymous clients on one IP share a rate-limit bucket: lift it for the measurement.
    let server = TestServer::start_with(|c| c.limits.client_messages_per_minute = 100_000).await;
    let mut natives = Vec::new();
    let mut sios = Vec::new();
    for _ in 0..N {
        let mut ws = Ws::connect(&server.ws_url("")).await;
        ws.subscribe("missions").await;
        natives.push(ws);
        let mut s = Sio::connect(server.addr, None, None).await.unwrap();
        s.recv_event("socket-id").await;
        // Joined `missions` on connect; an acked request proves the join is done.
        s.emit_with_ack(1, "subscribe", json!("lobby")).await;
        s.recv_ack(1).await;
        sios.push(s);
    }
    for round in 0..3 {
        let start = std::time::Instant::now();
        let res = put_mission(
            &server,
            1,
            Some(&hq()),
            json!({"location": format!("L{round}")}),
        )
        .await;
        assert_eq!(res.status(), 200);
        let native = tokio::spawn(async move {
            for ws in natives.iter_mut() {
                ws.recv_type("mission-update").await;
            }
            (natives, start.elapsed())
        });
        let sio = tokio::spawn(async move {
            for s in sios.iter_mut() {
                s.recv_event("mission-update").await;
            }
            (sios, start.elapsed())
        });
        let (n, tn) = native.await.unwrap();
        let (s, ts) = sio.await.unwrap();
        natives = n;
        sios = s;
        println!("round {round}: {N} native in {tn:?}, {N} socket.io in {ts:?}");
    }
}
