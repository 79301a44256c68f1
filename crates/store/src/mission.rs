//! The mission record and its write shapes. Records carry classified columns and never leave
//! the server: apps turn them into DTOs before anything is serialized.

use std::fmt;

/// Mission lifecycle states (the only values the `status` column accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissionStatus {
    /// Not started.
    Planned,
    /// Under way.
    Active,
    /// Cover blown.
    Compromised,
    /// Done.
    Completed,
    /// Called off.
    Aborted,
}

impl MissionStatus {
    /// Every status, for validation messages.
    pub const ALL: [MissionStatus; 5] = [
        Self::Planned,
        Self::Active,
        Self::Compromised,
        Self::Completed,
        Self::Aborted,
    ];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Active => "active",
            Self::Compromised => "compromised",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
        }
    }

    /// Parses a stored or client-supplied name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A full mission row, classified columns included.
///
/// `Debug` redacts the classified columns so a stray `tracing` field cannot leak them.
#[derive(Clone, PartialEq, Eq)]
pub struct MissionRecord {
    /// Primary key.
    pub id: i64,
    /// Public code name.
    pub codename: String,
    /// Lifecycle state.
    pub status: MissionStatus,
    /// Where.
    pub location: String,
    /// What (HQ audience only).
    pub objective: String,
    /// Classified.
    pub handler_notes: String,
    /// Classified.
    pub asset_identity: String,
    /// Classified.
    pub extraction_code: String,
    /// Last change, RFC 3339 UTC with milliseconds.
    pub updated_at: String,
}

impl fmt::Debug for MissionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MissionRecord")
            .field("id", &self.id)
            .field("codename", &self.codename)
            .field("status", &self.status)
            .field("location", &self.location)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

/// A mission to insert (already validated by the app).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NewMission {
    /// Public code name.
    pub codename: String,
    /// Initial state.
    pub status: Option<MissionStatus>,
    /// Where.
    pub location: String,
    /// What.
    pub objective: String,
    /// Classified.
    pub handler_notes: String,
    /// Classified.
    pub asset_identity: String,
    /// Classified.
    pub extraction_code: String,
}

impl fmt::Debug for NewMission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMission")
            .field("codename", &self.codename)
            .field("status", &self.status)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// A partial update: `None` leaves the column as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MissionPatch {
    /// New state.
    pub status: Option<MissionStatus>,
    /// New location.
    pub location: Option<String>,
    /// New objective.
    pub objective: Option<String>,
}

impl MissionPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.location.is_none() && self.objective.is_none()
    }
}

/// Now, as stored in `updated_at`: RFC 3339, UTC, milliseconds.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&fmt)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}
