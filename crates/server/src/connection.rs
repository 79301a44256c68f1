//! What every transport's session keeps about one connection: who it is, where its frames go,
//! and which channels it joined. The channels are left again — with presence notices — however
//! the connection ends, because leaving happens when this value is dropped.

use std::collections::HashSet;
use std::sync::Arc;

use switchboard_core::auth::Identity;
use switchboard_core::channel::ChannelName;
use switchboard_core::hub::ConnectionHandle;

use crate::node::Node;

/// One connection's identity and subscriptions, shared by the native and Socket.IO sessions.
pub struct Connection {
    /// The node it is connected to.
    pub node: Arc<Node>,
    /// Its queue and close signal, as the hub knows it.
    pub handle: Arc<ConnectionHandle>,
    /// Who the client is; changes when a native client re-authenticates.
    pub identity: Identity,
    /// The channels it joined (left on drop).
    pub subscriptions: HashSet<ChannelName>,
}

impl Connection {
    /// A connection with an already verified identity.
    pub fn new(node: Arc<Node>, handle: Arc<ConnectionHandle>, identity: Identity) -> Self {
        let mut conn = Self {
            node,
            handle,
            identity: Identity::anonymous(),
            subscriptions: HashSet::new(),
        };
        conn.set_identity(identity);
        conn
    }

    /// The connection id.
    pub fn id(&self) -> &str {
        self.handle.id()
    }

    /// Replaces the identity and tells the hub which audience and user it now has.
    pub fn set_identity(&mut self, identity: Identity) {
        self.handle.set_audience(identity.audience());
        self.handle.set_user(identity.user.as_deref());
        self.identity = identity;
    }

    /// The channels every connection has without asking: `conn:<id>` and, with a `sub`,
    /// `user:<sub>` (a user id that is not a valid channel suffix has no personal channel).
    pub fn personal_channels(&self) -> Vec<ChannelName> {
        let mut names = vec![format!("conn:{}", self.id())];
        if let Some(user) = &self.identity.user {
            names.push(format!("user:{user}"));
        }
        names
            .iter()
            .filter_map(|n| ChannelName::parse(n).ok())
            .collect()
    }

    /// Leaves `channel` (with a `user_left` notice where enabled). False if it was not joined.
    pub fn leave(&mut self, channel: &ChannelName) -> bool {
        if !self.subscriptions.remove(channel) {
            return false;
        }
        self.node.leave(channel, &self.handle);
        true
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for channel in self.subscriptions.drain() {
            self.node.leave(&channel, &self.handle);
        }
    }
}
