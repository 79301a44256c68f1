//! Inbox entries: publications to a user's personal channel, kept until acknowledged.

/// One stored publication of a user's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// Per-user offset (grows by one per entry).
    pub offset: u64,
    /// The user's inbox epoch.
    pub epoch: String,
    /// Event name.
    pub event: String,
    /// The payload, JSON text.
    pub data: String,
    /// When it was stored, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
}
