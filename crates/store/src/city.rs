//! City snapshots: the latest metrics a pipeline posted for a city.

use std::collections::BTreeMap;

/// A city's latest metrics. Metric values are finite numbers (validated by the app).
#[derive(Debug, Clone, PartialEq)]
pub struct CitySnapshotRecord {
    /// `[a-z0-9-]{1,64}`.
    pub city_id: String,
    /// Metric name → value, ordered by name.
    pub metrics: BTreeMap<String, f64>,
    /// When it was stored (RFC 3339, UTC, milliseconds).
    pub updated_at: String,
}
