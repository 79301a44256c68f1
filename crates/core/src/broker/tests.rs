use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::channel::ChannelName;
use crate::hub::Hub;
use crate::publication::{PublicationData, StreamPosition};

fn policy(size: usize) -> HistoryPolicy {
    HistoryPolicy {
        size,
        ttl: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn offsets_grow_and_recovery_is_exact() {
    let broker = MemoryBroker::new(Arc::new(Hub::default()));
    let ch = ChannelName::parse("missions").unwrap();
    let data = PublicationData::shared(&1).unwrap();
    let first = broker
        .publish(&ch, "e", data.clone(), policy(3))
        .await
        .unwrap();
    assert_eq!(first.offset, 1);
    let since = StreamPosition {
        offset: 1,
        epoch: first.epoch.to_string(),
    };
    for _ in 0..3 {
        broker
            .publish(&ch, "e", data.clone(), policy(3))
            .await
            .unwrap();
    }
    let r = broker.recover(&ch, Some(&since)).await.unwrap();
    assert!(r.recovered);
    assert_eq!(
        r.publications.iter().map(|p| p.offset).collect::<Vec<_>>(),
        [2, 3, 4]
    );
    assert_eq!(r.position.offset, 4);
    // One more: offset 2 falls out of a 3-entry history, so offset 1 can't be recovered.
    broker
        .publish(&ch, "e", data.clone(), policy(3))
        .await
        .unwrap();
    assert!(!broker.recover(&ch, Some(&since)).await.unwrap().recovered);
    // Bogus epoch.
    let bogus = StreamPosition {
        offset: 4,
        epoch: "nope".into(),
    };
    let r = broker.recover(&ch, Some(&bogus)).await.unwrap();
    assert!(!r.recovered);
    assert_eq!(r.position.offset, 5);
    // Up to date.
    let now = StreamPosition {
        offset: 5,
        epoch: first.epoch.to_string(),
    };
    let r = broker.recover(&ch, Some(&now)).await.unwrap();
    assert!(r.recovered && r.publications.is_empty());
}

#[tokio::test]
async fn transient_publications_take_no_offset_and_skip_history() {
    use crate::hub::{ConnectionHandle, Outbound, WireFormat};
    use crate::publication::Audience;
    let hub = Arc::new(Hub::default());
    let broker = MemoryBroker::new(Arc::clone(&hub));
    let ch = ChannelName::parse("room:1").unwrap();
    let data = PublicationData::shared(&"x").unwrap();
    // No subscriber: nothing happens, not even a stream.
    broker
        .publish_transient(&ch, "t", data.clone(), None)
        .await
        .unwrap();
    assert_eq!(broker.stream_count(), 0);
    let (me, mut rme) = ConnectionHandle::new("me".into(), WireFormat::Native, Audience::Agent, 8);
    let (other, mut rother) =
        ConnectionHandle::new("o".into(), WireFormat::Native, Audience::Agent, 8);
    hub.subscribe(&ch, &me);
    hub.subscribe(&ch, &other);
    let first = broker
        .publish(&ch, "e", data.clone(), policy(10))
        .await
        .unwrap();
    broker
        .publish_transient(&ch, "t", data.clone(), Some("me"))
        .await
        .unwrap();
    let second = broker
        .publish(&ch, "e", data.clone(), policy(10))
        .await
        .unwrap();
    assert_eq!((first.offset, second.offset), (1, 2), "no offset taken");
    let since = StreamPosition {
        offset: 0,
        epoch: first.epoch.to_string(),
    };
    let r = broker.recover(&ch, Some(&since)).await.unwrap();
    assert!(r.recovered);
    assert_eq!(r.publications.len(), 2, "not in history");
    let kinds = |r: &mut crate::hub::OutboundReceiver| {
        std::iter::from_fn(|| r.try_recv())
            .map(|o| match o {
                Outbound::Delivery(_) => "d",
                Outbound::Transient(_) => "t",
                _ => "?",
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&mut rme), ["d", "d"]);
    assert_eq!(kinds(&mut rother), ["d", "t", "d"]);
}

#[tokio::test(start_paused = true)]
async fn history_expires_and_idle_streams_are_swept() {
    let broker = MemoryBroker::new(Arc::new(Hub::default()));
    let ch = ChannelName::parse("conn:abc").unwrap();
    let p = broker
        .publish(
            &ch,
            "e",
            PublicationData::shared(&1).unwrap(),
            HistoryPolicy {
                size: 10,
                ttl: Duration::from_millis(50),
            },
        )
        .await
        .unwrap();
    assert_eq!(broker.stream_count(), 1);
    std::thread::sleep(Duration::from_millis(60));
    let since = StreamPosition {
        offset: 0,
        epoch: p.epoch.to_string(),
    };
    assert!(!broker.recover(&ch, Some(&since)).await.unwrap().recovered);
    broker.sweep(Duration::from_millis(10));
    assert_eq!(broker.stream_count(), 0);
}

#[tokio::test]
async fn streams_with_subscribers_are_never_swept() {
    use crate::hub::{ConnectionHandle, WireFormat};
    use crate::publication::Audience;
    let hub = Arc::new(Hub::default());
    let broker = MemoryBroker::new(Arc::clone(&hub));
    let ch = ChannelName::parse("conn:live").unwrap();
    let (conn, mut rx) = ConnectionHandle::new("c".into(), WireFormat::Native, Audience::Agent, 8);
    hub.subscribe(&ch, &conn);
    let data = PublicationData::shared(&1).unwrap();
    let first = broker
        .publish(&ch, "e", data.clone(), policy(0))
        .await
        .unwrap();
    broker.sweep(Duration::ZERO);
    assert_eq!(broker.stream_count(), 1);
    let second = broker.publish(&ch, "e", data, policy(0)).await.unwrap();
    assert_eq!((second.offset, &second.epoch), (2, &first.epoch));
    assert!(rx.try_recv().is_some() && rx.try_recv().is_some());
    hub.unsubscribe(&ch, "c");
    broker.sweep(Duration::ZERO);
    assert_eq!(broker.stream_count(), 0);
}

#[tokio::test]
async fn reading_positions_of_channels_nobody_listens_to_keeps_no_state() {
    let broker = MemoryBroker::new(Arc::new(Hub::default()));
    let mut epochs = std::collections::HashSet::new();
    for i in 0..1000 {
        let ch = ChannelName::parse(&format!("missions:new-{i}")).unwrap();
        let r = broker.recover(&ch, None).await.unwrap();
        assert_eq!(r.position.offset, 0);
        epochs.insert(r.position.epoch);
    }
    assert_eq!(broker.stream_count(), 0, "a position read created streams");
    assert_eq!(
        epochs.len(),
        1,
        "absent channels share the generation's epoch"
    );
}

#[tokio::test]
async fn an_absent_channel_and_its_first_publications_are_one_history() {
    let broker = MemoryBroker::new(Arc::new(Hub::default()));
    let ch = ChannelName::parse("room:first").unwrap();
    let before = broker.recover(&ch, None).await.unwrap().position;
    let up_to_date = broker.recover(&ch, Some(&before)).await.unwrap();
    assert!(up_to_date.recovered, "nothing was missed");
    let p = broker
        .publish(&ch, "e", PublicationData::shared(&1).unwrap(), policy(10))
        .await
        .unwrap();
    assert_eq!(*p.epoch, *before.epoch);
    let r = broker.recover(&ch, Some(&before)).await.unwrap();
    assert!(r.recovered);
    assert_eq!(r.publications.len(), 1);
}

#[tokio::test]
async fn the_last_subscriber_leaving_frees_a_stream_with_nothing_live() {
    use crate::hub::{ConnectionHandle, WireFormat};
    use crate::publication::Audience;
    let hub = Arc::new(Hub::default());
    let broker = MemoryBroker::new(Arc::clone(&hub));
    let (conn, _rx) = ConnectionHandle::new("c".into(), WireFormat::Native, Audience::Agent, 8);
    for i in 0..100 {
        let ch = ChannelName::parse(&format!("room:sub-{i}")).unwrap();
        hub.subscribe(&ch, &conn);
        broker.on_subscribe(&ch).await.unwrap();
        broker.recover(&ch, None).await.unwrap();
        hub.unsubscribe(&ch, "c");
        broker.on_unsubscribe(&ch);
    }
    assert_eq!(
        broker.stream_count(),
        0,
        "subscribe/unsubscribe left streams"
    );

    // A stream with live history stays for the next subscriber.
    let ch = ChannelName::parse("room:kept").unwrap();
    hub.subscribe(&ch, &conn);
    let p = broker
        .publish(&ch, "e", PublicationData::shared(&1).unwrap(), policy(10))
        .await
        .unwrap();
    hub.unsubscribe(&ch, "c");
    broker.on_unsubscribe(&ch);
    assert_eq!(broker.stream_count(), 1);
    let since = StreamPosition {
        offset: 0,
        epoch: p.epoch.to_string(),
    };
    assert_eq!(
        broker
            .recover(&ch, Some(&since))
            .await
            .unwrap()
            .publications
            .len(),
        1
    );
}

#[tokio::test]
async fn a_forgotten_stream_never_reuses_an_epoch() {
    let broker = MemoryBroker::new(Arc::new(Hub::default()));
    let ch = ChannelName::parse("conn:gone").unwrap();
    let short = HistoryPolicy {
        size: 10,
        ttl: Duration::from_millis(20),
    };
    let first = broker
        .publish(&ch, "e", PublicationData::shared(&1).unwrap(), short)
        .await
        .unwrap();
    std::thread::sleep(Duration::from_millis(30));
    broker.sweep(Duration::from_secs(600));
    assert_eq!(
        broker.stream_count(),
        0,
        "expired history is released at its TTL"
    );
    let absent = broker.recover(&ch, None).await.unwrap().position;
    assert_ne!(absent.epoch, *first.epoch);
    let second = broker
        .publish(&ch, "e", PublicationData::shared(&2).unwrap(), short)
        .await
        .unwrap();
    assert_eq!(second.offset, 1);
    assert_ne!(second.epoch, first.epoch);
    let old = StreamPosition {
        offset: 1,
        epoch: first.epoch.to_string(),
    };
    assert!(!broker.recover(&ch, Some(&old)).await.unwrap().recovered);
}

fn once(key: &str, window_ms: u64) -> OnceKey {
    OnceKey {
        key: key.to_owned(),
        window: Duration::from_millis(window_ms),
    }
}

// Change capture's fencing (issue 16): a change published by the node that took it over and
// again by the slow node that had it first reaches subscribers once.
#[tokio::test]
async fn publish_once_publishes_a_key_once_per_channel_within_its_window() {
    let broker = MemoryBroker::new(Arc::new(Hub::default()));
    let a = ChannelName::parse("missions").unwrap();
    let b = ChannelName::parse("missions:1").unwrap();
    let data = PublicationData::shared(&1).unwrap();
    let first = broker
        .publish_once(&a, "e", data.clone(), policy(10), &once("c7", 200))
        .await
        .unwrap()
        .expect("a new key is published");
    assert_eq!(first.offset, 1);
    let again = broker
        .publish_once(&a, "e", data.clone(), policy(10), &once("c7", 200))
        .await
        .unwrap();
    assert!(
        again.is_none(),
        "a repeated key must not publish: {again:?}"
    );
    // Nothing was taken: the next publication is offset 2, and history holds one entry.
    let other = broker
        .publish_once(&a, "e", data.clone(), policy(10), &once("c8", 200))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.offset, 2);
    let since = StreamPosition {
        offset: 0,
        epoch: first.epoch.to_string(),
    };
    let r = broker.recover(&a, Some(&since)).await.unwrap();
    assert_eq!(r.publications.len(), 2);
    // Keys are per channel.
    assert!(
        broker
            .publish_once(&b, "e", data.clone(), policy(10), &once("c7", 200))
            .await
            .unwrap()
            .is_some()
    );
    // After the window, the same key publishes again.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let later = broker
        .publish_once(&a, "e", data, policy(10), &once("c7", 200))
        .await
        .unwrap()
        .expect("the window has passed");
    assert_eq!(later.offset, 3);
}

// The keys one channel remembers are bounded: the oldest are forgotten first.
#[tokio::test]
async fn publish_once_keys_are_bounded_per_channel() {
    let broker = MemoryBroker::new(Arc::new(Hub::default()));
    let ch = ChannelName::parse("missions").unwrap();
    let data = PublicationData::shared(&1).unwrap();
    for i in 0..=memory::ONCE_KEYS {
        let key = once(&format!("k{i}"), 60_000);
        assert!(
            broker
                .publish_once(&ch, "e", data.clone(), policy(0), &key)
                .await
                .unwrap()
                .is_some()
        );
    }
    // `k0` was the oldest and has been forgotten; `k1` is still remembered.
    let k0 = broker
        .publish_once(&ch, "e", data.clone(), policy(0), &once("k0", 60_000))
        .await
        .unwrap();
    assert!(k0.is_some());
    let k2 = broker
        .publish_once(&ch, "e", data, policy(0), &once("k2", 60_000))
        .await
        .unwrap();
    assert!(k2.is_none());
}
