//! Native WebSocket recovery under fire (SPEC §2): reconnecting with `since` while a publisher
//! runs flat out yields every offset exactly once, in order; a position older than the kept
//! history is answered `recovered:false`, never a silent gap.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn reconnecting_subscriber_under_load_sees_every_offset_once() {
    const N: u64 = 400;
    let server = TestServer::start_with(|c| {
        // The test publishes as fast as it can from one client.
        c.limits.client_messages_per_minute = 100_000;
        if let Some(room) = c.namespaces.get_mut("room") {
            room.history_size = 10_000;
        }
    })
    .await;
    let channel = "room:ws-race";
    // The first subscriber is in place before anything is published.
    let mut ws1 = Ws::connect(&server.ws_url("")).await;
    let s = ws1.subscribe(channel).await;
    assert_eq!(s["offset"], 0);
    let mut first = Some((ws1, s["epoch"].as_str().unwrap().to_owned()));
    let mut publisher = Ws::connect(&server.ws_url("")).await;
    let publishing = tokio::spawn(async move {
        for i in 0..N {
            publisher
                .send(json!({"type":"publish","channel":channel,"event":"tick","data":i}))
                .await;
            if i % 25 == 0 {
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }
        for _ in 0..N {
            publisher.recv_type("published").await;
        }
    });

    let mut seen: Vec<u64> = Vec::new();
    let mut since: Option<(u64, String)> = None;
    let mut reconnects = 0;
    while (seen.len() as u64) < N {
        let (mut ws, epoch) = match first.take() {
            Some(first) => first,
            None => {
                let mut ws = Ws::connect(&server.ws_url("")).await;
                let (offset, epoch) = since.clone().expect("a position after the first round");
                ws.send(json!({"type":"subscribe","channel":channel,
                    "since":{"offset":offset,"epoch":epoch}}))
                    .await;
                let s = ws.recv_type("subscribed").await;
                assert_eq!(s["recovered"], true, "{s}");
                (ws, epoch)
            }
        };
        // Read a handful, then drop the connection mid-stream.
        for _ in 0..(7 + reconnects % 13) {
            if seen.len() as u64 == N {
                break;
            }
            let d = ws.recv_type("tick").await;
            let offset = d["offset"].as_u64().unwrap();
            seen.push(offset);
            since = Some((offset, epoch.clone()));
        }
        reconnects += 1;
    }
    publishing.await.unwrap();
    assert_eq!(seen, (1..=N).collect::<Vec<_>>());
    assert!(reconnects > 10, "exercised reconnects: {reconnects}");
}

#[tokio::test]
async fn a_position_older_than_the_history_is_not_recovered() {
    let server = TestServer::start_with(|c| {
        // The test publishes as fast as it can from one client.
        c.limits.client_messages_per_minute = 100_000;
        if let Some(room) = c.namespaces.get_mut("room") {
            room.history_size = 3;
        }
    })
    .await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    let s = ws.subscribe("room:short").await;
    let epoch = s["epoch"].as_str().unwrap().to_owned();
    for i in 0..5 {
        ws.send(json!({"type":"publish","channel":"room:short","event":"e","data":i}))
            .await;
        ws.recv_type("published").await;
    }
    drop(ws);
    let mut ws = Ws::connect(&server.ws_url("")).await;
    // Offsets 3..5 are kept; from 1, offset 2 is gone.
    ws.send(json!({"type":"subscribe","channel":"room:short","since":{"offset":1,"epoch":epoch}}))
        .await;
    let s = ws.recv().await;
    assert_eq!(
        (s["recovered"].clone(), s["offset"].clone()),
        (json!(false), json!(5))
    );
    ws.expect_silence(Duration::from_millis(100)).await;
    // From 2, everything missed (3, 4, 5) is still there.
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.send(json!({"type":"subscribe","channel":"room:short","since":{"offset":2,"epoch":epoch}}))
        .await;
    assert_eq!(ws.recv().await["recovered"], true);
    let got: Vec<_> = [ws.recv().await, ws.recv().await, ws.recv().await]
        .iter()
        .map(|d| d["data"].as_u64().unwrap())
        .collect();
    assert_eq!(got, [2, 3, 4]);
}
