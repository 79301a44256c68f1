//! Redis restarted from an older snapshot (issue 16, SPEC §10): offsets never go back under the
//! same epoch. Three publications, `SAVE`, three more, Redis killed and restarted from the
//! snapshot: the channel gets a new epoch, so a client that had offset 4 resumes with
//! `recovered: false` instead of silently missing what was lost; and the first publish after
//! the restart succeeds (the dead connection is retried once) instead of failing.
//!
//! Runs its own `redis-server` on a free port in a temporary directory — never the shared one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestNode, services_required, unique_prefix};
use switchboard_core::broker::{Broker, HistoryPolicy};
use switchboard_core::channel::ChannelName;
use switchboard_core::publication::{PublicationData, StreamPosition};

struct OwnRedis {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl OwnRedis {
    /// Starts `redis-server` with RDB files in `dir` (no automatic saves, no AOF), or `None`
    /// when the binary is missing and services are optional.
    fn start(dir: tempfile::TempDir, port: u16) -> Option<OwnRedis> {
        let spawned = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--dbfilename",
                "dump.rdb",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => Some(OwnRedis { child, port, dir }),
            Err(e) if !services_required() => {
                println!("SKIPPED redis restart test: cannot start redis-server: {e}");
                None
            }
            Err(e) => panic!("redis-server is required: {e}"),
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn ready(&self) {
        for _ in 0..200 {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("own redis-server never answered");
    }

    async fn command(&self, name: &str) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd(name).query_async::<()>(&mut c).await.unwrap();
    }

    /// SIGKILL, then a new process on the same port and directory (loading `dump.rdb`).
    async fn kill_and_restart(mut self) -> OwnRedis {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let (port, dir) = (
            self.port,
            std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()),
        );
        let next = OwnRedis::start(dir, port).unwrap();
        next.ready().await;
        next
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_restart_from_an_older_snapshot_rotates_the_epoch() {
    let Some(redis) = OwnRedis::start(tempfile::tempdir().unwrap(), free_port()) else {
        return;
    };
    redis.ready().await;
    let node = TestNode::new(&redis.url(), &unique_prefix());
    let ch = ChannelName::parse("missions").unwrap();
    let policy = HistoryPolicy {
        size: 100,
        ttl: Duration::from_secs(60),
    };
    let publish = async |n: u64| {
        node.broker
            .publish(&ch, "e", PublicationData::shared(&n).unwrap(), policy)
            .await
    };
    for n in 1..=3 {
        publish(n).await.unwrap();
    }
    redis.command("SAVE").await;
    let mut last = None;
    for n in 4..=6 {
        last = Some(publish(n).await.unwrap());
    }
    let before = last.unwrap();
    assert_eq!(before.offset, 6);
    let old_epoch = before.epoch.to_string();

    let redis = redis.kill_and_restart().await;
    // The first publish after the restart goes through (retried on a fresh connection).
    let after = publish(7).await.expect("the first publish after a restart");
    assert_ne!(
        after.epoch.as_ref(),
        old_epoch,
        "offset {} handed out again under the old epoch",
        after.offset
    );
    // The new epoch starts at 1, so a feed can fetch it whole from history.
    assert_eq!(after.offset, 1, "a new epoch's first publication");
    // A client that had offset 4 under the old epoch is told its history is gone.
    let since = StreamPosition {
        offset: 4,
        epoch: old_epoch.clone(),
    };
    let recovery = node.broker.recover(&ch, Some(&since)).await.unwrap();
    assert!(!recovery.recovered, "{recovery:?}");
    assert_eq!(recovery.position.epoch, after.epoch.to_string());
    // Under the new epoch, history is exact again.
    let next = publish(8).await.unwrap();
    assert_eq!(next.epoch, after.epoch);
    let resumed = node
        .broker
        .recover(
            &ch,
            Some(&StreamPosition {
                offset: after.offset,
                epoch: after.epoch.to_string(),
            }),
        )
        .await
        .unwrap();
    assert!(resumed.recovered);
    assert_eq!(resumed.publications.len(), 1);
    drop(redis);
}

#[tokio::test]
async fn the_same_redis_keeps_the_epoch() {
    let Some(redis) = OwnRedis::start(tempfile::tempdir().unwrap(), free_port()) else {
        return;
    };
    redis.ready().await;
    let node = TestNode::new(&redis.url(), &unique_prefix());
    let ch = ChannelName::parse("room:1").unwrap();
    let policy = HistoryPolicy {
        size: 10,
        ttl: Duration::from_secs(60),
    };
    let a = node
        .broker
        .publish(&ch, "e", PublicationData::shared(&1).unwrap(), policy)
        .await
        .unwrap();
    let b = node
        .broker
        .publish(&ch, "e", PublicationData::shared(&2).unwrap(), policy)
        .await
        .unwrap();
    assert_eq!((a.epoch.as_ref(), b.offset), (b.epoch.as_ref(), 2));
}
