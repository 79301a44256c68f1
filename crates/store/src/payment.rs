//! The payment record and its states. A record stays inside the server; the payments app turns
//! it into its DTO.

/// Where a payment is in its life: `pending` until processed, then `succeeded` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Accepted, not processed yet.
    Pending,
    /// Processed and accepted.
    Succeeded,
    /// Processed and refused.
    Failed,
}

impl PaymentStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A full payment row.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRecord {
    /// Server-chosen, unguessable id.
    pub id: String,
    /// Positive, finite amount.
    pub amount: f64,
    /// The connection (Socket.IO socket id or native connection id) told about the outcome.
    pub socket_id: String,
    /// Current state.
    pub status: PaymentStatus,
    /// When it was accepted (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// What the app stores when a payment is requested; it starts `pending`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPayment {
    /// Id chosen by the app.
    pub id: String,
    /// Amount (validated by the app).
    pub amount: f64,
    /// Connection to notify.
    pub socket_id: String,
}
