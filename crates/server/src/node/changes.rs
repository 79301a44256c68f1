//! Publishes rows changed outside the API (change capture) as if the API had written them: the
//! store says which row changed, and the app that owns the table reads its current state and
//! publishes the same DTOs and events its REST handlers would. Each change reaches exactly one
//! node (the store claims it), and the broker delivers it to every node.

use std::sync::Arc;

use switchboard_store::ChangeEvent;
use tokio::sync::mpsc;

use super::Node;
use super::error::AppError;

/// Runs until the store's capture stops; spawned by `serve` when the store captures changes.
pub async fn run(node: Arc<Node>, mut changes: mpsc::Receiver<ChangeEvent>) {
    while let Some(change) = changes.recv().await {
        match publish(&node, &change).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(table = ?change.table, "no app owns a captured change's table")
            }
            Err(e) => {
                tracing::warn!(table = ?change.table, key = %change.key, error = %e, "captured change not published")
            }
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
