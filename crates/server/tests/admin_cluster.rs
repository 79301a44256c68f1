//! The admin API across the cluster (SPEC §8): two nodes sharing Redis and PostgreSQL; the
//! node asked answers for both (stats, presence, a disconnect that closes the user's
//! connections on the other node with 4011), and a node that stops answering is reported
//! within the one-second deadline instead of being waited for.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;
#[path = "common/services.rs"]
#[allow(dead_code)] // shared helper; this file does not use every part of it
mod services;

use std::time::{Duration, Instant};

use common::{TestServer, Ws, get_json, token};
use serde_json::{Value, json};
use services::{Services, services_or_skip};
use switchboard_core::auth::Role;

async fn node(s: &Services) -> TestServer {
    TestServer::start_with(|c| s.configure(c)).await
}

fn admin() -> String {
    token("root", Role::Admin, &[])
}

async fn admin_get(server: &TestServer, path: &str) -> Value {
    let (status, body) = get_json(&server.http(path), Some(&admin())).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn stats(server: &TestServer) -> Value {
    admin_get(server, "/api/admin/stats").await
}

/// Stats once both nodes answer (a node joins the registry at its first heartbeat).
async fn stats_of_two(server: &TestServer) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = stats(server).await;
        let answered = s["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["error"].is_null())
            .count();
        if answered == 2 {
            return s;
        }
        assert!(Instant::now() < deadline, "two nodes never answered: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn member(server: &TestServer, user: &str, channel: &str) -> Ws {
    let t = token(user, Role::Agent, &[]);
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={t}"))).await;
    ws.recv_type("authenticated").await;
    ws.subscribe(channel).await;
    ws
}

#[tokio::test]
async fn one_node_answers_for_the_cluster_and_reports_a_silent_one() {
    let Some(s) = services_or_skip("admin_one_node_answers_for_the_cluster").await else {
        return;
    };
    let a = node(&s).await;
    let mut b = node(&s).await;
    let mut alice_a = member(&a, "alice", "room:9").await;
    let mut alice_b = member(&b, "alice", "room:9").await;
    let mut bob_b = member(&b, "bob", "room:9").await;

    let both = stats_of_two(&a).await;
    let nodes = both["nodes"].as_array().unwrap();
    let ws: Vec<u64> = nodes
        .iter()
        .map(|n| n["connections"]["websocket"].as_u64().unwrap())
        .collect();
    let mut sorted = ws.clone();
    sorted.sort();
    assert_eq!(sorted, [1, 2], "{both}");
    // room:9, user:alice and user:bob, and the three conn:<id>: room:9 and user:alice are on
    // both nodes and count once (a sum over nodes would say 8).
    assert_eq!(both["channels"], 6, "distinct channels: {both}");

    let presence = admin_get(&a, "/api/admin/presence/room:9").await;
    let mut users: Vec<&str> = presence["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"].as_str().unwrap())
        .collect();
    users.sort();
    assert_eq!(users, ["alice", "alice", "bob"], "{presence}");

    let channels = admin_get(&a, "/api/admin/channels?prefix=room:").await;
    assert_eq!(
        channels[0]["subscribers"], 3,
        "summed over nodes: {channels}"
    );

    let res = reqwest::Client::new()
        .post(a.http("/api/admin/disconnect"))
        .bearer_auth(admin())
        .json(&json!({"user":"alice"}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["disconnected"], 2, "{body}");
    assert_eq!(alice_a.close_code().await, 4011);
    assert_eq!(alice_b.close_code().await, 4011, "closed on the other node");
    bob_b.send(json!({"type":"ping"})).await;
    bob_b.recv_type("pong").await;

    // B stops without leaving the registry: it is reported, and A does not wait for it.
    let b_id = nodes
        .iter()
        .find(|n| n["connections"]["websocket"] == 2)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(bob_b);
    b.stop().await.unwrap().unwrap();
    let started = Instant::now();
    let after = stats(&a).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "waited {took:?} for a stopped node"
    );
    let silent = after["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == b_id.as_str())
        .unwrap_or_else(|| panic!("the stopped node is not listed: {after}"));
    assert!(
        silent["error"].as_str().unwrap().contains("no answer"),
        "{after}"
    );
    s.clean().await;
}
