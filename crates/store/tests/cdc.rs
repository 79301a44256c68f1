//! Change capture on PostgreSQL: rows changed outside the API come out once across nodes;
//! API writes do not come out at all.

mod common;

use std::time::Duration;

use sqlx::Connection;
use switchboard_store::{ChangeEvent, ChangeTable, MissionPatch, MissionStatus, Store};
use tokio::sync::mpsc::Receiver;

async fn drain(rx: &mut Receiver<ChangeEvent>, wait: Duration) -> Vec<ChangeEvent> {
    let mut got = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(wait, rx.recv()).await {
        got.push(e);
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
    let mut rx_a = a.capture_changes().unwrap();
    let mut rx_b = b.capture_changes().unwrap();
    // Let both listeners start.
    tokio::time::sleep(Duration::from_millis(300)).await;

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

    let mut got = drain(&mut rx_a, Duration::from_millis(700)).await;
    got.extend(drain(&mut rx_b, Duration::from_millis(100)).await);
    got.sort_by(|x, y| x.key.cmp(&y.key));
    assert_eq!(
        got,
        [
            ChangeEvent {
                table: ChangeTable::Missions,
                key: "1".into()
            },
            ChangeEvent {
                table: ChangeTable::CitySnapshots,
                key: "oslo".into()
            },
        ],
        "each foreign change exactly once across both nodes, the API write never"
    );
    drop((rx_a, rx_b));
    other.close().await.unwrap();
    schema.drop().await;
}
