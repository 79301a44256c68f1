//! Change capture on PostgreSQL: rows changed outside the API come out once across nodes;
//! API writes do not come out at all.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use sqlx::Connection;
use switchboard_store::{
    CaptureConfig, ChangeEvent, ChangeTable, MissionPatch, MissionStatus, Store,
};
use tokio::sync::mpsc::Receiver;

/// Which rows events name, in order.
pub fn rows(events: &[ChangeEvent]) -> Vec<(ChangeTable, String)> {
    events.iter().map(|e| (e.table, e.key.clone())).collect()
}

/// The changes that come out of one receiver: waits (up to 12 s, the fallback sweep's reach)
/// for the first, then takes whatever follows within `quiet` of the previous one.
async fn drain(rx: &mut Receiver<ChangeEvent>, quiet: Duration) -> Vec<ChangeEvent> {
    let mut got = Vec::new();
    if let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(12), rx.recv()).await {
        got.push(e);
        while let Ok(Some(e)) = tokio::time::timeout(quiet, rx.recv()).await {
            got.push(e);
        }
    }
    got
}

/// Collects changes from both receivers until `want` have arrived (at most 12 s: the fallback
/// sweep runs every 5 s), then checks that nothing more comes for a while.
async fn collect(
    a: &mut Receiver<ChangeEvent>,
    b: &mut Receiver<ChangeEvent>,
    want: usize,
) -> Vec<ChangeEvent> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(12);
    while got.len() < want {
        let next = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                e = a.recv() => e,
                e = b.recv() => e,
            }
        })
        .await
        .unwrap_or_else(|_| panic!("only {} of {want} changes: {got:?}", got.len()));
        got.push(next.expect("capture stopped"));
    }
    // Exactly once: no node publishes any of them a second time.
    for rx in [a, b] {
        if let Ok(extra) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            panic!("a change came out twice or unasked: {extra:?} after {got:?}");
        }
    }
    got
}

#[tokio::test]
async fn foreign_writes_are_captured_once_and_api_writes_not_at_all() {
    let Some(schema) = common::pg_schema("foreign_writes_are_captured_once").await else {
        return;
    };
    // Two "nodes" sharing the database.
    let a = schema.store().await;
    let b = schema.store().await;
    let mut rx_a = a.capture_changes(CaptureConfig::default()).unwrap();
    let mut rx_b = b.capture_changes(CaptureConfig::default()).unwrap();
    // No wait for the listeners: a change recorded before a node listens is claimed by its
    // first claim, right after LISTEN.

    // A write through the API publishes itself: not captured.
    let patch = MissionPatch {
        status: Some(MissionStatus::Aborted),
        ..MissionPatch::default()
    };
    a.update_mission(2, &patch).await.unwrap().unwrap();

    // A foreign writer (psql, another service) on its own connection.
    let mut other = sqlx::PgConnection::connect_with(&schema.options())
        .await
        .unwrap();
    sqlx::query("UPDATE missions SET location = 'Prague' WHERE id = 1")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("INSERT INTO city_snapshots (city_id, metrics, updated_at) VALUES ('oslo', '{\"air_quality\":3}', 'now')")
        .execute(&mut other)
        .await
        .unwrap();

    let mut got = rows(&collect(&mut rx_a, &mut rx_b, 2).await);
    got.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(
        got,
        [
            (ChangeTable::Missions, "1".to_owned()),
            (ChangeTable::CitySnapshots, "oslo".to_owned()),
        ],
        "each foreign change exactly once across both nodes, the API write never"
    );
    drop((rx_a, rx_b));
    other.close().await.unwrap();
    schema.drop().await;
}

// The shared store body marks API writes through the PostgreSQL dialect; a write kind that
// skipped the mark would be captured and published twice. Every API write to a captured table
// is made here, then one foreign write, which must be the only change that comes out.
#[tokio::test]
async fn no_kind_of_api_write_is_captured() {
    let Some(schema) = common::pg_schema("no_kind_of_api_write_is_captured").await else {
        return;
    };
    let store = schema.store().await;
    let mut rx = store.capture_changes(CaptureConfig::default()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    common::every_api_write(&store).await;

    let mut other = sqlx::PgConnection::connect_with(&schema.options())
        .await
        .unwrap();
    sqlx::query("DELETE FROM missions WHERE id = 5")
        .execute(&mut other)
        .await
        .unwrap();

    assert_eq!(
        rows(&drain(&mut rx, Duration::from_millis(700)).await),
        [(ChangeTable::Missions, "5".to_owned())],
        "only the foreign delete is captured"
    );
    drop(rx);
    other.close().await.unwrap();
    schema.drop().await;
}
