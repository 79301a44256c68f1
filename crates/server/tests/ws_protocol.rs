//! The native protocol v1 (SPEC §4.1) over a real socket: replies, every error code, every close
//! code this transport produces, auth by query and by message, Origin, recovery, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchboard_core::auth::Role;

#[tokio::test]
async fn welcome_ping_and_ref_echo() {
    let server = TestServer::start().await;
    let mut ws = Ws::connect_raw(&server.ws_url(""), None).await.unwrap();
    let w = ws.recv().await;
    assert_eq!(w["message"], "Connected to WebSocket server");
    assert_eq!(w["protocol"], 1);
    assert_eq!(w["heartbeat"], 30000);
    assert_eq!(w["connectionId"].as_str().unwrap().len(), 20);
    ws.send(json!({"type":"ping","ref":"abc"})).await;
    assert_eq!(ws.recv().await, json!({"type":"pong","ref":"abc"}));
    ws.send(json!({"type":"ping"})).await;
    assert_eq!(ws.recv().await, json!({"type":"pong"}));
}

#[tokio::test]
async fn every_error_code_keeps_the_connection_open() {
    let server = TestServer::start().await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    let mut other = Ws::connect(&server.ws_url("")).await;
    other.subscribe("lobby").await;

    ws.send_text("{not json").await;
    assert_eq!(
        ws.recv().await,
        json!({"type":"error","code":"invalid_json","message":"Invalid JSON"})
    );
    ws.send_text("[1,2]").await;
    assert_eq!(
        ws.recv().await,
        json!({"type":"error","code":"invalid_message","message":"Invalid message format"})
    );
    ws.send(json!({"type":"subscribe","ref":4})).await;
    assert_eq!(
        ws.recv().await,
        json!({"type":"error","code":"invalid_message","message":"Invalid message format","ref":4})
    );
    ws.send(json!({"type":"teleport","ref":5})).await;
    let e = ws.recv().await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_i64()),
        (Some("unknown_type"), Some(5))
    );
    ws.send(json!({"type":"subscribe","channel":"city:nairobi","ref":6}))
        .await;
    let e = ws.recv().await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_i64()),
        (Some("forbidden"), Some(6))
    );
    ws.send(json!({"type":"subscribe","channel":"bad channel!"}))
        .await;
    assert_eq!(ws.recv().await["code"], "bad_request");
    ws.send(json!({"type":"unsubscribe","channel":"lobby"}))
        .await;
    assert_eq!(ws.recv().await["code"], "not_found");
    ws.send(json!({"type":"presence","channel":"missions"}))
        .await;
    assert_eq!(ws.recv().await["code"], "not_found");
    ws.send(json!({"type":"subscribe","channel":"conn:someone-else"}))
        .await;
    assert_eq!(ws.recv().await["code"], "forbidden");

    // Still fine afterwards, and the other connection never noticed.
    ws.send(json!({"type":"ping","ref":1})).await;
    assert_eq!(ws.recv().await["type"], "pong");
    other.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn subscribe_unsubscribe_and_publish_rules() {
    let server = TestServer::start().await;
    let mut a = Ws::connect(&server.ws_url("")).await;
    let mut b = Ws::connect(&server.ws_url("")).await;
    a.subscribe("room:42").await;
    b.subscribe("room:42").await;

    b.send(json!({"type":"publish","channel":"room:42","event":"note","data":{"x":1},"ref":"p"}))
        .await;
    // The publisher is a subscriber too: its own delivery may arrive before the reply.
    let ack = b.recv_type("published").await;
    assert_eq!(ack["ref"], "p");
    let off = ack["offset"].as_u64().unwrap();
    let d = a.recv().await;
    assert_eq!(
        (d["type"].as_str(), d["offset"].as_u64()),
        (Some("note"), Some(off))
    );
    assert_eq!(d["data"], json!({"x":1}));
    if b.seen.iter().all(|t| !t.contains("\"type\":\"note\"")) {
        assert_eq!(b.recv().await["type"], "note");
    }

    // The missions namespace is server-owned; reserved events can't be forged anywhere.
    b.send(json!({"type":"publish","channel":"missions","event":"note","data":1}))
        .await;
    assert_eq!(b.recv().await["code"], "forbidden");
    b.send(json!({"type":"publish","channel":"room:42","event":"new-message","data":1}))
        .await;
    assert_eq!(b.recv().await["code"], "forbidden");
    b.send(json!({"type":"publish","channel":"room:42","event":"bad event","data":1}))
        .await;
    assert_eq!(b.recv().await["code"], "bad_request");

    a.send(json!({"type":"subscribe","channel":"room:42"}))
        .await;
    assert_eq!(a.recv().await["code"], "bad_request");
    a.send(json!({"type":"unsubscribe","channel":"room:42","ref":9}))
        .await;
    assert_eq!(
        a.recv().await,
        json!({"type":"unsubscribed","channel":"room:42","ref":9})
    );
    b.send(json!({"type":"publish","channel":"room:42","event":"note","data":2}))
        .await;
    b.recv_type("published").await;
    a.expect_silence(Duration::from_millis(150)).await;
}

