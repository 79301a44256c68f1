//! The payment record and its states. A record stays inside the server; the payments app turns
//! it into its DTO.

/// Where a payment is in its life: `pending` until processed, then `succeeded` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Accepted, not processed yet; the only state a payment can be settled from.
    Pending,
    /// Processed and accepted (final).
    Succeeded,
    /// Processed and refused (final).
    Failed,
}

impl PaymentStatus {
    /// The name stored in the `status` column and sent on the wire (one name for both).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name; `None` means a corrupt row.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A full payment row.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentRecord {
    /// Server-chosen and unguessable, because knowing it is enough to read the payment.
    pub id: String,
    /// Positive and finite (the schema refuses anything else).
    pub amount: f64,
    /// The connection (Socket.IO socket id or native connection id) told about the outcome.
    pub socket_id: String,
    /// Moves from `Pending` once, to a final state.
    pub status: PaymentStatus,
    /// When it was accepted (RFC 3339, as [`crate::now_rfc3339`]).
    pub created_at: String,
    /// Equal to `created_at` until the payment is settled.
    pub updated_at: String,
}

/// What the app stores when a payment is requested; it starts `pending`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPayment {
    /// Chosen by the app; see [`PaymentRecord::id`].
    pub id: String,
    /// Validated by the app; the schema refuses a non-positive one anyway.
    pub amount: f64,
    /// The connection to notify when the payment settles.
    pub socket_id: String,
}
