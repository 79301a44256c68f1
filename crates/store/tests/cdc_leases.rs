//! Change capture exactly once through a crash (issue 16, SPEC §10), at the store level: a
//! change leased by a node that stops before acknowledging it is leased again by another node
//! once the lease runs out — never before, never twice after an acknowledgement — and a row's
//! later change waits while its earlier one is leased elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::{Duration, Instant};

use sqlx::Connection;
use switchboard_store::{CaptureConfig, ChangeEvent, ChangeTable, Store};
use tokio::sync::mpsc::Receiver;

const LEASE: Duration = Duration::from_millis(800);

fn config() -> CaptureConfig {
    CaptureConfig { lease: LEASE }
}

async fn next(rx: &mut Receiver<ChangeEvent>, within: Duration) -> Option<ChangeEvent> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

async fn foreign(schema: &common::PgSchema, sql: &str) {
    let mut other = sqlx::PgConnection::connect_with(&schema.options())
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut other)
        .await
        .unwrap();
    other.close().await.unwrap();
}

#[tokio::test]
async fn a_change_left_unacknowledged_is_taken_over_after_the_lease_and_only_then() {
    let Some(schema) = common::pg_schema("cdc_lease_takeover").await else {
        return;
    };
    let a = schema.store().await;
    let mut rx_a = a.capture_changes(config()).unwrap();
    foreign(
        &schema,
        "UPDATE missions SET location = 'Lisbon' WHERE id = 1",
    )
    .await;
    let taken = next(&mut rx_a, Duration::from_secs(3))
        .await
        .expect("node A takes the change");
    let taken_at = Instant::now();
    assert_eq!(
        (taken.table, taken.key.as_str()),
        (ChangeTable::Missions, "1")
    );
    assert!(taken.in_lease());
    // Node A dies before publishing: its capture stops, the entry stays leased to it.
    drop(rx_a);
    drop(a);

    let b = schema.store().await;
    let mut rx_b = b.capture_changes(config()).unwrap();
    let again = next(&mut rx_b, LEASE * 4)
        .await
        .expect("node B takes the change over once A's lease ran out");
    let waited = taken_at.elapsed();
    assert!(
        waited >= LEASE.mul_f64(0.9),
        "taken over after {waited:?}, before the lease of {LEASE:?} ran out"
    );
    assert_eq!(again.ids, taken.ids, "the same log entry");
    assert_eq!(
        again.once_key(),
        taken.once_key(),
        "so the same idempotency key"
    );

    // Acknowledged, it is gone for good: nothing comes back after another lease.
    b.ack_changes(&again.ids).await.unwrap();
    let c = schema.store().await;
    let mut rx_c = c.capture_changes(config()).unwrap();
    for rx in [&mut rx_b, &mut rx_c] {
        if let Some(extra) = next(rx, LEASE * 2).await {
            panic!("an acknowledged change came back: {extra:?}");
        }
    }
    schema.drop().await;
}

#[tokio::test]
async fn a_rows_later_change_waits_while_its_earlier_one_is_leased_elsewhere() {
    let Some(schema) = common::pg_schema("cdc_lease_row_order").await else {
        return;
    };
    let a = schema.store().await;
    let mut rx_a = a.capture_changes(config()).unwrap();
    foreign(
        &schema,
        "UPDATE missions SET location = 'Oslo' WHERE id = 2",
    )
    .await;
    let first = next(&mut rx_a, Duration::from_secs(3)).await.unwrap();
    // A holds row 2's first change (not acknowledged yet) and stops taking new ones.
    drop(rx_a);

    let b = schema.store().await;
    let mut rx_b = b.capture_changes(config()).unwrap();
    foreign(
        &schema,
        "UPDATE missions SET location = 'Bergen' WHERE id = 2; \
                      UPDATE missions SET location = 'Paris' WHERE id = 3",
    )
    .await;
    // Row 3 comes out at once; row 2's second change not while A's lease lasts.
    let other = next(&mut rx_b, Duration::from_millis(600)).await.unwrap();
    assert_eq!(other.key, "3");
    b.ack_changes(&other.ids).await.unwrap();
    assert!(
        next(&mut rx_b, Duration::from_millis(300)).await.is_none(),
        "row 2's later change must wait for its earlier one"
    );
    // A acknowledges (it published after all): row 2's later change follows promptly.
    a.ack_changes(&first.ids).await.unwrap();
    let later = next(&mut rx_b, Duration::from_millis(600))
        .await
        .expect("row 2's later change once the earlier one is done");
    assert_eq!(later.key, "2");
    assert!(later.ids.iter().all(|id| !first.ids.contains(id)));
    schema.drop().await;
}
