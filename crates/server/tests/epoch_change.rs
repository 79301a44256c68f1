//! A live epoch change reaches the subscribers that stay connected (found by the chaos test,
//! tests/chaos.rs): when the Redis broker restarts without persistence, every channel starts a
//! new epoch at offset 1. A WebSocket or SSE subscriber connected through the restart must get
//! the new epoch's publications — not have them dropped as "already seen" because their
//! offsets are at or below the last offset of the old epoch — and an SSE stream's `id:` must
//! name the new epoch, so that resuming from it is exact.
//!
//! One in-process node (SQLite store) on a `redis-server` of the test's own; skipped with
//! `SKIPPED …` when `redis-server` is not installed (failed under
//! `SWITCHBOARD_REQUIRE_SERVICES=1`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;
#[path = "common/own_redis.rs"]
#[allow(dead_code)] // shared helper; this file does not use every part of it
mod own_redis;

use std::time::Duration;

use common::feeds::Sse;
use common::{TestServer, Ws, hq};
use own_redis::OwnRedis;
use serde_json::{Value, json};
use switchboard_core::cursor::Cursor;

async fn publish(server: &TestServer, n: u64) -> Value {
    let res = reqwest::Client::new()
        .post(server.http("/api/publish"))
        .bearer_auth(hq())
        .json(&json!({"channel": "missions", "event": "tick", "data": {"n": n}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The next `tick` delivery on the WebSocket.
async fn next_tick(ws: &mut Ws) -> Value {
    loop {
        let v = ws.recv().await;
        if v["type"] == "tick" {
            return v;
        }
    }
}

/// The next `tick` event on the SSE stream.
async fn next_sse_tick(sse: &mut Sse) -> common::feeds::SseEvent {
    loop {
        let e = sse.next_event().await;
        if e.event.as_deref() == Some("tick") {
            return e;
        }
    }
}

#[tokio::test]
async fn subscribers_connected_through_a_redis_restart_get_the_new_epoch() {
    let Some(mut redis) = OwnRedis::start_or_skip("epoch_change").await else {
        return;
    };
    let url = redis.url();
    let server = TestServer::start_with(|c| {
        c.broker.url = url;
        c.broker.prefix = "epoch-change".into();
    })
    .await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.subscribe("missions").await;
    let mut sse = Sse::open(&server, "channels=missions", &[]).await;
    for n in 1..=5 {
        publish(&server, n).await;
    }
    for n in 1..=5 {
        assert_eq!(next_tick(&mut ws).await["data"]["n"], n);
        assert_eq!(next_sse_tick(&mut sse).await.json()["data"]["n"], n);
    }

    redis.kill();
    redis.restart(false).await;
    // Wait until the node's pub/sub feed is back, so the next publication is delivered live.
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !client
        .get(server.http("/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(tokio::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = publish(&server, 6).await;
    assert_eq!(after["offset"], 1, "a new epoch starts at 1: {after}");
    let epoch = after["epoch"].as_str().unwrap().to_owned();

    let got = next_tick(&mut ws).await;
    assert_eq!(
        (
            got["data"]["n"].as_u64(),
            got["offset"].as_u64(),
            got["epoch"].as_str()
        ),
        (Some(6), Some(1), Some(epoch.as_str())),
        "the WebSocket subscriber's next delivery"
    );
    let event = next_sse_tick(&mut sse).await;
    assert_eq!(event.json()["data"]["n"], 6);
    let id = Cursor::decode(event.id.as_deref().unwrap()).unwrap();
    let (_, position) = id.iter().next().unwrap();
    assert_eq!(
        (position.offset, position.epoch.as_str()),
        (1, epoch.as_str()),
        "the SSE id after the new epoch's first publication"
    );
}
