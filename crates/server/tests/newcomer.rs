//! What tripped a newcomer in the first ten minutes (issue 18), each pinned in-process: native
//! chat reaches its sender, SSE and long-poll city subscribers get `initial_data` first like
//! WebSocket ones, Socket.IO transient notices carry no position, unknown routes and oversized
//! bodies answer JSON, a heartbeat timeout closes with its catalogue code, and the logs say
//! who connected, who left with which code, and which origin was refused by which setting.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use common::feeds::{Sse, poll};
use common::logs::LogCapture;
use common::sio::Sio;
use common::*;
use serde_json::{Value, json};
use switchboard_core::auth::Role;

#[tokio::test]
async fn native_chat_reaches_its_sender_without_a_subscribe() {
    let server = TestServer::start().await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.send(json!({"type":"chat","message":"Hello!"})).await;
    let line = ws.recv_type("chat").await;
    assert_eq!(line["channel"], "lobby");
    assert_eq!(line["data"]["message"], "Hello!");
    assert_eq!(line["data"]["sender"], json!(ws.connection_id));
    // Another connection that only sends hears the first one's next line too.
    let mut other = Ws::connect(&server.ws_url("")).await;
    other.send(json!({"type":"chat","message":"me too"})).await;
    assert_eq!(other.recv_type("chat").await["data"]["message"], "me too");
    ws.send(json!({"type":"chat","message":"again"})).await;
    assert_eq!(other.recv_type("chat").await["data"]["message"], "again");
}

async fn post_city(server: &TestServer, city: &str, metrics: Value) {
    let res = reqwest::Client::new()
        .post(server.http(&format!("/api/cities/{city}/data")))
        .bearer_auth(token("pipe", Role::Pipeline, &[]))
        .json(&json!({ "metrics": metrics }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn sse_and_poll_city_subscribers_get_initial_data_first() {
    let server = TestServer::start().await;
    post_city(&server, "nairobi", json!({"air_quality": 42})).await;
    let viewer = token("viewer", Role::Agent, &["city:*"]);

    let mut sse = Sse::open(
        &server,
        "channels=city:nairobi",
        &[("Authorization", &format!("Bearer {viewer}"))],
    )
    .await;
    let first = sse.next_event().await;
    assert_eq!(first.json()["type"], "connected", "{first:?}");
    let initial = sse.next_event().await;
    assert_eq!(
        initial.event.as_deref(),
        Some("initial_data"),
        "{initial:?}"
    );
    let body = initial.json();
    assert_eq!(body["channel"], "city:nairobi");
    assert_eq!(body["data"]["metrics"]["air_quality"], 42.0);
    // Then live updates, as on WebSocket.
    post_city(&server, "nairobi", json!({"air_quality": 43})).await;
    let update = sse.next_event().await;
    assert_eq!(update.event.as_deref(), Some("data_update"), "{update:?}");

    let (status, first_poll) = poll(
        &server,
        "channels=city:nairobi",
        &[("Authorization", &format!("Bearer {viewer}"))],
    )
    .await;
    assert_eq!(status, 200);
    let updates = first_poll["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1, "{first_poll}");
    assert_eq!(updates[0]["type"], "initial_data");
    assert_eq!(updates[0]["data"]["metrics"]["air_quality"], 43.0);
    // The next poll from that cursor does not repeat it.
    let cursor = first_poll["cursor"].as_str().unwrap();
    let (_, next) = poll(
        &server,
        &format!("channels=city:nairobi&cursor={cursor}&timeout=0"),
        &[("Authorization", &format!("Bearer {viewer}"))],
    )
    .await;
    assert_eq!(next["updates"], json!([]), "{next}");
}

#[tokio::test]
async fn socketio_transient_notices_carry_no_position() {
    let server = TestServer::start().await;
    let mut a = Sio::connect(server.addr, None, None).await.unwrap();
    let mut b = Sio::connect(server.addr, None, None).await.unwrap();
    a.recv_event("socket-id").await;
    b.recv_event("socket-id").await;
    b.emit_with_ack(1, "join-room", json!("t1")).await;
    b.recv_ack(1).await;
    a.emit_with_ack(2, "join-room", json!("t1")).await;
    let (joined, meta) = b.recv_publication("user-joined").await;
    assert_eq!(joined, json!(a.sid));
    assert_eq!(meta, Value::Null, "user-joined must not carry a position");
    a.emit("typing", json!({"roomId":"t1"})).await;
    let (typing, meta) = b.recv_publication("user-typing").await;
    assert_eq!(typing, json!(a.sid));
    assert_eq!(meta, Value::Null, "user-typing must not carry a position");
    // Stored publications still do.
    a.emit("chat-message", json!({"roomId":"t1","message":"hi"}))
        .await;
    let (_, meta) = b.recv_publication("new-message").await;
    assert_eq!(meta["channel"], "room:t1");
    assert_eq!(meta["offset"], 1);
}

#[tokio::test]
async fn unknown_routes_and_oversized_bodies_answer_json() {
    let server = TestServer::start_with(|c| c.limits.max_message_bytes = 1024).await;
    let res = reqwest::get(server.http("/no/such/route")).await.unwrap();
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.expect("a JSON 404");
    assert!(body["error"].is_string(), "{body}");

    let res = reqwest::Client::new()
        .put(server.http("/missions/1"))
        .bearer_auth(hq())
        .json(&json!({"location": "x".repeat(2000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.expect("a JSON 413");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("limits.max_message_bytes"),
        "{body}"
    );
}

#[tokio::test]
async fn a_heartbeat_timeout_closes_with_1001() {
    let server = TestServer::start_with(|c| {
        c.heartbeat.interval_ms = 100;
        c.heartbeat.timeout_ms = 300;
    })
    .await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    // The silence is the test: nothing is read (so no ping is answered) past the timeout.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(ws.close_code().await, 1001);
}

#[tokio::test]
async fn logs_name_connections_their_close_codes_and_refused_origins() {
    let logs = LogCapture::start();
    let server = TestServer::start().await;
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={}", hq()))).await;
    ws.recv_type("authenticated").await;
    logs.wait_for("connection opened", 1).await;
    drop(ws);
    logs.wait_for("connection closed", 1).await;
    let text = logs.text();
    let opened = text
        .lines()
        .find(|l| l.contains("connection opened"))
        .unwrap();
    assert!(opened.contains("INFO"), "{opened}");
    assert!(opened.contains("transport=\"websocket\""), "{opened}");
    assert!(opened.contains("user=\"hq-1\""), "{opened}");
    let closed = text
        .lines()
        .find(|l| l.contains("connection closed"))
        .unwrap();
    assert!(
        closed.contains("INFO") && closed.contains("code=1000"),
        "{closed}"
    );

    let refused = Ws::connect_raw(&server.ws_url(""), Some("http://evil.example")).await;
    assert!(refused.is_err());
    logs.wait_for("security.allowed_origins", 1).await;
    let line = logs
        .text()
        .lines()
        .find(|l| l.contains("security.allowed_origins"))
        .unwrap()
        .to_owned();
    assert!(line.contains("http://evil.example"), "{line}");
}
