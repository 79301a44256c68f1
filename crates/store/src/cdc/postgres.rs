//! Change capture for PostgreSQL, shared by every node of a deployment.
//!
//! The triggers of migration 0006 append to `change_log` and `NOTIFY switchboard_changes`.
//! Each node runs one task that listens, and on every notification (and on a sweep, in case one
//! was missed while reconnecting, and when the earliest running lease ends) *leases* pending
//! entries: `UPDATE … SET claimed_by, lease_until … SKIP LOCKED` gives each entry to one node.
//! The node deletes an entry once it published it (`ack`); an entry whose lease ran out — its
//! node died or stalled — is leased again by whichever node sweeps next. Entries written while
//! no node ran wait in the table for the next start.
//!
//! Per row, order is kept across nodes: a node does not take an entry while an older entry of
//! the same row is leased to another node, so a row's later state is never published before an
//! earlier one by a different node.

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{CaptureConfig, ChangeEvent, ChangeId, ClaimedRow, merge};
use crate::StoreError;

/// The NOTIFY channel of the triggers.
const NOTIFY_CHANNEL: &str = "switchboard_changes";
/// How many entries one claim takes.
const CLAIM_BATCH: i64 = 100;
/// Bound of the queue towards the publisher; when full, entries wait in the table.
const QUEUE: usize = 256;
/// Longest wait between two sweeps.
const POLL_EVERY: Duration = Duration::from_secs(5);

/// Leases up to `$3` claimable entries to `$1` for `$2` ms: never leased, or leased and run
/// out; and no older entry of the same row leased to another node that is still running.
const CLAIM: &str = "UPDATE change_log SET claimed_by = $1, \
     lease_until = clock_timestamp() + $2 * interval '1 millisecond' \
     WHERE id IN (SELECT c.id FROM change_log c \
       WHERE (c.lease_until IS NULL OR c.lease_until < clock_timestamp()) \
       AND NOT EXISTS (SELECT 1 FROM change_log o WHERE o.table_name = c.table_name \
         AND o.row_key = c.row_key AND o.id < c.id AND o.claimed_by <> $1 \
         AND o.lease_until >= clock_timestamp()) \
       ORDER BY c.id LIMIT $3 FOR UPDATE SKIP LOCKED) \
     RETURNING id, table_name, row_key";

/// Milliseconds until the earliest lease still running ends (`NULL`: none). Only running
/// ones: an entry whose lease ended but which cannot be taken yet (an older entry of its row is
/// leased) waits for that older lease, which this query finds.
const NEXT_EXPIRY: &str = "SELECT CAST(EXTRACT(EPOCH FROM (min(lease_until) - clock_timestamp())) \
     * 1000 AS BIGINT) FROM change_log WHERE lease_until > clock_timestamp()";

/// Deletes published entries, only where this node still holds them: an entry another node
/// took over is that node's to delete once it published.
const ACK: &str = "DELETE FROM change_log WHERE id = ANY($1) AND claimed_by = $2";

/// Starts the capture task on `pool` for the claimant `me`; the receiver yields each leased
/// change (see the module doc).
pub(crate) fn spawn(
    pool: PgPool,
    me: String,
    config: CaptureConfig,
) -> mpsc::Receiver<ChangeEvent> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(pool, me, config, tx));
    rx
}

/// Announces that entries may be claimable now (a later entry of a row whose older entry was
/// just acknowledged waits for that), only when there are entries left.
const NOTIFY_IF_PENDING: &str = "SELECT pg_notify('switchboard_changes', current_schema()) \
     WHERE EXISTS (SELECT 1 FROM change_log)";

/// Deletes the entries of published changes.
pub(crate) async fn ack(pool: &PgPool, me: &str, ids: &[ChangeId]) -> Result<(), StoreError> {
    let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
    sqlx::query(ACK).bind(ids).bind(me).execute(pool).await?;
    sqlx::query(NOTIFY_IF_PENDING).execute(pool).await?;
    Ok(())
}

async fn run(pool: PgPool, me: String, config: CaptureConfig, tx: mpsc::Sender<ChangeEvent>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match listen_and_claim(&pool, &me, config, &tx).await {
            Ok(()) => return, // the receiver is gone: the server stopped
            Err(e) => {
                tracing::warn!(error = %e, "change capture interrupted; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn listen_and_claim(
    pool: &PgPool,
    me: &str,
    config: CaptureConfig,
    tx: &mpsc::Sender<ChangeEvent>,
) -> Result<(), StoreError> {
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(pool)
        .await?;
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    tracing::info!(schema = %schema, lease_ms = config.lease.as_millis(), "change capture listening");
    loop {
        // Claim first: catches up whatever was recorded before we listened.
        if !claim_all(pool, me, config, tx).await? {
            return Ok(());
        }
        let wait = next_sweep(pool).await?;
        tokio::select! {
            n = listener.recv() => {
                let n = n?;
                if n.payload() != schema {
                    // Another deployment (or test) in another schema of this database.
                    continue;
                }
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// How long until the next sweep: when the earliest running lease ends (plus a little, so it
/// has), at most [`POLL_EVERY`]. This node's own leases count too: an entry it got too late to
/// publish is taken again when its lease ends.
async fn next_sweep(pool: &PgPool) -> Result<Duration, StoreError> {
    let ms: Option<i64> = sqlx::query_scalar(NEXT_EXPIRY).fetch_one(pool).await?;
    Ok(match ms {
        Some(ms) => Duration::from_millis(u64::try_from(ms).unwrap_or(0) + 20).min(POLL_EVERY),
        None => POLL_EVERY,
    })
}

/// Leases and forwards claimable entries until none is left. False when the receiver is gone.
async fn claim_all(
    pool: &PgPool,
    me: &str,
    config: CaptureConfig,
    tx: &mpsc::Sender<ChangeEvent>,
) -> Result<bool, StoreError> {
    let lease_ms = i64::try_from(config.lease.as_millis()).unwrap_or(i64::MAX);
    loop {
        // A stopped server has dropped the receiver: leasing now would hold entries nobody
        // publishes until the lease runs out. Leave them for a node that runs.
        if tx.is_closed() {
            return Ok(false);
        }
        // The local deadline starts before the database's, so it never outlives it.
        let publish_by = Instant::now() + config.lease.mul_f64(0.8);
        let rows = sqlx::query_as::<_, ClaimedRow>(CLAIM)
            .bind(me)
            .bind(lease_ms)
            .bind(CLAIM_BATCH)
            .fetch_all(pool)
            .await?;
        if rows.is_empty() {
            return Ok(true);
        }
        let (events, unknown) = merge(rows, publish_by);
        if !unknown.is_empty() {
            ack(pool, me, &unknown).await?;
        }
        for event in events {
            if tx.send(event).await.is_err() {
                return Ok(false);
            }
        }
    }
}
