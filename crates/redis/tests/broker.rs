//! The Redis broker against a real Redis: offsets across nodes, exact recovery, epochs,
//! delivery only where subscribed, and loud failure when Redis is gone.

// Tests fail loudly: a panic is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestNode, assert_quiet, delete_prefix, next_delivery, redis_or_skip, unique_prefix};
use switchboard_core::broker::{Broker, BrokerError, HistoryPolicy};
use switchboard_core::channel::ChannelName;
use switchboard_core::publication::{PublicationData, StreamPosition};

fn policy(size: usize) -> HistoryPolicy {
    HistoryPolicy {
        size,
        ttl: Duration::from_secs(60),
    }
}

fn data(n: u64) -> PublicationData {
    PublicationData::by_audience(
        &serde_json::json!({ "n": n }),
        &serde_json::json!({ "n": n, "hq": true }),
    )
    .unwrap()
}

#[tokio::test]
async fn offsets_are_unique_and_ordered_across_two_nodes() {
    let Some(mut admin) = redis_or_skip("offsets_are_unique_and_ordered_across_two_nodes").await
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

    const EACH: u64 = 50;
    let mut tasks = Vec::new();
    for node in [&a, &b] {
        let node = Arc::clone(node);
        let ch = ch.clone();
        tasks.push(tokio::spawn(async move {
            let mut offsets = Vec::new();
            for i in 0..EACH {
                let p = node
                    .broker
                    .publish(&ch, "e", data(i), policy(500))
                    .await
                    .unwrap();
                offsets.push(p.offset);
            }
            offsets
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=2 * EACH).collect::<Vec<_>>(),
        "offsets collide or skip"
    );

    // Both nodes see every publication, in offset order, with the per-audience data intact.
    for rx in [&mut on_a, &mut on_b] {
        for expected in 1..=2 * EACH {
            let (offset, frame) = next_delivery(rx).await;
            assert_eq!(offset, expected);
            assert!(frame.contains("\"data\":{\"n\":"), "{frame}");
            assert!(!frame.contains("hq"), "agent got the hq DTO: {frame}");
        }
        assert_quiet(rx).await;
    }
    delete_prefix(&mut admin, &prefix).await;
}

#[tokio::test]
async fn recovery_is_exact_and_history_is_trimmed_and_expires() {
    let Some(mut admin) =
        redis_or_skip("recovery_is_exact_and_history_is_trimmed_and_expires").await
    else {
        return;
    };
    let prefix = unique_prefix();
    let node = TestNode::new(common::REDIS_URL, &prefix);
    let other = TestNode::new(common::REDIS_URL, &prefix);
    let ch = ChannelName::parse("city:nairobi").unwrap();

    // A subscriber before any publication fixes the epoch the first publication belongs to.
    let initial = node.broker.recover(&ch, None).await.unwrap();
    assert_eq!(initial.position.offset, 0);
    let first = node
        .broker
        .publish(&ch, "e", data(1), policy(3))
        .await
        .unwrap();
    assert_eq!(first.offset, 1);
    assert_eq!(*first.epoch, *initial.position.epoch);

    let since = StreamPosition {
        offset: 1,
        epoch: first.epoch.to_string(),
    };
    for i in 2..=4 {
        node.broker
            .publish(&ch, "e", data(i), policy(3))
            .await
            .unwrap();
    }
    // Read from the other node: history is in Redis, not in the publishing process.
    let r = other.broker.recover(&ch, Some(&since)).await.unwrap();
    assert!(r.recovered);
    assert_eq!(r.position.offset, 4);
    assert_eq!(
        r.publications.iter().map(|p| p.offset).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert_eq!(
        r.publications[0]
            .data
            .for_audience(switchboard_core::publication::Audience::Hq)
            .get(),
        r#"{"hq":true,"n":2}"#
    );

    // One more: offset 2 is trimmed from a 3-entry history, so offset 1 can't be recovered.
    node.broker
        .publish(&ch, "e", data(5), policy(3))
        .await
        .unwrap();
    assert!(
        !other
            .broker
            .recover(&ch, Some(&since))
            .await
            .unwrap()
            .recovered
    );
    // Up to date: recovered, nothing to send.
    let now = StreamPosition {
        offset: 5,
        epoch: first.epoch.to_string(),
    };
    let r = other.broker.recover(&ch, Some(&now)).await.unwrap();
    assert!(r.recovered && r.publications.is_empty());
    // A position from the future or another epoch is not recoverable.
    let bogus = StreamPosition {
        offset: 4,
        epoch: "nope".into(),
    };
    assert!(
        !other
            .broker
            .recover(&ch, Some(&bogus))
            .await
            .unwrap()
            .recovered
    );
    let future = StreamPosition {
        offset: 9,
        epoch: first.epoch.to_string(),
    };
    assert!(
        !other
            .broker
            .recover(&ch, Some(&future))
            .await
            .unwrap()
            .recovered
    );

    // TTL: entries older than the namespace's TTL are not recoverable.
    let short = HistoryPolicy {
        size: 10,
        ttl: Duration::from_millis(150),
    };
    let ch2 = ChannelName::parse("room:ttl").unwrap();
    let p = node
        .broker
        .publish(&ch2, "e", data(1), short)
        .await
        .unwrap();
    let since0 = StreamPosition {
        offset: 0,
        epoch: p.epoch.to_string(),
    };
    assert!(
        node.broker
            .recover(&ch2, Some(&since0))
            .await
            .unwrap()
            .recovered
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let r = node.broker.recover(&ch2, Some(&since0)).await.unwrap();
    assert!(!r.recovered, "expired history recovered");
    assert_eq!(r.position.offset, 1);
    delete_prefix(&mut admin, &prefix).await;
}

#[tokio::test]
async fn epoch_changes_when_redis_loses_the_channel() {
    let Some(mut admin) = redis_or_skip("epoch_changes_when_redis_loses_the_channel").await else {
        return;
    };
    let prefix = unique_prefix();
    let node = TestNode::new(common::REDIS_URL, &prefix);
    let ch = ChannelName::parse("missions").unwrap();
    let p1 = node
        .broker
        .publish(&ch, "e", data(1), policy(10))
        .await
        .unwrap();
    let p2 = node
        .broker
        .publish(&ch, "e", data(2), policy(10))
        .await
        .unwrap();
    assert_eq!(*p1.epoch, *p2.epoch);
    // Simulate a flushed or restarted Redis, for this test's keys only.
    delete_prefix(&mut admin, &prefix).await;
    let p3 = node
        .broker
        .publish(&ch, "e", data(3), policy(10))
        .await
        .unwrap();
    assert_eq!(p3.offset, 1, "offsets restart in the new epoch");
    assert_ne!(*p3.epoch, *p1.epoch, "epoch must change after history loss");
    let old = StreamPosition {
        offset: 2,
        epoch: p1.epoch.to_string(),
    };
    let r = node.broker.recover(&ch, Some(&old)).await.unwrap();
    assert!(!r.recovered);
    assert_eq!(r.position.epoch, *p3.epoch);
    delete_prefix(&mut admin, &prefix).await;
}

async fn numsub(admin: &mut redis::aio::MultiplexedConnection, key: &str) -> u64 {
    let (_, n): (String, u64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(key)
        .query_async(admin)
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn only_nodes_with_subscribers_receive_a_channel() {
    let Some(mut admin) = redis_or_skip("only_nodes_with_subscribers_receive_a_channel").await
    else {
        return;
    };
    let prefix = unique_prefix();
    let a = TestNode::new(common::REDIS_URL, &prefix);
    let b = TestNode::new(common::REDIS_URL, &prefix);
    a.connected().await;
    b.connected().await;
    let ch = ChannelName::parse("room:42").unwrap();
    let key = format!("{prefix}:feed:room:42");
    assert_eq!(numsub(&mut admin, &key).await, 0);

    let mut on_a = a.subscribe("ca", &ch).await;
    // Two local subscribers share one Redis subscription.
    let mut on_a2 = a.subscribe("ca2", &ch).await;
    assert_eq!(numsub(&mut admin, &key).await, 1, "exactly node A listens");
    assert_eq!((a.broker.feed_channels(), b.broker.feed_channels()), (1, 0));

    // Published on B (which has no subscriber), delivered on A.
    let p = b
        .broker
        .publish(&ch, "e", data(1), policy(10))
        .await
        .unwrap();
    assert_eq!(next_delivery(&mut on_a).await.0, p.offset);
    assert_eq!(next_delivery(&mut on_a2).await.0, p.offset);

    // The last local subscriber leaves: A stops receiving the channel from Redis.
    a.hub.unsubscribe(&ch, "ca");
    assert_eq!(
        numsub(&mut admin, &key).await,
        1,
        "one subscriber is still on A"
    );
    a.hub.unsubscribe(&ch, "ca2");
    a.broker.on_unsubscribe(&ch);
    let mut gone = false;
    for _ in 0..100 {
        if numsub(&mut admin, &key).await == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        gone,
        "node A still subscribed after its last subscriber left"
    );
    assert_eq!(a.broker.feed_channels(), 0);

    // And a new subscriber brings it back.
    let mut again = a.subscribe("ca3", &ch).await;
    let p = b
        .broker
        .publish(&ch, "e", data(2), policy(10))
        .await
        .unwrap();
    assert_eq!(next_delivery(&mut again).await.0, p.offset);
    delete_prefix(&mut admin, &prefix).await;
}

#[tokio::test]
async fn publish_fails_loudly_when_redis_is_unreachable() {
    // A port this test holds, where every connection is closed at once: no Redis answers
    // there, and no other process can take the port meanwhile.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _refuser = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            drop(conn);
        }
    });
    let node = TestNode::new(&format!("redis://127.0.0.1:{port}"), "unreachable");
    let ch = ChannelName::parse("missions").unwrap();
    let started = std::time::Instant::now();
    let err = node
        .broker
        .publish(&ch, "e", data(1), policy(10))
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "publish hung for {:?}",
        started.elapsed()
    );
    assert!(!node.broker.is_ready().await);
    assert!(node.broker.recover(&ch, None).await.is_err());
    assert!(matches!(
        node.broker.on_subscribe(&ch).await,
        Err(BrokerError::Unavailable(_))
    ));
}

#[tokio::test]
async fn transient_publications_reach_other_nodes_except_one_connection() {
    let Some(mut admin) =
        redis_or_skip("transient_publications_reach_other_nodes_except_one_connection").await
    else {
        return;
    };
    let prefix = unique_prefix();
    let a = TestNode::new(common::REDIS_URL, &prefix);
    let b = TestNode::new(common::REDIS_URL, &prefix);
    a.connected().await;
    b.connected().await;
    let ch = ChannelName::parse("room:typing").unwrap();
    let mut typist = a.subscribe("typist", &ch).await;
    let mut other = b.subscribe("other", &ch).await;

    a.broker
        .publish_transient(&ch, "user-typing", data(7), Some("typist"))
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(5), other.recv()).await {
        Ok(switchboard_core::hub::Outbound::Transient(t)) => {
            assert_eq!(t.channel, ch);
            let text = String::from_utf8(t.frame.to_vec()).unwrap();
            assert!(text.contains("user-typing"), "{text}");
        }
        other => panic!("expected a transient delivery on the other node, got {other:?}"),
    }
    assert_quiet(&mut typist).await;
    // It took no offset and left no history.
    let stored = a
        .broker
        .publish(&ch, "e", data(1), policy(10))
        .await
        .unwrap();
    assert_eq!(stored.offset, 1);
    let r = b
        .broker
        .recover(
            &ch,
            Some(&StreamPosition {
                offset: 0,
                epoch: stored.epoch.to_string(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.publications.len(), 1);
    delete_prefix(&mut admin, &prefix).await;
}
