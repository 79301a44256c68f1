//! Publishes rows changed outside the API (change capture) as if the API had written them: the
//! store says which row changed, and the app that owns the table reads its current state and
//! publishes the same DTOs and events its REST handlers would.
//!
//! Exactly once across nodes (SPEC §10): the store leases each change to one node; this node
//! publishes it only while its lease lasts, idempotently ([`Origin::Change`](super::publish::Origin::Change)), and then
//! acknowledges it. A node that dies before the acknowledgement leaves the change to be taken
//! over when the lease runs out; if it had published already, the broker recognises the repeat.

use std::sync::Arc;

use switchboard_store::ChangeEvent;
use tokio::sync::mpsc;

use super::Node;
use super::error::{AppError, PublishError};

/// Runs until the store's capture stops; spawned by `serve`.
pub async fn run(node: Arc<Node>, mut changes: mpsc::Receiver<ChangeEvent>) {
    while let Some(change) = changes.recv().await {
        if !change.in_lease() {
            // Taken too late (a backlog, a stall): another node may hold it by now. Leave it;
            // whoever leases it next publishes it.
            tracing::warn!(table = ?change.table, key = %change.key,
                "captured change reached its lease's end before publishing; left for the next taker");
            continue;
        }
        let done = match publish(&node, &change).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(table = ?change.table, "no app owns a captured change's table");
                true
            }
            Err(AppError::BadKey(key)) => {
                tracing::warn!(table = ?change.table, key = %key, "captured change with an unusable key dropped");
                true
            }
            Err(AppError::Publish(PublishError::ReservedEvent | PublishError::Encode(_))) => {
                // Retrying cannot help (a bug, logged); dropping it keeps the log from filling.
                tracing::error!(table = ?change.table, key = %change.key, "captured change cannot be published; dropped");
                true
            }
            Err(e) => {
                // The broker or the database failed: keep the entry, the lease runs out and the
                // change is published again (by this node or another).
                tracing::warn!(table = ?change.table, key = %change.key, error = %e,
                    "captured change not published yet; it is retried when its lease runs out");
                false
            }
        };
        if done && let Err(e) = node.store.ack_changes(&change.ids).await {
            // Published but still in the log: it is taken again after the lease, and the
            // broker recognises the repeat by its key.
            tracing::warn!(key = %change.key, error = %e, "published change not acknowledged");
        }
    }
}

/// Hands `change` to the app that owns its table; false when none does.
pub async fn publish(node: &Node, change: &ChangeEvent) -> Result<bool, AppError> {
    for app in node.apps.iter() {
        if app.on_change(node, change).await? {
            return Ok(true);
        }
    }
    Ok(false)
}
