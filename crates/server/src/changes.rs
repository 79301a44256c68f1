//! Publishes rows changed outside the API (PostgreSQL change capture) as if the API had
//! written them: the store says which row changed, this reads its current state and publishes
//! the same DTOs and events the REST handlers would. Each change reaches exactly one node
//! (the store claims it), and the broker delivers it to every node.

use std::sync::Arc;

use switchboard_store::{ChangeEvent, ChangeTable};
use tokio::sync::mpsc;

use crate::apps::{cities, missions};
use crate::node::Node;

/// Runs until the store's capture stops; spawned by `serve` when the store captures changes.
pub async fn run(node: Arc<Node>, mut changes: mpsc::Receiver<ChangeEvent>) {
    while let Some(change) = changes.recv().await {
        if let Err(e) = publish(&node, &change).await {
            tracing::warn!(table = ?change.table, key = %change.key, error = %e, "captured change not published");
        }
    }
}

async fn publish(node: &Node, change: &ChangeEvent) -> Result<(), String> {
    match change.table {
        ChangeTable::Missions => {
            let id: i64 = change
                .key
                .parse()
                .map_err(|_| format!("bad mission id {:?}", change.key))?;
            match node
                .store
                .get_mission(id)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(record) => missions::publish_update(node, &record).await,
                None => missions::publish_removed(node, id).await,
            }
            .map_err(|e| format!("{e:?}"))?;
            tracing::info!(mission = id, "published a mission changed outside the API");
        }
        ChangeTable::CitySnapshots => {
            let channel = cities::channel_for(&change.key).map_err(|e| format!("{e:?}"))?;
            // A deleted snapshot has nothing to publish; new subscribers get `null` data.
            if let Some(record) = node
                .store
                .get_city_snapshot(&change.key)
                .await
                .map_err(|e| e.to_string())?
            {
                cities::publish_snapshot(node, &channel, &record)
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                tracing::info!(city = %change.key, "published a city snapshot changed outside the API");
            }
        }
    }
    Ok(())
}
