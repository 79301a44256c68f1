//! The mission record and its write shapes. Records carry classified columns and never leave
//! the server: apps turn them into DTOs before anything is serialized.

use std::fmt;

/// Mission lifecycle states (the only values the `status` column accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissionStatus {
    /// Not started; what a new mission is when the app gives no status.
    Planned,
    /// Under way.
    Active,
    /// Cover blown: still open, but the agents' view should flag it.
    Compromised,
    /// Finished as intended.
    Completed,
    /// Called off before it finished.
    Aborted,
}

impl MissionStatus {
    /// Every status, so validation messages can list what is accepted.
    pub const ALL: [MissionStatus; 5] = [
        Self::Planned,
        Self::Active,
        Self::Compromised,
        Self::Completed,
        Self::Aborted,
    ];

    /// The name stored in the `status` column and sent on the wire; the two are one so a
    /// database row and a DTO never need translating.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Active => "active",
            Self::Compromised => "compromised",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
        }
    }

    /// Parses a stored or client-supplied name; `None` for anything else, which the store
    /// reports as a corrupt row and the app as a validation error.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A full mission row, classified columns included.
///
/// `Debug` redacts the classified columns so a stray `tracing` field cannot leak them.
#[derive(Clone, PartialEq, Eq)]
pub struct MissionRecord {
    /// Assigned by the database; the demo rows take 1–5 and new ones continue after them.
    pub id: i64,
    /// The public name every audience may see.
    pub codename: String,
    /// Lifecycle state.
    pub status: MissionStatus,
    /// City or region, shown to agents and HQ alike.
    pub location: String,
    /// HQ audience only.
    pub objective: String,
    /// Classified: never in a DTO for agents, never in `Debug`.
    pub handler_notes: String,
    /// Classified, like `handler_notes`.
    pub asset_identity: String,
    /// Classified, like `handler_notes`.
    pub extraction_code: String,
    /// Last change, RFC 3339 UTC with milliseconds ([`now_rfc3339`]); text in both databases so
    /// both read it back byte for byte.
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
    /// See [`MissionRecord::codename`].
    pub codename: String,
    /// `None` starts the mission as [`MissionStatus::Planned`].
    pub status: Option<MissionStatus>,
    /// See [`MissionRecord::location`].
    pub location: String,
    /// See [`MissionRecord::objective`]; empty when the client sent none.
    pub objective: String,
    /// Classified; empty when the client sent none.
    pub handler_notes: String,
    /// Classified; empty when the client sent none.
    pub asset_identity: String,
    /// Classified; empty when the client sent none.
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
    /// Replaces the status when set.
    pub status: Option<MissionStatus>,
    /// Replaces the location when set.
    pub location: Option<String>,
    /// Replaces the objective when set.
    pub objective: Option<String>,
}

impl MissionPatch {
    /// Whether the patch changes nothing, so the app can refuse it instead of stamping a new
    /// `updated_at` on an unchanged row.
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.location.is_none() && self.objective.is_none()
    }
}

/// Now, as stored in `updated_at`: RFC 3339, UTC, milliseconds. One format for both databases
/// (and fixed width), so stamps compare as text and read back unchanged.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&fmt)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}
