//! Why a publication or an app hook failed. These are the server's internal errors; the REST
//! edge turns them into `ApiError` (`From` impls in `http::error`), the command layer into a
//! public refusal, and change capture only logs them.

use switchboard_core::broker::BrokerError;

use super::inbox::InboxError;

/// Why a publication (or a recovery read) failed; shown to publishers as a loud failure.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    /// The durable inbox failed.
    #[error(transparent)]
    Inbox(#[from] InboxError),
    /// A DTO could not be encoded (a bug, not a client error).
    #[error("could not encode a publication: {0}")]
    Encode(#[from] serde_json::Error),
    /// The event name is one no publication may carry
    /// ([`switchboard_core::hub::is_wire_reserved`]); nothing was published.
    #[error("event name reserved by the protocol or a client library")]
    ReservedEvent,
    /// A captured change asked to publish to a `user:` channel, whose durable inbox cannot
    /// deduplicate it across nodes (a bug in an app, not a client error).
    #[error("a captured change cannot publish to a user channel")]
    NotCapturable,
}

/// Why an app's hook (a join notice, a captured change) failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] switchboard_store::StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// A captured change named a row key the app cannot use.
    #[error("bad row key {0:?}")]
    BadKey(String),
}

impl From<BrokerError> for AppError {
    fn from(e: BrokerError) -> Self {
        Self::Publish(PublishError::Broker(e))
    }
}

impl From<serde_json::Error> for AppError {
    fn from(e: serde_json::Error) -> Self {
        Self::Publish(PublishError::Encode(e))
    }
}
