//! Who a connection is (`impl Client` and the admission every transport shares): a token from
//! the handshake, and the native `auth` message that authenticates or refreshes in place.

use switchboard_core::auth::{AuthError, Identity};
use switchboard_core::codes::CloseCode;
use switchboard_core::refusal::Refusal;

use super::client::Client;
use super::request::{Next, Reply, Responder};
use crate::http::error::ApiError;
use crate::node::Node;

/// Why a handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The token did not verify (or expired).
    #[error(transparent)]
    Token(#[from] AuthError),
    /// No token, and `auth.allow_anonymous` is off.
    #[error("Authentication required")]
    AnonymousNotAllowed,
}

impl Refused {
    /// The close code a WebSocket gets for this.
    pub fn close_code(self) -> CloseCode {
        match self {
            Self::Token(e) => close_code_for(e),
            Self::AnonymousNotAllowed => CloseCode::AuthRequired,
        }
    }
}

/// A refused SSE or long-poll request is a 401 with the same words a WebSocket gets.
impl From<Refused> for ApiError {
    fn from(e: Refused) -> Self {
        match e {
            Refused::Token(e) => e.into(),
            Refused::AnonymousNotAllowed => AuthError::Missing.into(),
        }
    }
}

/// The identity a handshake token (or none) gives, by the same rules on every transport.
pub fn admit(node: &Node, token: Option<&str>) -> Result<Identity, Refused> {
    let identity = node.identify(token)?;
    if !identity.is_authenticated() && !node.config.auth.allow_anonymous {
        return Err(Refused::AnonymousNotAllowed);
    }
    Ok(identity)
}

/// The close code for a refused token.
pub fn close_code_for(e: AuthError) -> CloseCode {
    match e {
        AuthError::Missing => CloseCode::AuthRequired,
        AuthError::Invalid => CloseCode::InvalidToken,
        AuthError::Expired => CloseCode::TokenExpired,
    }
}

impl Client {
    /// `auth`: authenticates an anonymous connection, or refreshes the token of an
    /// authenticated one (the user may not change). Afterwards the connection leaves what the
    /// new token no longer allows and joins its personal channels. A bad token closes it.
    pub(super) async fn authenticate(&mut self, token: &str, out: &mut dyn Responder) -> Next {
        let identity = match self.node().identify(Some(token)) {
            Ok(identity) => identity,
            Err(e) => {
                tracing::info!(conn = %self.id(), reason = %e, "auth message rejected");
                let message = e.to_string();
                self.reply(out, Ok(Reply::AuthRejected { message: &message }))
                    .await;
                return Next::Close(close_code_for(e));
            }
        };
        if self.identity().user.is_some() && identity.user != self.identity().user {
            self.refuse(out, Refusal::cannot_change_user()).await;
            return Next::Continue;
        }
        self.conn.set_identity(identity);
        let user = self.identity().user.clone();
        self.reply(
            out,
            Ok(Reply::Authenticated {
                user: user.as_deref(),
            }),
        )
        .await;
        self.drop_forbidden_subscriptions(out).await;
        self.join_personal_channels().await;
        Next::Continue
    }
}