#[tokio::test]
async fn lobby_chat_sets_sender_and_validates() {
    let server = TestServer::start().await;
    let mut a =
        Ws::connect(&server.ws_url(&format!("?token={}", token("alice", Role::Agent, &[])))).await;
    a.recv_type("authenticated").await;
    let mut b = Ws::connect(&server.ws_url("")).await;
    a.subscribe("lobby").await;
    b.subscribe("lobby").await;
    a.send(json!({"type":"chat","message":"Hello!\u{0007}","sender":"mallory"}))
        .await;
    for ws in [&mut a, &mut b] {
        let d = ws.recv().await;
        assert_eq!(d["type"], "chat");
        assert_eq!(d["channel"], "lobby");
        assert_eq!(d["data"]["message"], "Hello!");
        assert_eq!(d["data"]["sender"], "alice");
        assert!(d["data"]["timestamp"].as_str().unwrap().contains('T'));
    }
    let b_id = b.connection_id.clone();
    b.send(json!({"type":"chat","message":"anon here"})).await;
    assert_eq!(a.recv().await["data"]["sender"], b_id.as_str());
    b.recv().await;
    b.send(json!({"type":"chat","message":"  \u{0000} "})).await;
    assert_eq!(b.recv().await["code"], "bad_request");
    b.send(json!({"type":"chat","message":"x".repeat(2001)}))
        .await;
    assert_eq!(b.recv().await["code"], "bad_request");
}

#[tokio::test]
async fn presence_lists_members() {
    let server = TestServer::start().await;
    let mut a =
        Ws::connect(&server.ws_url(&format!("?token={}", token("alice", Role::Agent, &[])))).await;
    a.recv_type("authenticated").await;
    let mut b = Ws::connect(&server.ws_url("")).await;
    a.subscribe("room:7").await;
    b.subscribe("room:7").await;
    b.send(json!({"type":"presence","channel":"room:7","ref":1}))
        .await;
    let p = b.recv().await;
    assert_eq!(p["type"], "presence");
    let mut members: Vec<Value> = p["members"].as_array().unwrap().clone();
    members.sort_by_key(|m| m["user"].is_null());
    assert_eq!(members.len(), 2);
    assert_eq!(
        members[0],
        json!({"user":"alice","connectionId":a.connection_id})
    );
    assert_eq!(
        members[1],
        json!({"user":null,"connectionId":b.connection_id})
    );
}

