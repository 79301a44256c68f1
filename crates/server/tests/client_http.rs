//! The client API over HTTP (`/api/client/publish`, `/api/client/presence/{channel}`,
//! `/api/client/ack`): what SSE and long-poll clients use instead of WebSocket messages, with
//! exactly the WebSocket's permissions (docs/protocol.md, "The client API over HTTP").

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use common::*;
use serde_json::{Value, json};
use switchboard_core::auth::Role;

async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    tok: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, server.http(path));
    if let Some(t) = tok {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn publish(server: &TestServer, tok: Option<&str>, body: Value) -> (u16, Value) {
    call(
        server,
        reqwest::Method::POST,
        "/api/client/publish",
        tok,
        Some(body),
    )
    .await
}

/// Every request is judged as the same publish over WebSocket would be, for the same token.
#[tokio::test]
async fn publish_follows_the_websocket_rules() {
    let server = TestServer::start().await;
    let agent = token("alice", Role::Agent, &[]);
    let hq = hq();
    let cases: Vec<(Option<&str>, Value)> = vec![
        (
            None,
            json!({"channel":"room:7","event":"note","data":{"t":1}}),
        ),
        (
            Some(&agent),
            json!({"channel":"room:7","event":"note","data":{"t":2}}),
        ),
        // namespace without allow_publish
        (
            Some(&hq),
            json!({"channel":"missions","event":"note","data":1}),
        ),
        // reserved for the server, also for hq (unlike POST /api/publish)
        (
            Some(&hq),
            json!({"channel":"room:7","event":"new-message","data":1}),
        ),
        // wire-reserved
        (
            Some(&agent),
            json!({"channel":"room:7","event":"subscribed","data":1}),
        ),
        // bad event name
        (
            Some(&agent),
            json!({"channel":"room:7","event":"no spaces","data":1}),
        ),
        // a channel the token may not read
        (
            Some(&agent),
            json!({"channel":"user:bob","event":"note","data":1}),
        ),
    ];
    for (tok, body) in cases {
        let (status, answer) = publish(&server, tok, body.clone()).await;
        // The same request as a WebSocket message.
        let query = tok.map(|t| format!("?token={t}")).unwrap_or_default();
        let mut ws = Ws::connect(&server.ws_url(&query)).await;
        if tok.is_some() {
            ws.recv_type("authenticated").await;
        }
        let mut msg = body.clone();
        msg["type"] = json!("publish");
        ws.send(msg).await;
        let reply = ws.recv().await;
        match reply["type"].as_str() {
            Some("published") => {
                assert_eq!(status, 200, "{body}: {answer}");
                assert_eq!(answer["channel"], body["channel"]);
                assert_eq!(
                    answer["offset"].as_u64().unwrap() + 1,
                    reply["offset"].as_u64().unwrap()
                );
            }
            Some("error") => {
                let expected = match reply["code"].as_str() {
                    Some("forbidden") => 403,
                    _ => 422,
                };
                assert_eq!(status, expected, "{body}: {answer} vs {reply}");
                assert_eq!(answer["error"], reply["message"], "{body}");
            }
            other => panic!("unexpected reply {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_published_message_reaches_subscribers_and_bad_bodies_are_refused() {
    let server = TestServer::start().await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.subscribe("room:9").await;
    let (status, answer) = publish(
        &server,
        None,
        json!({"channel":"room:9","event":"note","data":{"text":"hi"}}),
    )
    .await;
    assert_eq!(status, 200);
    let delivery = ws.recv_type("note").await;
    assert_eq!(delivery["data"], json!({"text":"hi"}));
    assert_eq!(delivery["offset"], answer["offset"]);

    for bad in [
        json!({"channel":"room:9"}),
        json!({"channel":"room:9","event":"note","sender":"x"}),
        json!({"channel":"bad name","event":"note"}),
        json!([1]),
    ] {
        let (status, answer) = publish(&server, None, bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {answer}");
    }
    let (status, _) = publish(
        &server,
        Some("not-a-token"),
        json!({"channel":"room:9","event":"note"}),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn presence_lists_members_with_the_websocket_permissions() {
    let server = TestServer::start().await;
    let alice = token("alice", Role::Agent, &[]);
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={alice}"))).await;
    ws.recv_type("authenticated").await;
    ws.subscribe("room:p").await;

    let (status, answer) = call(
        &server,
        reqwest::Method::GET,
        "/api/client/presence/room:p",
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["channel"], "room:p");
    assert_eq!(
        answer["members"],
        json!([{"user":"alice","connectionId":ws.connection_id}])
    );
    // Off for the namespace: 404 as the WebSocket's not_found.
    let (status, answer) = call(
        &server,
        reqwest::Method::GET,
        "/api/client/presence/missions",
        None,
        None,
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(
        answer["error"],
        "Presence is not enabled for this namespace"
    );
    // Not readable: 403.
    let (status, _) = call(
        &server,
        reqwest::Method::GET,
        "/api/client/presence/user:alice",
        None,
        None,
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn ack_marks_only_the_callers_own_inbox() {
    let server = TestServer::start().await;
    let alice = token("alice", Role::Agent, &[]);
    for n in 1..=2 {
        let (status, _) = call(
            &server,
            reqwest::Method::POST,
            "/api/publish",
            Some(&hq()),
            Some(json!({"channel":"user:alice","event":"note","data":n})),
        )
        .await;
        assert_eq!(status, 200);
    }
    let ack = |tok: Option<String>, channel: &str, offset: u64| {
        let body = json!({"channel": channel, "offset": offset});
        let server = &server;
        async move {
            call(
                server,
                reqwest::Method::POST,
                "/api/client/ack",
                tok.as_deref(),
                Some(body),
            )
            .await
        }
    };
    assert_eq!(ack(None, "user:alice", 2).await.0, 403);
    assert_eq!(
        ack(Some(token("bob", Role::Agent, &[])), "user:alice", 2)
            .await
            .0,
        403
    );
    let (status, answer) = ack(Some(alice.clone()), "user:alice", 1).await;
    assert_eq!(status, 200, "{answer}");

    // A new connection of alice gets only what is still pending.
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={alice}"))).await;
    ws.recv_type("authenticated").await;
    let pending = ws.recv_type("note").await;
    assert_eq!(pending["offset"], 2);
    assert_eq!(pending["data"], 2);
}
