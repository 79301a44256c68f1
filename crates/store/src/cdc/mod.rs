//! Change capture: turns rows changed outside the API (psql, the `sqlite3` CLI, another
//! service) into [`ChangeEvent`]s for the server to publish like API writes.
//!
//! Both databases record such changes with triggers into `change_log` (which row, never its
//! values: classified columns never pass through the log). A node *leases* entries, publishes
//! them, and only then deletes them ([`Store::ack_changes`](crate::Store::ack_changes)), so a
//! node that dies between taking a change and publishing it loses nothing: when the lease runs
//! out another node (PostgreSQL) or the restarted node (SQLite) takes it again. The publisher
//! makes each publication idempotent by [`ChangeEvent::once_key`], so a slow node and the one
//! that took over never both deliver it.
//!
//! - `postgres`: LISTEN/NOTIFY plus a sweep, leases in `change_log` shared by every node.
//! - `sqlite`: `PRAGMA data_version` polled on a connection of its own.

use std::time::Duration;

use tokio::time::Instant;

pub(crate) mod postgres;
pub(crate) mod sqlite;

/// How change capture takes entries; from the `[cdc]` configuration section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureConfig {
    /// How long a node holds a change it took before another node may take it (`cdc.lease_ms`,
    /// default 10 s). Shorter: a dead node's changes come out sooner; longer: a node stalled
    /// for that long (a pause, a slow database) is not overtaken needlessly.
    pub lease: Duration,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(10),
        }
    }
}

impl CaptureConfig {
    /// How long the broker remembers a change's idempotency key: well beyond the lease, so a
    /// node that was overtaken and publishes late is still recognised as a repeat.
    pub fn once_window(&self) -> Duration {
        (self.lease * 6).max(Duration::from_secs(60))
    }
}

/// Which table a captured change is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeTable {
    /// `missions`; the key is the mission id.
    Missions,
    /// `city_snapshots`; the key is the city id.
    CitySnapshots,
}

impl ChangeTable {
    /// The table a trigger named in `change_log.table_name`, `None` for one we do not know.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "missions" => Some(Self::Missions),
            "city_snapshots" => Some(Self::CitySnapshots),
            _ => None,
        }
    }
}

/// A `change_log` entry's id: unique in its database and never reused, so it names one change
/// on every node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChangeId(pub i64);

/// A row changed by a writer other than the API. It says which row, not what changed: the
/// publisher reads the row's current state (absent: deleted) and publishes its DTOs.
///
/// Several changes to one row taken together are merged into one event (`ids` holds them all):
/// the row's state is read once, after all of them, so publishing it once says everything the
/// separate events would have.
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    /// Which table the row is in, so the publisher knows which DTOs to make.
    pub table: ChangeTable,
    /// The row's primary key, as text because the two tables' keys differ in type.
    pub key: String,
    /// The log entries this event stands for, oldest first; acknowledged together.
    pub ids: Vec<ChangeId>,
    /// When this node's lease on them ends: publishing later could race the node that takes
    /// them over, so the publisher skips an event it got too late (the next taker publishes).
    pub publish_by: Instant,
}

impl ChangeEvent {
    /// The idempotency key of this event's publications: the newest entry's id, which every
    /// node that takes the same entries computes alike.
    pub fn once_key(&self) -> String {
        let newest = self.ids.iter().max().map_or(0, |id| id.0);
        format!("change-{newest}")
    }

    /// Whether this node's lease still covers publishing now.
    pub fn in_lease(&self) -> bool {
        Instant::now() < self.publish_by
    }
}

/// A claimed `change_log` entry, as both databases return it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ClaimedRow {
    pub id: i64,
    pub table_name: String,
    pub row_key: String,
}

/// Turns claimed entries into events, oldest first, merging entries of the same row; entries
/// of unknown tables are returned apart so the caller can drop them from the log.
pub(crate) fn merge(
    mut rows: Vec<ClaimedRow>,
    publish_by: Instant,
) -> (Vec<ChangeEvent>, Vec<ChangeId>) {
    rows.sort_by_key(|r| r.id);
    let mut events: Vec<ChangeEvent> = Vec::with_capacity(rows.len());
    let mut unknown = Vec::new();
    for row in rows {
        let Some(table) = ChangeTable::parse(&row.table_name) else {
            tracing::warn!(table = %row.table_name, "change for an unknown table ignored");
            unknown.push(ChangeId(row.id));
            continue;
        };
        match events
            .iter_mut()
            .find(|e| e.table == table && e.key == row.row_key)
        {
            Some(event) => event.ids.push(ChangeId(row.id)),
            None => events.push(ChangeEvent {
                table,
                key: row.row_key,
                ids: vec![ChangeId(row.id)],
                publish_by,
            }),
        }
    }
    (events, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, table: &str, key: &str) -> ClaimedRow {
        ClaimedRow {
            id,
            table_name: table.to_owned(),
            row_key: key.to_owned(),
        }
    }

    #[test]
    fn entries_of_one_row_merge_and_keep_first_seen_order() {
        let rows = vec![
            row(7, "missions", "1"),
            row(3, "missions", "1"),
            row(4, "city_snapshots", "oslo"),
            row(5, "nope", "x"),
            row(6, "missions", "2"),
        ];
        let (events, unknown) = merge(rows, Instant::now());
        let summary: Vec<(ChangeTable, &str, Vec<i64>)> = events
            .iter()
            .map(|e| (e.table, e.key.as_str(), e.ids.iter().map(|i| i.0).collect()))
            .collect();
        assert_eq!(
            summary,
            [
                (ChangeTable::Missions, "1", vec![3, 7]),
                (ChangeTable::CitySnapshots, "oslo", vec![4]),
                (ChangeTable::Missions, "2", vec![6]),
            ]
        );
        assert_eq!(unknown, [ChangeId(5)]);
        assert_eq!(events[0].once_key(), "change-7");
    }
}