#[tokio::test]
async fn query_token_failures_close_with_the_right_code() {
    let server = TestServer::start().await;
    let cases = [
        ("malformed", "garbage".to_owned(), 4002, "Invalid token"),
        (
            "wrong key",
            token_with(
                "another-secret-of-good-length",
                "x",
                Role::Agent,
                &[],
                now() + 60,
            ),
            4002,
            "Invalid token",
        ),
        ("alg none", alg_none_token(), 4002, "Invalid token"),
        (
            "expired",
            token_with(SECRET, "x", Role::Agent, &[], now() - 120),
            4004,
            "Token expired",
        ),
    ];
    for (name, tok, code, message) in cases {
        let mut ws = Ws::connect(&server.ws_url(&format!("?token={tok}"))).await;
        let e = ws.recv().await;
        assert_eq!(e, json!({"type":"auth_error","message":message}), "{name}");
        assert_eq!(ws.close_code().await, code, "{name}");
    }
}

#[tokio::test]
async fn auth_message_upgrades_or_closes() {
    let server = TestServer::start().await;
    // Anonymous cannot read a city; after `auth` with a token that allows it, it can.
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.send(json!({"type":"subscribe","channel":"city:nairobi"}))
        .await;
    assert_eq!(ws.recv().await["code"], "forbidden");
    ws.send(json!({"type":"auth","token":token("bob", Role::Agent, &["city:*"]),"ref":1}))
        .await;
    assert_eq!(
        ws.recv().await,
        json!({"type":"authenticated","user":"bob","ref":1})
    );
    ws.subscribe("city:nairobi").await;
    assert_eq!(ws.recv().await["type"], "initial_data");
    // A channel the token does not grant is forbidden.
    ws.send(json!({"type":"subscribe","channel":"user:someone"}))
        .await;
    assert_eq!(ws.recv().await["code"], "forbidden");

    let mut bad = Ws::connect(&server.ws_url("")).await;
    bad.send(json!({"type":"auth","token":"nope"})).await;
    assert_eq!(bad.recv().await["type"], "auth_error");
    assert_eq!(bad.close_code().await, 4002);

    let mut expired = Ws::connect(&server.ws_url("")).await;
    expired
        .send(json!({"type":"auth","token":token_with(SECRET, "x", Role::Agent, &[], now() - 100)}))
        .await;
    assert_eq!(expired.recv().await["message"], "Token expired");
    assert_eq!(expired.close_code().await, 4004);

    let mut empty = Ws::connect(&server.ws_url("")).await;
    empty.send(json!({"type":"auth","token":""})).await;
    assert_eq!(empty.recv().await["message"], "Authentication required");
    assert_eq!(empty.close_code().await, 4001);
}

#[tokio::test]
async fn anonymous_refused_when_configured() {
    let server = TestServer::start_with(|c| c.auth.allow_anonymous = false).await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    assert_eq!(ws.recv().await["message"], "Authentication required");
    assert_eq!(ws.close_code().await, 4001);
    let mut ok = Ws::connect(&server.ws_url(&format!("?token={}", agent()))).await;
    ok.recv_type("authenticated").await;
    ok.subscribe("missions").await;
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let server = TestServer::start_with(|c| c.limits.max_message_bytes = 1024).await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    let big = json!({"type":"chat","message":"x".repeat(2000)}).to_string();
    ws.send_text(&big).await;
    assert_eq!(ws.close_code().await, 1009);
    // Far above the limit too.
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.send_text(&"y".repeat(1024 * 1024)).await;
    assert_eq!(ws.close_code().await, 1009);
}

#[tokio::test]
async fn persistent_garbage_closes_with_4010() {
    let server = TestServer::start().await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    for _ in 0..10 {
        ws.send_text("garbage").await;
    }
    assert_eq!(ws.close_code().await, 4010);
    let errors = ws
        .seen
        .iter()
        .filter(|t| t.contains("invalid_json"))
        .count();
    assert!(
        errors >= 9,
        "each bad message was answered before the close: {errors}"
    );
}

