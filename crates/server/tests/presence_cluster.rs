//! Cluster-wide presence (SPEC §10): members connected to any node are listed by every node,
//! join notices cross nodes, and the members of a node killed without saying goodbye
//! (SIGKILL) disappear within `presence.ttl_ms` — never a ghost, never a duplicate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;
#[path = "common/services.rs"]
#[allow(dead_code)] // shared helper; this file does not use every part of it
mod services;

use std::time::{Duration, Instant};

use common::bin::{Binary, command, spawn};
use common::{SECRET, TestServer, Ws, get_json, token};
use serde_json::json;
use services::{Services, services_or_skip};
use switchboard_core::auth::Role;

const TTL_MS: u64 = 1_500;

async fn in_process(s: &Services) -> TestServer {
    TestServer::start_with(|c| {
        s.configure(c);
        c.presence.ttl_ms = TTL_MS;
    })
    .await
}

async fn binary(s: &Services, dir: &std::path::Path) -> Binary {
    let mut cmd = command(dir);
    s.node_env(&mut cmd, SECRET, services::REDIS_URL);
    cmd.env("SWITCHBOARD_PRESENCE__TTL_MS", TTL_MS.to_string());
    spawn(cmd).await
}

async fn member(addr: std::net::SocketAddr, user: &str) -> Ws {
    let t = token(user, Role::Agent, &[]);
    let mut ws = Ws::connect(&format!("ws://{addr}/ws?token={t}")).await;
    ws.recv_type("authenticated").await;
    ws.subscribe("room:c").await;
    ws
}

async fn users(ws: &mut Ws) -> Vec<String> {
    ws.send(json!({"type":"presence","channel":"room:c"})).await;
    let reply = ws.recv_type("presence").await;
    let mut users: Vec<String> = reply["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"].as_str().unwrap().to_owned())
        .collect();
    users.sort();
    users
}

#[tokio::test]
async fn every_node_lists_every_member_and_a_killed_node_leaves_no_ghosts() {
    let Some(s) = services_or_skip("cluster_presence").await else {
        return;
    };
    let a = in_process(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let b = binary(&s, dir.path()).await;
    let mut alice = member(a.addr, "alice").await;
    let mut bob = member(b.addr, "bob").await;
    let carol = member(b.addr, "carol").await;

    // Node A lists the members of node B, and B those of A, once each.
    assert_eq!(users(&mut alice).await, ["alice", "bob", "carol"]);
    assert_eq!(users(&mut bob).await, ["alice", "bob", "carol"]);
    // The HTTP presence API (one-way transports) answers the same.
    let dave = token("dave", Role::Agent, &[]);
    let (_, http) = get_json(&a.http("/api/client/presence/room:c"), Some(&dave)).await;
    assert_eq!(http["members"].as_array().unwrap().len(), 3, "{http}");

    // A goodbye is immediate: carol leaves and is gone everywhere.
    drop(carol);
    let deadline = Instant::now() + Duration::from_secs(5);
    while users(&mut alice).await.len() != 2 {
        assert!(Instant::now() < deadline, "carol is still listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Node B dies without saying goodbye: bob is listed until B's liveness expires, then never.
    let killed = Instant::now();
    b.kill_and_output().await;
    drop(bob);
    let deadline = killed + Duration::from_millis(TTL_MS) + Duration::from_secs(3);
    loop {
        let now = users(&mut alice).await;
        if now == ["alice"] {
            break;
        }
        assert_eq!(now, ["alice", "bob"], "a ghost or a duplicate");
        assert!(Instant::now() < deadline, "bob still listed after the TTL");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone_after = killed.elapsed();
    assert!(
        gone_after <= Duration::from_millis(TTL_MS) + Duration::from_secs(3),
        "{gone_after:?}"
    );
    s.clean().await;
}
