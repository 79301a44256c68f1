//! What an app's client-event handler may do with the client that sent the event: know who it
//! is, check what it may read, and join or leave channels on its connection. The command layer
//! implements it for every connection-based transport, so an app handles `join-room` once and
//! it works on each of them.

use switchboard_core::auth::Identity;
use switchboard_core::channel::ChannelName;
use switchboard_core::refusal::Refusal;

/// Why [`ClientScope::join`] did not join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinError {
    /// Refused before anything happened (not allowed, too many subscriptions); the app decides
    /// how to answer.
    Refused(Refusal),
    /// The subscription began but could not be read from the broker or inbox. When the join
    /// was announced, the client has already been told; otherwise the app should say so.
    Failed,
}

/// One client, as an app's handler sees it.
#[async_trait::async_trait]
pub trait ClientScope: Send {
    /// Who the client is.
    fn identity(&self) -> &Identity;

    /// Its connection id (the `conn:<id>` suffix; the sender of anonymous messages).
    fn connection_id(&self) -> &str;

    /// Whether the connection has `channel`.
    fn is_subscribed(&self, channel: &ChannelName) -> bool;

    /// Whether the client may read `channel`.
    fn may_read(&self, channel: &ChannelName) -> bool;

    /// Joins `channel` like a `subscribe` without a position. With `announce`, the client gets
    /// the protocol's subscribe answer and any join notice, exactly as for a subscribe request;
    /// without, the join is silent. `Ok(false)`: it already had the channel.
    async fn join(&mut self, channel: ChannelName, announce: bool) -> Result<bool, JoinError>;

    /// Leaves `channel` silently; false if it was not joined.
    async fn leave(&mut self, channel: &ChannelName) -> bool;

    /// Who a message from this client is from: the user id, or the connection id when
    /// anonymous. The server sets it; a client-supplied sender is never trusted.
    fn sender(&self) -> String {
        self.identity()
            .user
            .clone()
            .unwrap_or_else(|| self.connection_id().to_owned())
    }
}
