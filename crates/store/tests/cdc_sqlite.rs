//! Change capture on SQLite (issue 16): rows another program writes to the file (here a
//! connection of the test's own, as the `sqlite3` CLI would be) come out as changes; the API's
//! own writes do not; an unacknowledged change comes out again after the lease, an
//! acknowledged one never.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use sqlx::{Connection, SqliteConnection};
use switchboard_store::{
    CaptureConfig, ChangeEvent, ChangeTable, MissionPatch, SqliteStore, Store,
};
use tokio::sync::mpsc::Receiver;

const LEASE: Duration = Duration::from_millis(700);

async fn next(rx: &mut Receiver<ChangeEvent>, within: Duration) -> Option<ChangeEvent> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

struct File {
    dir: std::path::PathBuf,
    url: String,
}

impl File {
    fn new(test: &str) -> File {
        let dir = std::env::temp_dir().join(format!(
            "sb-cdc-{test}-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("s.db").display());
        File { dir, url }
    }

    async fn foreign(&self, sql: &str) {
        let mut other = SqliteConnection::connect(&self.url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut other)
            .await
            .unwrap();
        other.close().await.unwrap();
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn foreign_writes_come_out_and_api_writes_do_not() {
    let file = File::new("foreign");
    let store = SqliteStore::open(&file.url).await.unwrap();
    store.migrate().await.unwrap();
    let mut rx = store
        .capture_changes(CaptureConfig { lease: LEASE })
        .unwrap();

    // Every kind of API write to a captured table: none comes out.
    let created = common::every_api_write(&store).await;
    assert!(
        next(&mut rx, Duration::from_millis(400)).await.is_none(),
        "an API write came out of change capture"
    );

    // Another program: an update, an insert and a delete, and a city snapshot.
    file.foreign(
        "UPDATE missions SET location = 'Prague' WHERE id = 1; \
         INSERT INTO missions (codename, status, location, updated_at) \
           VALUES ('Cli', 'planned', 'Nowhere', 'now'); \
         DELETE FROM missions WHERE id = 2; \
         INSERT INTO city_snapshots (city_id, metrics, updated_at) VALUES ('oslo', '{}', 'now')",
    )
    .await;
    let mut got = Vec::new();
    while got.len() < 4 {
        let e = next(&mut rx, Duration::from_secs(2))
            .await
            .unwrap_or_else(|| panic!("only {got:?}"));
        got.push((e.table, e.key.clone()));
        store.ack_changes(&e.ids).await.unwrap();
    }
    let new_id = (created + 1).to_string();
    assert_eq!(
        got,
        [
            (ChangeTable::Missions, "1".to_owned()),
            (ChangeTable::Missions, new_id),
            (ChangeTable::Missions, "2".to_owned()),
            (ChangeTable::CitySnapshots, "oslo".to_owned()),
        ]
    );
    // Acknowledged: nothing comes back after the lease.
    assert!(next(&mut rx, LEASE * 2).await.is_none());
}

#[tokio::test]
async fn an_unacknowledged_change_comes_out_again_and_survives_a_restart() {
    let file = File::new("redo");
    let store = SqliteStore::open(&file.url).await.unwrap();
    store.migrate().await.unwrap();
    let mut rx = store
        .capture_changes(CaptureConfig { lease: LEASE })
        .unwrap();
    // One transaction: both are there when capture reads.
    file.foreign(
        "BEGIN; UPDATE missions SET location = 'Riga' WHERE id = 3; \
                  UPDATE missions SET location = 'Vilnius' WHERE id = 3; COMMIT",
    )
    .await;
    let first = next(&mut rx, Duration::from_secs(2)).await.unwrap();
    assert_eq!(first.key, "3");
    assert_eq!(
        first.ids.len(),
        2,
        "two changes of one row, merged: {first:?}"
    );
    // Not acknowledged (the publish failed): it comes out again, with the same key.
    let again = next(&mut rx, LEASE * 3).await.expect("forwarded again");
    assert_eq!(again.once_key(), first.once_key());

    // The process dies before acknowledging: the next start publishes it.
    drop(rx);
    drop(store);
    let store = SqliteStore::open(&file.url).await.unwrap();
    store.migrate().await.unwrap();
    let mut rx = store
        .capture_changes(CaptureConfig { lease: LEASE })
        .unwrap();
    let after = next(&mut rx, Duration::from_secs(2))
        .await
        .expect("after the restart");
    assert_eq!(after.ids, first.ids);
    store.ack_changes(&after.ids).await.unwrap();
    assert!(next(&mut rx, LEASE * 2).await.is_none());
}

#[tokio::test]
async fn an_in_memory_database_has_nothing_to_capture() {
    let store = SqliteStore::open("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.capture_changes(CaptureConfig::default()).is_none());
    // Its API writes still work (they clean up after the triggers).
    store
        .update_mission(1, &MissionPatch::default())
        .await
        .unwrap()
        .unwrap();
}
