//! Change capture for PostgreSQL: turns rows changed outside the API into [`ChangeEvent`]s.
//!
//! The triggers of migration 0006 append to `change_log` and `NOTIFY switchboard_changes`.
//! Each node runs one task that listens, and on every notification (and every few seconds, in
//! case one was missed while reconnecting) claims pending entries with `DELETE … RETURNING …
//! SKIP LOCKED`: a deleted row is returned to exactly one node, so each change is published by
//! one node only. Entries written while no node ran wait in the table for the next start.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::mpsc;

use crate::StoreError;

/// The NOTIFY channel of the triggers.
const NOTIFY_CHANNEL: &str = "switchboard_changes";
/// How many entries one claim takes.
const CLAIM_BATCH: i64 = 100;
/// Bound of the queue towards the publisher; when full, entries wait in the table.
const QUEUE: usize = 256;
/// Safety-net poll interval.
const POLL_EVERY: Duration = Duration::from_secs(5);

/// Which table a captured change is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeTable {
    /// `missions`; the key is the mission id.
    Missions,
    /// `city_snapshots`; the key is the city id.
    CitySnapshots,
}

/// A row changed by a writer other than the API. It says which row, not what changed: the
/// publisher reads the row's current state (absent: deleted) and publishes its DTOs, so
/// classified columns never travel through NOTIFY or this queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// Which table the row is in, so the publisher knows which DTOs to make.
    pub table: ChangeTable,
    /// The row's primary key, as text because the two tables' keys differ in type.
    pub key: String,
}

/// A claimed `change_log` entry.
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    table_name: String,
    row_key: String,
}

/// Starts the capture task on `pool`; the receiver yields each claimed change once.
pub(crate) fn spawn(pool: PgPool) -> mpsc::Receiver<ChangeEvent> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(pool, tx));
    rx
}

async fn run(pool: PgPool, tx: mpsc::Sender<ChangeEvent>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match listen_and_claim(&pool, &tx).await {
            Ok(()) => return, // the receiver is gone: the server stopped
            Err(e) => {
                tracing::warn!(error = %e, "change capture interrupted; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn listen_and_claim(pool: &PgPool, tx: &mpsc::Sender<ChangeEvent>) -> Result<(), StoreError> {
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(pool)
        .await?;
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    tracing::info!(schema = %schema, "change capture listening");
    let mut poll = tokio::time::interval(POLL_EVERY);
    loop {
        // Claim first: catches up whatever was recorded before we listened.
        if !claim_all(pool, tx).await? {
            return Ok(());
        }
        tokio::select! {
            n = listener.recv() => {
                let n = n?;
                if n.payload() != schema {
                    // Another deployment (or test) in another schema of this database.
                    continue;
                }
            }
            _ = poll.tick() => {}
        }
    }
}

/// Claims and forwards pending entries until none is left. False when the receiver is gone.
async fn claim_all(pool: &PgPool, tx: &mpsc::Sender<ChangeEvent>) -> Result<bool, StoreError> {
    loop {
        // A stopped server has dropped the receiver: claiming now would delete entries
        // nobody publishes. Leave them for a node that runs.
        if tx.is_closed() {
            return Ok(false);
        }
        let rows = sqlx::query_as::<_, ClaimedRow>(
            "DELETE FROM change_log WHERE id IN \
             (SELECT id FROM change_log ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, table_name, row_key",
        )
        .bind(CLAIM_BATCH)
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            return Ok(true);
        }
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let table = match row.table_name.as_str() {
                "missions" => ChangeTable::Missions,
                "city_snapshots" => ChangeTable::CitySnapshots,
                other => {
                    tracing::warn!(table = other, "change for an unknown table ignored");
                    continue;
                }
            };
            claimed.push((
                row.id,
                ChangeEvent {
                    table,
                    key: row.row_key,
                },
            ));
        }
        claimed.sort_by_key(|(id, _)| *id);
        for (_, event) in claimed {
            if tx.send(event).await.is_err() {
                return Ok(false);
            }
        }
    }
}
