//! Redis going away and coming back, through a TCP proxy on 127.0.0.1 the test can cut: the
//! node turns not ready, publishes fail loudly, and after the cut heals the feed reconnects,
//! resubscribes, and delivers again without a gap.

// Tests fail loudly: a panic is the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestNode, delete_prefix, next_delivery, redis_or_skip, unique_prefix};
use switchboard_core::broker::{Broker, BrokerError, HistoryPolicy};
use switchboard_core::channel::ChannelName;
use switchboard_core::publication::PublicationData;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards 127.0.0.1:<port> to the test Redis while `up` is true; cutting drops every open
/// connection and refuses new ones (accepts and closes them at once).
async fn proxy(up: watch::Receiver<bool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            if !*up.borrow() {
                drop(client);
                continue;
            }
            let mut up = up.clone();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect("127.0.0.1:6379").await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = up.wait_for(|u| !*u) => {}
                }
            });
        }
    });
    port
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} never happened");
}

#[tokio::test]
async fn redis_outage_is_loud_and_the_feed_recovers() {
    let Some(mut admin) = redis_or_skip("redis_outage_is_loud_and_the_feed_recovers").await else {
        return;
    };
    let (up_tx, up_rx) = watch::channel(true);
    let port = proxy(up_rx).await;
    let prefix = unique_prefix();
    let node = Arc::new(TestNode::new(&format!("redis://127.0.0.1:{port}"), &prefix));
    let direct = TestNode::new(common::REDIS_URL, &prefix);
    node.connected().await;
    assert!(node.broker.is_ready().await);
    let ch = ChannelName::parse("missions").unwrap();
    let policy = HistoryPolicy {
        size: 100,
        ttl: Duration::from_secs(60),
    };
    let data = || PublicationData::shared(&1).unwrap();
    let mut rx = node.subscribe("c", &ch).await;
    let p1 = direct
        .broker
        .publish(&ch, "e", data(), policy)
        .await
        .unwrap();
    assert_eq!(next_delivery(&mut rx).await.0, p1.offset);

    // Cut: not ready, publishing through the cut node fails loudly.
    up_tx.send_replace(false);
    eventually("readiness turning false", async || {
        !node.broker.is_ready().await
    })
    .await;
    let err = node
        .broker
        .publish(&ch, "e", data(), policy)
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::Unavailable(_)), "{err:?}");
    // Meanwhile another node keeps publishing on the channel.
    let p2 = direct
        .broker
        .publish(&ch, "e", data(), policy)
        .await
        .unwrap();
    let p3 = direct
        .broker
        .publish(&ch, "e", data(), policy)
        .await
        .unwrap();

    // Heal: the feed reconnects, resubscribes, and fills what it missed from history.
    up_tx.send_replace(true);
    eventually("readiness returning", async || node.broker.is_ready().await).await;
    assert_eq!(next_delivery(&mut rx).await.0, p2.offset);
    assert_eq!(next_delivery(&mut rx).await.0, p3.offset);
    let p4 = node.broker.publish(&ch, "e", data(), policy).await.unwrap();
    assert_eq!(next_delivery(&mut rx).await.0, p4.offset);
    assert_eq!(p4.offset, p1.offset + 3);
    delete_prefix(&mut admin, &prefix).await;
}
