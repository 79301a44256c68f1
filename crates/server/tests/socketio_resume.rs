//! Nothing missed on Socket.IO (issue 5): every publication carries its position as an extra
//! argument, and a socket that reconnects with `auth.since` (channels joined on connect) or
//! `subscribe {channel, since}` receives exactly what it missed, then live ones.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use common::sio::Sio;
use common::*;
use serde_json::{Value, json};

async fn put_location(server: &TestServer, loc: &str) {
    assert_eq!(
        put_mission(server, 2, Some(&hq()), json!({"location": loc}))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn reconnect_with_auth_since_gets_exactly_the_missed_then_live() {
    let server = TestServer::start().await;
    let mut sio = Sio::connect(server.addr, None, None).await.unwrap();
    put_location(&server, "A").await;
    let (dto, meta) = sio.recv_publication("mission-update").await;
    assert_eq!(dto["location"], "A");
    assert_eq!(meta["channel"], "missions");
    let last = meta["offset"].as_u64().unwrap();
    let epoch = meta["epoch"].as_str().unwrap().to_owned();
    drop(sio);

    for loc in ["B", "C", "D", "E", "F"] {
        put_location(&server, loc).await;
    }
    let since = json!({"since": {"missions": {"offset": last, "epoch": epoch}}});
    let mut sio = Sio::connect(server.addr, Some(since), None).await.unwrap();
    let (subscribed, _) = sio.recv_publication("subscribed").await;
    assert_eq!(subscribed["channel"], "missions");
    assert_eq!(subscribed["recovered"], true);
    assert_eq!(subscribed["offset"].as_u64(), Some(last + 5));
    let mut got = Vec::new();
    for _ in 0..5 {
        let (dto, meta) = sio.recv_publication("mission-update").await;
        got.push((
            meta["offset"].as_u64().unwrap(),
            dto["location"].as_str().unwrap().to_owned(),
        ));
    }
    let want: Vec<(u64, String)> = (1..=5)
        .map(|i| last + i)
        .zip(["B", "C", "D", "E", "F"].map(String::from))
        .collect();
    assert_eq!(got, want);
    put_location(&server, "G").await;
    let (dto, meta) = sio.recv_publication("mission-update").await;
    assert_eq!(
        (dto["location"].as_str(), meta["offset"].as_u64()),
        (Some("G"), Some(last + 6))
    );
}

#[tokio::test]
async fn a_bogus_epoch_is_told_plainly_and_nothing_is_replayed() {
    let server = TestServer::start().await;
    put_location(&server, "A").await;
    let since = json!({"since": {"missions": {"offset": 1, "epoch": "bogus"}}});
    let mut sio = Sio::connect(server.addr, Some(since), None).await.unwrap();
    let (subscribed, _) = sio.recv_publication("subscribed").await;
    assert_eq!(subscribed["recovered"], false);
    assert!(subscribed["epoch"].as_str().unwrap() != "bogus");
    // Nothing old arrives; the next live update does.
    put_location(&server, "Z").await;
    let (dto, _) = sio.recv_publication("mission-update").await;
    assert_eq!(dto["location"], "Z");
}

#[tokio::test]
async fn explicit_subscribe_with_since_on_another_channel() {
    let server = TestServer::start().await;
    let mut sio = Sio::connect(server.addr, None, None).await.unwrap();
    sio.emit_with_ack(1, "subscribe", json!("missions:2")).await;
    let ack = sio.recv_ack(1).await;
    let (start, epoch) = (ack["offset"].as_u64().unwrap(), ack["epoch"].clone());
    drop(sio);
    for loc in ["B", "C", "D"] {
        put_location(&server, loc).await;
    }
    let mut sio = Sio::connect(server.addr, None, None).await.unwrap();
    sio.emit_with_ack(
        2,
        "subscribe",
        json!({"channel":"missions:2","since":{"offset":start,"epoch":epoch}}),
    )
    .await;
    let ack: Value = sio.recv_ack(2).await;
    assert_eq!(ack["recovered"], true);
    let mut offsets = Vec::new();
    while offsets.len() < 3 {
        let (_, meta) = sio.recv_publication("mission-update").await;
        if meta["channel"] == "missions:2" {
            offsets.push(meta["offset"].as_u64().unwrap());
        }
    }
    assert_eq!(offsets, [start + 1, start + 2, start + 3]);
    let quiet = tokio::time::timeout(
        Duration::from_millis(150),
        sio.recv_publication("mission-update"),
    )
    .await;
    assert!(quiet.is_err(), "nothing more: {quiet:?}");
}
