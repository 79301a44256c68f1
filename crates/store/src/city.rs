//! City snapshots: the latest metrics a pipeline posted for a city.

use std::collections::BTreeMap;

/// A city's latest metrics. Metric values are finite numbers (validated by the app).
#[derive(Debug, Clone, PartialEq)]
pub struct CitySnapshotRecord {
    /// `[a-z0-9-]{1,64}` (checked by the app), so it is safe in a channel name.
    pub city_id: String,
    /// Metric name → value, ordered by name so the stored JSON is stable.
    pub metrics: BTreeMap<String, f64>,
    /// When it was stored (RFC 3339, UTC, milliseconds), stamped by the store, not the poster.
    pub updated_at: String,
}
