//! Presence (SPEC §2): members per channel with `{user, connectionId}`, and `user_joined` /
//! `user_left` notices to the other members where the namespace enables `join_leave`, across
//! transports, cleaned up when a connection dies.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use common::sio::Sio;
use common::*;
use serde_json::json;
use switchboard_core::auth::Role;

async fn with_join_leave() -> TestServer {
    TestServer::start_with(|c| {
        if let Some(room) = c.namespaces.get_mut("room") {
            room.join_leave = true;
        }
    })
    .await
}

async fn member(server: &TestServer, user: &str) -> Ws {
    let mut ws =
        Ws::connect(&server.ws_url(&format!("?token={}", token(user, Role::Agent, &[])))).await;
    ws.recv_type("authenticated").await;
    ws
}

#[tokio::test]
async fn joins_and_leaves_are_announced_to_the_others() {
    let server = with_join_leave().await;
    let mut alice = member(&server, "alice").await;
    alice.subscribe("room:p").await;
    let mut bob = member(&server, "bob").await;
    bob.subscribe("room:p").await;

    let joined = alice.recv().await;
    assert_eq!(joined["type"], "user_joined");
    assert_eq!(joined["channel"], "room:p");
    assert_eq!(
        joined["data"],
        json!({"user":"bob","connectionId":bob.connection_id})
    );
    bob.expect_silence(Duration::from_millis(100)).await; // not told about itself

    // An explicit unsubscribe is a leave.
    bob.send(json!({"type":"unsubscribe","channel":"room:p"}))
        .await;
    bob.recv_type("unsubscribed").await;
    let left = alice.recv().await;
    assert_eq!(left["type"], "user_left");
    assert_eq!(left["data"]["connectionId"], bob.connection_id.as_str());

    // A connection that dies is a leave too, and disappears from the presence set.
    let mut carol = member(&server, "carol").await;
    carol.subscribe("room:p").await;
    assert_eq!(alice.recv().await["data"]["user"], "carol");
    let carol_id = carol.connection_id.clone();
    drop(carol);
    let left = alice.recv().await;
    assert_eq!(
        (left["type"].as_str(), left["data"]["connectionId"].as_str()),
        (Some("user_left"), Some(carol_id.as_str()))
    );
    alice
        .send(json!({"type":"presence","channel":"room:p"}))
        .await;
    let p = alice.recv_type("presence").await;
    assert_eq!(
        p["members"],
        json!([{"user":"alice","connectionId":alice.connection_id}])
    );
}

#[tokio::test]
async fn a_socket_io_member_is_announced_to_native_members() {
    let server = with_join_leave().await;
    let mut alice = member(&server, "alice").await;
    alice.subscribe("room:mixed").await;
    let mut sio = Sio::connect(
        server.addr,
        Some(json!({"token": token("sam", Role::Agent, &[])})),
        None,
    )
    .await
    .unwrap();
    sio.emit("join-room", json!("mixed")).await;
    let joined = alice.recv_type("user_joined").await;
    assert_eq!(joined["data"], json!({"user":"sam","connectionId":sio.sid}));
    let sid = sio.sid.clone();
    drop(sio);
    let left = alice.recv_type("user_left").await;
    assert_eq!(left["data"]["connectionId"], sid.as_str());
}

#[tokio::test]
async fn no_notices_where_join_leave_is_off() {
    let server = TestServer::start().await; // default: presence on, join_leave off
    let mut alice = member(&server, "alice").await;
    alice.subscribe("room:quiet").await;
    let mut bob = member(&server, "bob").await;
    bob.subscribe("room:quiet").await;
    let members = async |alice: &mut Ws| {
        alice
            .send(json!({"type":"presence","channel":"room:quiet"}))
            .await;
        alice.recv().await["members"].as_array().unwrap().len()
    };
    assert_eq!(members(&mut alice).await, 2);
    drop(bob);
    // Wait until the server has processed bob's departure (the presence set shrinks): a
    // leave notice, had there been one, was sent by then. Every frame alice gets on the way
    // is a presence answer (`recv` would show anything else to the assertion below).
    let deadline = std::time::Instant::now() + WAIT;
    while members(&mut alice).await != 1 {
        assert!(std::time::Instant::now() < deadline, "bob never left");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        alice.seen.iter().all(|f| !f.contains("user_left")),
        "{:?}",
        alice.seen
    );
    alice.expect_silence(Duration::from_millis(100)).await;
}
