//! Two nodes in one process sharing Redis (broker) and PostgreSQL (store): cross-node
//! delivery, recovery on another node, and change capture published exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;
#[path = "common/services.rs"]
#[allow(dead_code)] // shared helper; this file does not use every part of it
mod services;

use std::time::Duration;

use common::{TestServer, Ws, hq, put_mission};
use serde_json::json;
use services::{Services, services_or_skip};

async fn node(s: &Services) -> TestServer {
    TestServer::start_with(|c| s.configure(c)).await
}

async fn subscribed(server: &TestServer, channel: &str) -> (Ws, serde_json::Value) {
    let mut ws = Ws::connect(&server.ws_url("")).await;
    let sub = ws.subscribe(channel).await;
    (ws, sub)
}

#[tokio::test]
async fn publication_on_one_node_reaches_the_other_and_recovers_there() {
    let Some(s) = services_or_skip("publication_on_one_node_reaches_the_other").await else {
        return;
    };
    let a = node(&s).await;
    let b = node(&s).await;
    let (mut on_a, sub) = subscribed(&a, "missions").await;
    let epoch = sub["epoch"].as_str().unwrap().to_owned();
    let start = sub["offset"].as_u64().unwrap();

    let res = put_mission(
        &b,
        1,
        Some(&hq()),
        json!({"status":"active","location":"Rome"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let got = on_a.recv_type("mission-update").await;
    assert_eq!(got["data"]["location"], "Rome");
    assert_eq!(got["offset"].as_u64().unwrap(), start + 1);
    assert!(got["data"].get("handler_notes").is_none());

    // Another publication while the client is away, then it resumes on node B.
    put_mission(&a, 1, Some(&hq()), json!({"location":"Milan"})).await;
    let mut on_b = Ws::connect(&b.ws_url("")).await;
    on_b.send(
        json!({"type":"subscribe","channel":"missions","since":{"offset":start + 1,"epoch":epoch}}),
    )
    .await;
    let sub = on_b.recv_type("subscribed").await;
    assert_eq!(sub["recovered"], true, "{sub}");
    let missed = on_b.recv_type("mission-update").await;
    assert_eq!(
        (
            missed["offset"].as_u64().unwrap(),
            missed["data"]["location"].as_str()
        ),
        (start + 2, Some("Milan"))
    );
    s.clean().await;
}

#[tokio::test]
async fn a_foreign_update_is_published_once_and_an_api_write_not_twice() {
    let Some(s) = services_or_skip("a_foreign_update_is_published_once").await else {
        return;
    };
    let a = node(&s).await;
    let b = node(&s).await;
    let (mut on_a, _) = subscribed(&a, "missions:3").await;
    let (mut on_b, _) = subscribed(&b, "missions:3").await;
    // No wait for the change listeners: a change written before a node listens waits in
    // change_log and is claimed by the node's first claim, which comes right after LISTEN.

    let mut writer = s.foreign_writer().await;
    sqlx::query(
        "UPDATE missions SET status = 'compromised', handler_notes = 'burned' WHERE id = 3",
    )
    .execute(&mut writer)
    .await
    .unwrap();
    for ws in [&mut on_a, &mut on_b] {
        let got = ws.recv_type("mission-update").await;
        assert_eq!(got["data"]["status"], "compromised");
        assert_eq!(got["data"]["codename"], "Iron Lantern");
        assert!(got["data"].get("handler_notes").is_none(), "{got}");
        // Exactly once: no second publication from the other node.
        ws.expect_silence(Duration::from_millis(800)).await;
    }

    // An API write is published by the API only, not again by change capture.
    let res = put_mission(&a, 3, Some(&hq()), json!({"status":"aborted"})).await;
    assert_eq!(res.status(), 200);
    for ws in [&mut on_a, &mut on_b] {
        let got = ws.recv_type("mission-update").await;
        assert_eq!(got["data"]["status"], "aborted");
        ws.expect_silence(Duration::from_millis(800)).await;
    }
    for ws in [&on_a, &on_b] {
        assert!(
            ws.seen.iter().all(|f| !f.contains("burned")),
            "classified data leaked"
        );
    }
    s.clean().await;
}
