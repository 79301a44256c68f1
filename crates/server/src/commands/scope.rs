//! App client events (`impl Client`): the app that owns the event handles it with a
//! [`ClientScope`] over this connection, so it can join and leave channels without knowing
//! which protocol the client speaks.

use std::sync::Arc;

use serde_json::Value;
use switchboard_core::auth::Identity;
use switchboard_core::channel::ChannelName;
use switchboard_core::codes::ErrorCode;
use switchboard_core::refusal::Refusal;

use super::client::Client;
use super::request::{Reply, Responder, Silent};
use crate::node::scope::{ClientScope, JoinError};

/// A client and the responder of the request being handled, lent to an app.
struct Scope<'a> {
    client: &'a mut Client,
    out: &'a mut dyn Responder,
}

#[async_trait::async_trait]
impl ClientScope for Scope<'_> {
    fn identity(&self) -> &Identity {
        self.client.identity()
    }

    fn connection_id(&self) -> &str {
        self.client.id()
    }

    fn is_subscribed(&self, channel: &ChannelName) -> bool {
        self.client.is_subscribed(channel)
    }

    fn may_read(&self, channel: &ChannelName) -> bool {
        self.client.may_read(channel)
    }

    async fn join(&mut self, channel: ChannelName, announce: bool) -> Result<bool, JoinError> {
        if !self.client.may_read(&channel) {
            let authenticated = self.client.identity().is_authenticated();
            return Err(JoinError::Refused(Refusal::forbidden_channel(
                authenticated,
            )));
        }
        if self.client.is_subscribed(&channel) {
            return Ok(false);
        }
        if self.client.conn.subscriptions_full() {
            return Err(JoinError::Refused(Refusal::too_many_subscriptions()));
        }
        let joined = if announce {
            self.client.join_chosen(channel, None, &mut *self.out).await
        } else {
            self.client.join_chosen(channel, None, &mut Silent).await
        };
        if joined {
            Ok(true)
        } else {
            Err(JoinError::Failed)
        }
    }

    async fn leave(&mut self, channel: &ChannelName) -> bool {
        self.client.leave(channel, None).await
    }
}

impl Client {
    /// An app's client event: handed to the app that owns it; its value is the answer.
    pub(super) async fn app_event(&mut self, event: &str, data: &Value, out: &mut dyn Responder) {
        let node = Arc::clone(self.node());
        let Some(app) = node.apps.for_client_event(event) else {
            let refusal = Refusal::new(ErrorCode::UnknownType, "Unknown event");
            return self.refuse(out, refusal).await;
        };
        let outcome = {
            let mut scope = Scope {
                client: &mut *self,
                out: &mut *out,
            };
            app.on_client_event(&node, &mut scope, event, data).await
        };
        self.reply(out, outcome.map(Reply::App)).await;
    }
}
