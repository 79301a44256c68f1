//! Idempotent publications on Redis (issue 16, change capture exactly once): two nodes
//! publishing the same change — the one that took it over and the slow one that had it first —
//! deliver it once, because the key's marker is set in the same script that assigns offsets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestNode, assert_quiet, delete_prefix, next_delivery, redis_or_skip, unique_prefix};
use switchboard_core::broker::{Broker, HistoryPolicy, OnceKey};
use switchboard_core::channel::ChannelName;
use switchboard_core::publication::PublicationData;

fn policy() -> HistoryPolicy {
    HistoryPolicy {
        size: 100,
        ttl: Duration::from_secs(60),
    }
}

fn once(key: &str, window: Duration) -> OnceKey {
    OnceKey {
        key: key.to_owned(),
        window,
    }
}

#[tokio::test]
async fn the_same_key_from_two_nodes_is_published_once() {
    let Some(mut admin) = redis_or_skip("the_same_key_from_two_nodes_is_published_once").await
    else {
        return;
    };
    let prefix = unique_prefix();
    let a = Arc::new(TestNode::new(common::REDIS_URL, &prefix));
    let b = Arc::new(TestNode::new(common::REDIS_URL, &prefix));
    a.connected().await;
    b.connected().await;
    let ch = ChannelName::parse("missions").unwrap();
    let mut on_a = a.subscribe("ca", &ch).await;
    let mut on_b = b.subscribe("cb", &ch).await;
    let data = PublicationData::shared(&serde_json::json!({"n": 1})).unwrap();

    // 20 changes, each published by both nodes at the same time.
    for i in 0..20 {
        let key = once(&format!("change-{i}:e"), Duration::from_secs(30));
        let (x, y) = tokio::join!(
            a.broker
                .publish_once(&ch, "e", data.clone(), policy(), &key),
            b.broker
                .publish_once(&ch, "e", data.clone(), policy(), &key),
        );
        let made = [x.unwrap(), y.unwrap()];
        let offsets: Vec<u64> = made.iter().flatten().map(|p| p.offset).collect();
        assert_eq!(
            offsets,
            [i + 1],
            "change {i}: exactly one node publishes it"
        );
    }
    for rx in [&mut on_a, &mut on_b] {
        for expected in 1..=20 {
            assert_eq!(next_delivery(rx).await.0, expected);
        }
        assert_quiet(rx).await;
    }

    // Plain publications are not affected, and the key expires with its window.
    let plain = a
        .broker
        .publish(&ch, "e", data.clone(), policy())
        .await
        .unwrap();
    assert_eq!(plain.offset, 21);
    let short = once("short", Duration::from_millis(300));
    let first = a
        .broker
        .publish_once(&ch, "e", data.clone(), policy(), &short);
    assert_eq!(first.await.unwrap().map(|p| p.offset), Some(22));
    let repeat = b
        .broker
        .publish_once(&ch, "e", data.clone(), policy(), &short);
    assert!(repeat.await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let later = b.broker.publish_once(&ch, "e", data, policy(), &short);
    assert_eq!(later.await.unwrap().map(|p| p.offset), Some(23));
    delete_prefix(&mut admin, &prefix).await;
}
