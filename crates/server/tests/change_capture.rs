//! Change capture beyond a foreign UPDATE (SPEC §7, docs/scaling.md): a foreign DELETE is
//! published as `mission-removed`, an INSERT as `mission-update`, a city snapshot written
//! outside the API as `data_update` plus its `alerts`; an entry whose NOTIFY never came is
//! still published (by the fallback sweep, or the next claim any notification triggers); and a change written while no node ran is published by
//! the next node to start.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;
#[path = "common/services.rs"]
#[allow(dead_code)] // shared helper; this file does not use every part of it
mod services;

use std::time::Duration;

use common::{TestServer, Ws, token};
use serde_json::{Value, json};
use services::{Services, services_or_skip};
use switchboard_core::auth::Role;

async fn node(s: &Services) -> TestServer {
    TestServer::start_with(|c| s.configure(c)).await
}

async fn exec(s: &Services, sql: &str) {
    let mut w = s.foreign_writer().await;
    // Simple-query protocol: several statements (a transaction) in one string.
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut w)
        .await
        .unwrap();
}

/// The next frame of type `kind`, waiting up to `within` (the sweep runs every 5 s).
async fn recv_within(ws: &mut Ws, kind: &str, within: Duration) -> Value {
    tokio::time::timeout(within, ws.recv_type(kind))
        .await
        .unwrap_or_else(|_| panic!("no {kind} within {within:?}"))
}

#[tokio::test]
async fn foreign_delete_insert_and_city_snapshots_are_published() {
    let Some(s) = services_or_skip("foreign_delete_insert_and_city_snapshots").await else {
        return;
    };
    let a = node(&s).await;
    let mut ws = Ws::connect(&a.ws_url("")).await;
    ws.subscribe("missions").await;
    let city = token("dash", Role::Agent, &["city:*"]);
    let mut dash = Ws::connect(&a.ws_url(&format!("?token={city}"))).await;
    dash.recv_type("authenticated").await;
    dash.subscribe("city:bergen").await;
    dash.recv_type("initial_data").await;

    exec(&s, "DELETE FROM missions WHERE id = 5").await;
    let removed = ws.recv_type("mission-removed").await;
    assert_eq!(
        (removed["channel"].as_str(), &removed["data"]),
        (Some("missions"), &json!({"id": 5}))
    );

    exec(
        &s,
        "INSERT INTO missions (id, codename, status, location, objective, handler_notes, updated_at) \
         VALUES (77, 'Foreign Owl', 'planned', 'Reykjavik', 'Listen', 'CLASSIFIED-77', '2026-01-01T00:00:00Z')",
    )
    .await;
    let inserted = ws.recv_type("mission-update").await;
    assert_eq!(
        inserted["data"],
        json!({"id":77,"codename":"Foreign Owl","status":"planned","location":"Reykjavik"})
    );

    exec(
        &s,
        r#"INSERT INTO city_snapshots (city_id, metrics, updated_at) VALUES ('bergen', '{"air_quality":180}', '2026-01-01T00:00:00Z')"#,
    )
    .await;
    let update = dash.recv_type("data_update").await;
    assert_eq!(update["channel"], "city:bergen");
    assert_eq!(update["data"]["metrics"], json!({"air_quality":180.0}));
    let alerts = dash.recv_type("alerts").await;
    let alert = &alerts["data"][0];
    assert_eq!(
        (alert["metric"].as_str(), alert["severity"].as_str()),
        (Some("air_quality"), Some("critical")),
        "{alerts}"
    );
    assert!(
        ws.seen
            .iter()
            .chain(dash.seen.iter())
            .all(|f| !f.contains("CLASSIFIED")),
        "classified data leaked"
    );
    s.clean().await;
}

#[tokio::test]
async fn a_change_whose_notify_was_missed_is_still_published() {
    let Some(s) = services_or_skip("a_change_whose_notify_was_missed").await else {
        return;
    };
    let a = node(&s).await;
    let mut ws = Ws::connect(&a.ws_url("")).await;
    ws.subscribe("missions:4").await;
    // The row changes as an API write would (no trigger, so no NOTIFY), and a change_log
    // entry is recorded by hand: no notification names it, so only a later claim (the periodic sweep) finds it.
    exec(
        &s,
        "BEGIN; SET LOCAL switchboard.origin = 'api'; \
         UPDATE missions SET location = 'Swept' WHERE id = 4; \
         INSERT INTO change_log (table_name, row_key) VALUES ('missions', '4'); COMMIT",
    )
    .await;
    let got = recv_within(&mut ws, "mission-update", Duration::from_secs(12)).await;
    assert_eq!(got["data"]["location"], "Swept");
    // Deleted once published (the acknowledgement follows the publication).
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {}.change_log",
            s.schema
        )))
        .fetch_one(&s.pg)
        .await
        .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the entry was never acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.clean().await;
}

#[tokio::test]
async fn a_change_made_while_no_node_ran_is_published_at_the_next_start() {
    let Some(s) = services_or_skip("a_change_made_while_no_node_ran").await else {
        return;
    };
    let mut a = node(&s).await;
    let mut ws = Ws::connect(&a.ws_url("")).await;
    let sub = ws.subscribe("missions:3").await;
    let since = json!({"offset": sub["offset"], "epoch": sub["epoch"]});
    drop(ws);
    tokio::time::timeout(Duration::from_secs(15), a.stop())
        .await
        .expect("node A stopped")
        .unwrap()
        .unwrap();

    // No node runs now.
    exec(&s, "UPDATE missions SET location = 'Backlog' WHERE id = 3").await;
    let pending: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}.change_log",
        s.schema
    )))
    .fetch_one(&s.pg)
    .await
    .unwrap();
    assert_eq!(pending, 1, "the change waits in change_log");

    let logs = common::logs::LogCapture::start();
    let b = node(&s).await;
    let mut ws = Ws::connect(&b.ws_url("")).await;
    ws.send(json!({"type":"subscribe","channel":"missions:3","since":since}))
        .await;
    let resumed = ws.recv_type("subscribed").await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    // Published by node B at start (recovered from history) or just after (live).
    let got = tokio::time::timeout(Duration::from_secs(12), ws.recv_type("mission-update"))
        .await
        .unwrap_or_else(|_| panic!("no update; frames: {:?}\n{}", ws.seen, logs.text()));
    assert_eq!(got["data"]["location"], "Backlog");
    s.clean().await;
}
