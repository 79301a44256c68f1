//! Redis or PostgreSQL going down under a running node, as docs/scaling.md ("When something
//! fails") describes it: `/readyz` answers 503 naming what is down, writes and new
//! subscriptions fail loudly instead of hanging, what does not need the lost service keeps
//! working, and everything recovers when the service is back. The services are reached through
//! a TCP proxy the test cuts; the shared Redis and PostgreSQL are never touched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;
#[path = "common/services.rs"]
#[allow(dead_code)] // shared helper; this file does not use every part of it
mod services;

use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{TestServer, WAIT, Ws, hq, put_mission};
use serde_json::{Value, json};
use services::services_or_skip;

/// `/readyz` status and body.
async fn readyz(server: &TestServer) -> (u16, Value) {
    let res = reqwest::get(server.http("/readyz")).await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Polls `/readyz` (at most 15 s) until it answers `status`.
async fn readyz_becomes(server: &TestServer, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (now, body) = readyz(server).await;
        if now == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz stayed {now} ({body}), waited for {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn redis_down_turns_not_ready_fails_writes_and_subscribes_then_recovers() {
    let Some(s) = services_or_skip("redis_down_turns_not_ready").await else {
        return;
    };
    let redis = Proxy::start("127.0.0.1:6379").await;
    let pg = Proxy::start("127.0.0.1:5432").await;
    let server = TestServer::start_with(|c| s.configure_through(c, redis.addr, pg.addr)).await;
    assert_eq!(
        readyz(&server).await,
        (200, json!({"ready":true,"store":true,"broker":true}))
    );
    let mut watcher = Ws::connect(&server.ws_url("")).await;
    watcher.subscribe("missions:1").await;

    redis.cut();
    let body = readyz_becomes(&server, 503).await;
    assert_eq!(body, json!({"ready":false,"store":true,"broker":false}));
    // A write fails loudly, and soon: the row may be saved, but it cannot be published.
    let started = Instant::now();
    let res = put_mission(&server, 1, Some(&hq()), json!({"location":"Nowhere"})).await;
    assert!(
        res.status().is_server_error(),
        "PUT while Redis is down: {}",
        res.status()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    // A new subscription is refused with a retry hint; the connection stays usable.
    let mut late = Ws::connect(&server.ws_url("")).await;
    late.send(json!({"type":"subscribe","channel":"room:outage","ref":1}))
        .await;
    // (Its personal `conn:` channel may be refused first, unasked: skip to the answer.)
    let refused = loop {
        let v = late.recv_type("error").await;
        if v["ref"] == 1 {
            break v;
        }
    };
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("temporarily unavailable"),
        "{refused}"
    );
    // REST reads do not need Redis.
    let res = reqwest::get(server.http("/missions/2")).await.unwrap();
    assert_eq!(res.status(), 200);

    redis.heal();
    readyz_becomes(&server, 200).await;
    // Writes publish again, and the subscriber from before the outage gets them.
    let deadline = Instant::now() + WAIT;
    loop {
        let res = put_mission(&server, 1, Some(&hq()), json!({"location":"Back"})).await;
        if res.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "writes never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = watcher.recv_type("mission-update").await;
    assert_eq!(got["data"]["location"], "Back");
    late.subscribe("room:outage").await;
    s.clean().await;
}

#[tokio::test]
async fn postgres_down_turns_not_ready_fails_rest_and_keeps_chat_going() {
    let Some(s) = services_or_skip("postgres_down_turns_not_ready").await else {
        return;
    };
    let redis = Proxy::start("127.0.0.1:6379").await;
    let pg = Proxy::start("127.0.0.1:5432").await;
    let server = TestServer::start_with(|c| s.configure_through(c, redis.addr, pg.addr)).await;
    assert_eq!(readyz(&server).await.0, 200);
    let mut a = Ws::connect(&server.ws_url("")).await;
    a.subscribe("lobby").await;
    let mut b = Ws::connect(&server.ws_url("")).await;
    b.subscribe("lobby").await;

    pg.cut();
    let body = readyz_becomes(&server, 503).await;
    assert_eq!(body, json!({"ready":false,"store":false,"broker":true}));
    let started = Instant::now();
    let res = reqwest::get(server.http("/missions/1")).await.unwrap();
    assert!(res.status().is_server_error(), "GET: {}", res.status());
    let res = put_mission(&server, 1, Some(&hq()), json!({"location":"Nowhere"})).await;
    assert!(res.status().is_server_error(), "PUT: {}", res.status());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    // Chat does not touch the store: it keeps working.
    a.send(json!({"type":"chat","message":"still here"})).await;
    let got = b.recv_type("chat").await;
    assert_eq!(got["data"]["message"], "still here");

    pg.heal();
    readyz_becomes(&server, 200).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let res = reqwest::get(server.http("/missions/1")).await.unwrap();
        if res.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "reads never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.clean().await;
}
