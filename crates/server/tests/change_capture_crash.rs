//! Change capture exactly once through a crash (issue 16, SPEC §10): a change taken by a node
//! that dies before publishing it is published by another node once its lease
//! (`cdc.lease_ms`) runs out — not before, and once; and a stream of foreign writes survives
//! one of two nodes being SIGKILLed mid-stream with every change delivered exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;
#[path = "common/services.rs"]
#[allow(dead_code)] // shared helper; this file does not use every part of it
mod services;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::bin::{Binary, command, spawn};
use common::{SECRET, TestServer, Ws};
use services::{Services, services_or_skip};

const LEASE_MS: u64 = 1_000;

async fn exec(s: &Services, sql: &str) {
    let mut w = s.foreign_writer().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut w)
        .await
        .unwrap();
}

async fn log_len(s: &Services) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.change_log",
        s.schema
    )))
    .fetch_one(&s.pg)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_change_leased_by_a_dead_node_is_published_after_the_lease_once() {
    let Some(s) = services_or_skip("cdc_dead_node_lease").await else {
        return;
    };
    // A first node runs the migrations, then stops: what follows happens with no node up.
    let mut first = TestServer::start_with(|c| s.configure(c)).await;
    drop(first.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A foreign write, taken by a node that then died: the entry is leased to it for 1.5 s.
    exec(
        &s,
        "UPDATE missions SET location = 'Orphaned' WHERE id = 4; \
         UPDATE change_log SET claimed_by = 'dead-node', \
           lease_until = clock_timestamp() + interval '1500 milliseconds'",
    )
    .await;
    let leased_at = Instant::now();
    let b = TestServer::start_with(|c| {
        s.configure(c);
        c.cdc.lease_ms = LEASE_MS;
    })
    .await;
    let mut ws = Ws::connect(&b.ws_url("")).await;
    ws.subscribe("missions:4").await;
    let got = tokio::time::timeout(Duration::from_secs(6), ws.recv_type("mission-update"))
        .await
        .expect("the orphaned change is published by the surviving node");
    let after = leased_at.elapsed();
    assert_eq!(got["data"]["location"], "Orphaned");
    assert!(
        after >= Duration::from_millis(1_200),
        "published after {after:?}, while the dead node's lease still ran"
    );
    // Once: nothing more, and the log is empty.
    ws.expect_silence(Duration::from_millis(1_500)).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while log_len(&s).await != 0 {
        assert!(
            Instant::now() < deadline,
            "the published change was never acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.clean().await;
}

async fn binary(s: &Services, dir: &std::path::Path) -> Binary {
    let mut cmd = command(dir);
    s.node_env(&mut cmd, SECRET, services::REDIS_URL);
    cmd.env("SWITCHBOARD_CDC__LEASE_MS", LEASE_MS.to_string());
    spawn(cmd).await
}

// Before leases, 19–34 of 100 such changes never arrived when the node holding them died.
#[tokio::test]
async fn foreign_writes_survive_a_node_killed_mid_stream_exactly_once() {
    let Some(s) = services_or_skip("cdc_node_killed_mid_stream").await else {
        return;
    };
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = binary(&s, dir_a.path()).await;
    let b = binary(&s, dir_b.path()).await;
    let mut ws = Ws::connect(&format!("ws://{}/ws", b.addr)).await;
    ws.subscribe("missions").await;

    // 100 new missions, one every 15 ms, from a foreign writer; node A is killed halfway.
    const N: i64 = 100;
    let mut writer = s.foreign_writer().await;
    let mut a = Some(a);
    for i in 0..N {
        let id = 10_000 + i;
        sqlx::query(
            "INSERT INTO missions (id, codename, status, location, updated_at) \
             VALUES ($1, $2, 'planned', 'Stream', '2026-01-01T00:00:00Z')",
        )
        .bind(id)
        .bind(format!("Stream {i}"))
        .execute(&mut writer)
        .await
        .unwrap();
        if i == N / 2 {
            a.take().unwrap().signal("KILL");
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    drop(a);

    // Every mission arrives, each once: those node A held are published by B after A's lease.
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_millis(LEASE_MS * 4) + Duration::from_secs(5);
    while seen.len() < N as usize {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(frame) = tokio::time::timeout(left, ws.recv_type("mission-update")).await else {
            let missing: Vec<i64> = (0..N)
                .map(|i| 10_000 + i)
                .filter(|id| !seen.contains_key(id))
                .collect();
            panic!(
                "{} of {N} changes never arrived: {missing:?}",
                missing.len()
            );
        };
        let id = frame["data"]["id"].as_i64().unwrap();
        *seen.entry(id).or_default() += 1;
    }
    // Nothing twice, now or later.
    let settle = Instant::now() + Duration::from_millis(LEASE_MS * 2);
    while let Ok(frame) =
        tokio::time::timeout(settle.saturating_duration_since(Instant::now()), ws.recv()).await
    {
        if frame["type"] == "mission-update" {
            let id = frame["data"]["id"].as_i64().unwrap();
            *seen.entry(id).or_default() += 1;
        }
    }
    let twice: Vec<(&i64, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(seen.len(), N as usize, "only these arrived: {seen:?}");
    s.clean().await;
}
