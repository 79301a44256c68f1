//! Inbox entries: publications to a user's personal channel, kept until acknowledged.

/// One stored publication of a user's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// Per-user offset, one more than the previous entry's, so a client can resume after the
    /// last one it saw.
    pub offset: u64,
    /// The user's inbox epoch: a client holding offsets of another epoch must start over.
    pub epoch: String,
    /// The event name the publication was made with.
    pub event: String,
    /// The payload, JSON text, stored as published so it is delivered unchanged.
    pub data: String,
    /// When it was stored, milliseconds since the Unix epoch; entries expire by it.
    pub created_at_ms: u64,
}
