//! Rate limits (SPEC §6): client messages per user (or IP) as a token bucket, `rate_limited`
//! over the limit, 4008 for a client that keeps going; REST writes answered 429 + Retry-After.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use common::*;
use serde_json::json;
use switchboard_core::auth::Role;

#[tokio::test]
async fn burst_of_150_gets_100_through_then_rate_limited_then_4008() {
    let server = TestServer::start().await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    for i in 0..150 {
        ws.send(json!({"type":"ping","ref":i})).await;
    }
    let (mut pongs, mut limited) = (0, 0);
    for i in 0..150 {
        let v = ws.recv().await;
        assert_eq!(v["ref"], i, "replies come in order, each echoing its ref");
        match v["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => {
                assert_eq!(v["code"], "rate_limited");
                limited += 1;
            }
            _ => panic!("unexpected {v}"),
        }
    }
    // The bucket refills at 100/min (one token per 600 ms) during the burst: allow one extra.
    assert!((100..=101).contains(&pongs), "pongs {pongs}");
    assert_eq!(pongs + limited, 150);
    // Still open after the burst. Keeping going gets the connection closed.
    for _ in 0..60 {
        if ws.socket_send_ok(json!({"type":"ping"})).await.is_err() {
            break;
        }
    }
    assert_eq!(ws.close_code().await, 4008);
}

#[tokio::test]
async fn the_bucket_is_per_user_across_connections() {
    let server = TestServer::start_with(|c| c.limits.client_messages_per_minute = 10).await;
    let t = token("alice", Role::Agent, &[]);
    let mut a = Ws::connect(&server.ws_url(&format!("?token={t}"))).await;
    let mut b = Ws::connect(&server.ws_url(&format!("?token={t}"))).await;
    a.recv_type("authenticated").await;
    b.recv_type("authenticated").await;
    let mut ok = 0;
    for ws in [&mut a, &mut b] {
        for _ in 0..6 {
            ws.send(json!({"type":"ping"})).await;
            if ws.recv().await["type"] == "pong" {
                ok += 1;
            }
        }
    }
    assert!((10..=11).contains(&ok), "one shared bucket of 10: {ok}");
    // Another user is unaffected.
    let mut c =
        Ws::connect(&server.ws_url(&format!("?token={}", token("bob", Role::Agent, &[])))).await;
    c.recv_type("authenticated").await;
    c.send(json!({"type":"ping"})).await;
    assert_eq!(c.recv().await["type"], "pong");
}

#[tokio::test]
async fn rest_writes_get_429_with_retry_after() {
    let server = TestServer::start_with(|c| c.limits.rest_writes_per_minute = 5).await;
    for _ in 0..5 {
        let res = put_mission(&server, 1, Some(&hq()), json!({"status":"active"})).await;
        assert_eq!(res.status(), 200);
    }
    let res = put_mission(&server, 1, Some(&hq()), json!({"status":"active"})).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=13).contains(&retry), "retry-after {retry}");
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "Too many requests; retry later"
    );
    // Reads are not limited.
    let res = reqwest::get(server.http("/missions/1")).await.unwrap();
    assert_eq!(res.status(), 200);
    // Another user has their own bucket.
    let res = put_mission(
        &server,
        1,
        Some(&token("hq-2", Role::Hq, &[])),
        json!({"status":"active"}),
    )
    .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn socket_io_events_share_the_bucket_and_a_flood_is_disconnected() {
    use common::sio::Sio;
    let server = TestServer::start_with(|c| c.limits.client_messages_per_minute = 10).await;
    let t = token("sio-user", Role::Agent, &[]);
    let mut sio = Sio::connect(server.addr, Some(json!({"token": t})), None)
        .await
        .unwrap();
    let mut limited = 0;
    for id in 0..15u64 {
        sio.emit_with_ack(id, "subscribe", json!(format!("room:r{id}")))
            .await;
        let ack = sio.recv_ack(id).await;
        if ack["code"] == "rate_limited" {
            limited += 1;
        } else {
            assert_eq!(ack["ok"], true, "{ack}");
        }
    }
    assert!(
        (4..=5).contains(&limited),
        "10 allowed, the rest refused: {limited}"
    );
    // The same user's native connection draws from the same bucket.
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={t}"))).await;
    ws.recv_type("authenticated").await;
    ws.send(json!({"type":"ping"})).await;
    assert_eq!(ws.recv().await["code"], "rate_limited");
    // Keeping going gets the socket disconnected with the reason.
    for i in 0..10 {
        sio.emit("typing", json!({"roomId": format!("x{i}")})).await;
    }
    let events = sio.until_disconnect().await;
    let reason = events
        .iter()
        .find(|(e, _)| e == "error")
        .map(|(_, d)| d.clone())
        .expect("error event");
    assert_eq!(reason["code"], 4008);
}
