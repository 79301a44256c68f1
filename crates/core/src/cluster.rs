//! The cluster's control plane: which nodes are alive, and a question asked of all of them.
//!
//! The admin API answers for the whole cluster (SPEC §8: stats, channels, presence, disconnect
//! across every node). A node cannot see another node's connections, so it asks: the question
//! goes to every live node, each answers from its own registry, and the asker merges. A node
//! that does not answer within the deadline is reported as such, not waited for.
//!
//! - [`Cluster`]: what the server asks through; [`LocalCluster`] is the single-process one (the
//!   in-memory broker's deployment), a Redis implementation lives in `switchboard-redis`.
//! - [`ClusterHandler`]: what a node answers with (the server's admin module).
//!
//! The cluster also keeps the presence sets every node shares (SPEC §10): a member is
//! registered under its node, and a node's members count only while that node is alive, so a
//! node killed without saying goodbye leaves no ghosts once its liveness expires.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::broker::BrokerError;
use crate::channel::ChannelName;
use crate::protocol::PresenceMember;

/// One node's answer to a cluster question.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeAnswer {
    /// The node's id.
    pub node: String,
    /// What it answered, or why there is no answer (it did not answer in time).
    pub answer: Result<Value, String>,
}

/// Answers the questions other nodes (and this one) ask.
#[async_trait]
pub trait ClusterHandler: Send + Sync + 'static {
    /// Answers `request` from this node's own state.
    async fn answer(&self, request: Value) -> Value;
}

/// Asks every live node of the cluster, this one included.
#[async_trait]
pub trait Cluster: Send + Sync + 'static {
    /// This node's id, as other nodes and the admin API name it.
    fn node_id(&self) -> &str;

    /// Installs what this node answers with. Set once, after the node exists (the node holds
    /// the cluster, so the handler cannot be passed at construction); questions that arrive
    /// before are answered with an error.
    fn set_handler(&self, handler: Arc<dyn ClusterHandler>);

    /// Sends `request` to every live node and collects the answers for at most `timeout`: one
    /// [`NodeAnswer`] per node known to be alive, `Err` for those that did not answer in time.
    async fn ask_all(
        &self,
        request: Value,
        timeout: Duration,
    ) -> Result<Vec<NodeAnswer>, BrokerError>;

    /// Registers `member` (of this node) in `channel`'s shared presence set. A cluster of one
    /// shares nothing and does nothing: the hub is its presence set.
    async fn presence_add(
        &self,
        channel: &ChannelName,
        member: &PresenceMember,
    ) -> Result<(), BrokerError> {
        let _ = (channel, member);
        Ok(())
    }

    /// Removes connection `connection_id` from `channel`'s shared set. Must not block: it runs
    /// in connection teardown (including `Drop`).
    fn presence_remove(&self, channel: &ChannelName, connection_id: &str) {
        let _ = (channel, connection_id);
    }

    /// The members of `channel` on every live node, or `None` when the cluster shares no
    /// presence (the caller then asks its hub).
    async fn presence(
        &self,
        channel: &ChannelName,
    ) -> Result<Option<Vec<PresenceMember>>, BrokerError> {
        let _ = channel;
        Ok(None)
    }
}

/// The cluster of one process: the question is answered here, directly.
#[derive(Default)]
pub struct LocalCluster {
    id: String,
    handler: OnceLock<Arc<dyn ClusterHandler>>,
}

impl LocalCluster {
    /// A one-node cluster whose node is called `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            handler: OnceLock::new(),
        }
    }
}

/// Answers `request` with `handler`, or the error the admin API shows when none is installed.
pub async fn answer_with(handler: Option<&Arc<dyn ClusterHandler>>, request: Value) -> Value {
    match handler {
        Some(h) => h.answer(request).await,
        None => serde_json::json!({ "error": "node starting" }),
    }
}

#[async_trait]
impl Cluster for LocalCluster {
    fn node_id(&self) -> &str {
        &self.id
    }

    fn set_handler(&self, handler: Arc<dyn ClusterHandler>) {
        let _ = self.handler.set(handler);
    }

    async fn ask_all(
        &self,
        request: Value,
        timeout: Duration,
    ) -> Result<Vec<NodeAnswer>, BrokerError> {
        let answer = tokio::time::timeout(timeout, answer_with(self.handler.get(), request))
            .await
            .map_err(|_| format!("no answer within {} ms", timeout.as_millis()));
        Ok(vec![NodeAnswer {
            node: self.id.clone(),
            answer,
        }])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    struct Echo;

    #[async_trait]
    impl ClusterHandler for Echo {
        async fn answer(&self, request: Value) -> Value {
            serde_json::json!({ "echo": request })
        }
    }

    struct Stuck;

    #[async_trait]
    impl ClusterHandler for Stuck {
        async fn answer(&self, _: Value) -> Value {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_local_cluster_answers_itself_and_reports_a_stuck_handler() {
        let c = LocalCluster::new("n1");
        let before = c
            .ask_all(Value::Null, Duration::from_millis(50))
            .await
            .unwrap();
        assert_eq!(
            before[0].answer,
            Ok(serde_json::json!({"error": "node starting"}))
        );
        c.set_handler(Arc::new(Echo));
        let answers = c
            .ask_all(serde_json::json!(1), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(
            answers,
            vec![NodeAnswer {
                node: "n1".into(),
                answer: Ok(serde_json::json!({"echo": 1}))
            }]
        );
        let stuck = LocalCluster::new("n2");
        stuck.set_handler(Arc::new(Stuck));
        let answers = stuck
            .ask_all(Value::Null, Duration::from_millis(30))
            .await
            .unwrap();
        assert_eq!(answers[0].answer, Err("no answer within 30 ms".into()));
    }
}