#[tokio::test]
async fn origin_allow_list_at_the_handshake() {
    let server = TestServer::start().await;
    let err = Ws::connect_raw(&server.ws_url(""), Some("http://evil.example"))
        .await
        .err()
        .expect("rejected");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), 403),
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        Ws::connect_raw(&server.ws_url(""), Some("http://localhost:3000"))
            .await
            .is_ok()
    );
    assert!(Ws::connect_raw(&server.ws_url(""), None).await.is_ok());
}

#[tokio::test]
async fn recovery_with_since_is_exact_then_live() {
    let server = TestServer::start().await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    let sub = ws.subscribe("missions:2").await;
    let epoch = sub["epoch"].as_str().unwrap().to_owned();
    put_mission(&server, 2, Some(&hq()), json!({"location":"A"})).await;
    let first = ws.recv().await;
    let since = first["offset"].as_u64().unwrap();
    drop(ws);

    for loc in ["B", "C", "D", "E", "F"] {
        assert_eq!(
            put_mission(&server, 2, Some(&hq()), json!({"location":loc}))
                .await
                .status(),
            200
        );
    }
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.send(
        json!({"type":"subscribe","channel":"missions:2","since":{"offset":since,"epoch":epoch}}),
    )
    .await;
    let s = ws.recv().await;
    assert_eq!(s["type"], "subscribed");
    assert_eq!(s["recovered"], true);
    assert_eq!(s["offset"].as_u64().unwrap(), since + 5);
    let mut got = Vec::new();
    for _ in 0..5 {
        let d = ws.recv().await;
        got.push((
            d["offset"].as_u64().unwrap(),
            d["data"]["location"].as_str().unwrap().to_owned(),
        ));
    }
    let want: Vec<_> = (1..=5)
        .map(|i| since + i)
        .zip(["B", "C", "D", "E", "F"].map(String::from))
        .collect();
    assert_eq!(got, want);
    put_mission(&server, 2, Some(&hq()), json!({"location":"G"})).await;
    let live = ws.recv().await;
    assert_eq!(live["offset"].as_u64().unwrap(), since + 6);

    // A bogus epoch is told plainly that history is gone.
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.send(
        json!({"type":"subscribe","channel":"missions:2","since":{"offset":1,"epoch":"bogus"}}),
    )
    .await;
    let s = ws.recv().await;
    assert_eq!(s["recovered"], false);
    assert_eq!(s["epoch"], epoch.as_str());
    ws.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn shutdown_closes_websockets_with_1012() {
    let mut server = TestServer::start_with(|c| c.shutdown.grace_ms = 3000).await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.subscribe("missions").await;
    let started = std::time::Instant::now();
    let done = server.stop();
    assert_eq!(ws.close_code().await, 1012);
    let result = tokio::time::timeout(Duration::from_secs(5), done)
        .await
        .expect("server stopped in time");
    assert!(result.unwrap().is_ok());
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn heartbeat_timeout_terminates_silent_clients() {
    let server = TestServer::start_with(|c| {
        c.heartbeat.interval_ms = 100;
        c.heartbeat.timeout_ms = 300;
    })
    .await;
    // tungstenite answers pings only while the socket is read; a client that never reads is
    // silent, and the server must drop it.
    let ws = Ws::connect(&server.ws_url("")).await;
    let mut watcher = Ws::connect(&server.ws_url("")).await;
    watcher.subscribe("room:hb").await;
    let mut silent = ws;
    silent.subscribe("room:hb").await;
    // The watcher keeps reading (and so answers the server's pings) while the other is silent.
    for _ in 0..9 {
        watcher.send(json!({"type":"ping"})).await;
        watcher.recv_type("pong").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watcher
        .send(json!({"type":"presence","channel":"room:hb"}))
        .await;
    let p = watcher.recv_type("presence").await;
    assert_eq!(
        p["members"].as_array().unwrap().len(),
        1,
        "silent client cleaned up: {p}"
    );
}
