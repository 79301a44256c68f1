//! Change capture for SQLite: rows written by another program (the `sqlite3` CLI, a script)
//! come out like PostgreSQL's.
//!
//! The triggers of migration 0006 append to `change_log`; SQLite has no NOTIFY, so a task on a
//! connection of its own asks `PRAGMA data_version` every [`POLL_EVERY`]. That pragma changes
//! only when another connection committed — it reads a counter in shared memory, no page of
//! the database — so an idle server pays almost nothing, and a foreign write is published within
//! about that interval. On a change it reads the entries after the last one it forwarded.
//!
//! One process owns the file (the data directory's lock), so there are no leases to share: an
//! entry is deleted once published (`ack`), and one left unpublished — the publish failed, the
//! process died — is forwarded again after the lease interval or at the next start. A repeat
//! is harmless: its publication carries the same idempotency key.

use std::time::Duration;

use sqlx::sqlite::SqlitePool;
use sqlx::{Connection, SqliteConnection};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{CaptureConfig, ChangeEvent, ChangeId, ClaimedRow, merge};
use crate::StoreError;

/// How often the data version is read.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// How many entries one read takes.
const READ_BATCH: i64 = 100;
/// Bound of the queue towards the publisher; when full, entries wait in the table.
const QUEUE: usize = 256;

const READ: &str =
    "SELECT id, table_name, row_key FROM change_log WHERE id > $1 ORDER BY id LIMIT $2";
const ACK: &str = "DELETE FROM change_log WHERE id IN (SELECT value FROM json_each($1))";

/// Starts the capture task for the database `pool` opens; the receiver yields each change.
pub(crate) fn spawn(pool: SqlitePool, config: CaptureConfig) -> mpsc::Receiver<ChangeEvent> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(pool, config, tx));
    rx
}

/// Deletes the entries of published changes.
pub(crate) async fn ack(pool: &SqlitePool, ids: &[ChangeId]) -> Result<(), StoreError> {
    let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
    let json = serde_json::to_string(&ids)
        .map_err(|e| StoreError::Corrupt(format!("change ids not encodable: {e}")))?;
    sqlx::query(ACK).bind(json).execute(pool).await?;
    Ok(())
}

async fn run(pool: SqlitePool, config: CaptureConfig, tx: mpsc::Sender<ChangeEvent>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match watch(&pool, config, &tx).await {
            Ok(()) => return, // the receiver is gone: the server stopped
            Err(e) => {
                tracing::warn!(error = %e, "change capture interrupted; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn watch(
    pool: &SqlitePool,
    config: CaptureConfig,
    tx: &mpsc::Sender<ChangeEvent>,
) -> Result<(), StoreError> {
    // Its own connection: `data_version` counts commits by *other* connections, and the pool's
    // connections are the API's.
    let mut conn = SqliteConnection::connect_with(pool.connect_options().as_ref()).await?;
    tracing::info!("change capture watching the SQLite file");
    let mut last_version: Option<i64> = None;
    // Entries forwarded and not yet deleted are not read again until `rescan_at`.
    let mut forwarded_up_to = 0_i64;
    let mut rescan_at = Instant::now() + config.lease;
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if tx.is_closed() {
            return Ok(());
        }
        let version: i64 = sqlx::query_scalar("PRAGMA data_version")
            .fetch_one(&mut conn)
            .await?;
        let rescan = Instant::now() >= rescan_at;
        if last_version == Some(version) && !rescan {
            continue;
        }
        last_version = Some(version);
        if rescan {
            // Whatever is still in the log was not published: forward it again.
            forwarded_up_to = 0;
            rescan_at = Instant::now() + config.lease;
        }
        loop {
            let rows = sqlx::query_as::<_, ClaimedRow>(READ)
                .bind(forwarded_up_to)
                .bind(READ_BATCH)
                .fetch_all(&mut conn)
                .await?;
            let Some(last) = rows.iter().map(|r| r.id).max() else {
                break;
            };
            forwarded_up_to = last;
            let (events, unknown) = merge(rows, Instant::now() + config.lease);
            if !unknown.is_empty() {
                ack(pool, &unknown).await?;
            }
            for event in events {
                if tx.send(event).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}
