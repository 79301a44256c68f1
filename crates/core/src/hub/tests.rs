use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::*;
use crate::channel::ChannelName;
use crate::codes::CloseCode;
use crate::publication::{Audience, Publication, PublicationData};

#[tokio::test]
async fn writer_closed_wakes_on_close_and_returns_at_once_after() {
    let (handle, _rx) =
        ConnectionHandle::new(Arc::from("w"), WireFormat::Native, Audience::Agent, 4);
    let waiter = {
        let handle = Arc::clone(&handle);
        tokio::spawn(async move { handle.writer_closed().await })
    };
    // Let the waiter register before the close.
    tokio::task::yield_now().await;
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    assert!(!waiter.is_finished());
    handle.close(CloseCode::SlowConsumer);
    let code = tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
        .await
        .expect("woken by close")
        .expect("task");
    assert_eq!(code, CloseCode::SlowConsumer);
    // Later calls see the first reason immediately.
    handle.close(CloseCode::Normal);
    assert_eq!(handle.writer_closed().await, CloseCode::SlowConsumer);
}

#[test]
fn queue_items_stay_small() {
    // Every queued item is one slot: tokio's channel allocated 32 of them up front (2.8 KiB at
    // 88 bytes, before the large variants were boxed; 1.3 KiB at 40); our queue grows with what
    // is queued, so the size is paid per item in a burst.
    assert!(
        std::mem::size_of::<Outbound>() <= 16,
        "Outbound is {} bytes",
        std::mem::size_of::<Outbound>()
    );
}

fn publication(channel: &ChannelName, offset: u64) -> Publication {
    Publication {
        channel: channel.clone(),
        event: Arc::from("e"),
        offset,
        epoch: Arc::from("x"),
        timestamp_ms: 1,
        data: PublicationData::by_audience(&"agent", &"hq").unwrap(),
    }
}

#[test]
fn fans_out_shared_bytes_per_audience() {
    let hub = Hub::default();
    let ch = ChannelName::parse("missions").unwrap();
    let (a1, mut r1) = ConnectionHandle::new("a1".into(), WireFormat::Native, Audience::Agent, 8);
    let (a2, mut r2) = ConnectionHandle::new("a2".into(), WireFormat::Native, Audience::Agent, 8);
    let (h1, mut r3) = ConnectionHandle::new("h1".into(), WireFormat::Native, Audience::Hq, 8);
    for c in [&a1, &a2, &h1] {
        assert!(hub.subscribe(&ch, c));
    }
    assert!(!hub.subscribe(&ch, &a1));
    hub.deliver(&publication(&ch, 1));
    let frame = |r: &mut OutboundReceiver| match r.try_recv().unwrap() {
        Outbound::Delivery(d) => d.frame.clone(),
        other => panic!("{other:?}"),
    };
    let (f1, f2, f3) = (frame(&mut r1), frame(&mut r2), frame(&mut r3));
    // Same allocation for the two agents: encoded once, shared.
    assert_eq!(f1.as_ptr(), f2.as_ptr());
    assert!(
        std::str::from_utf8(&f1)
            .unwrap()
            .contains("\"data\":\"agent\"")
    );
    assert!(
        std::str::from_utf8(&f3)
            .unwrap()
            .contains("\"data\":\"hq\"")
    );
    assert_eq!(hub.stats().deliveries.load(Ordering::Relaxed), 3);
}

#[test]
fn full_queue_closes_only_that_connection() {
    let hub = Hub::default();
    let ch = ChannelName::parse("lobby").unwrap();
    let (slow, _keep) = ConnectionHandle::new("s".into(), WireFormat::Native, Audience::Agent, 1);
    let (fast, mut rf) = ConnectionHandle::new("f".into(), WireFormat::Native, Audience::Agent, 8);
    hub.subscribe(&ch, &slow);
    hub.subscribe(&ch, &fast);
    hub.deliver(&publication(&ch, 1));
    hub.deliver(&publication(&ch, 2));
    assert_eq!(slow.close_reason(), Some(CloseCode::SlowConsumer));
    assert!(slow.overflowed() && !fast.overflowed());
    assert_eq!(fast.close_reason(), None);
    assert!(rf.try_recv().is_some() && rf.try_recv().is_some());
    assert_eq!(hub.stats().dropped.load(Ordering::Relaxed), 1);
}

#[test]
fn socketio_and_native_each_encoded_once_per_audience() {
    let hub = Hub::default();
    let ch = ChannelName::parse("missions").unwrap();
    let (n, mut rn) = ConnectionHandle::new("n".into(), WireFormat::Native, Audience::Agent, 8);
    let (s1, mut r1) = ConnectionHandle::new("s1".into(), WireFormat::SocketIo, Audience::Agent, 8);
    let (s2, mut r2) = ConnectionHandle::new("s2".into(), WireFormat::SocketIo, Audience::Agent, 8);
    let (sh, mut rh) = ConnectionHandle::new("sh".into(), WireFormat::SocketIo, Audience::Hq, 8);
    for c in [&n, &s1, &s2, &sh] {
        hub.subscribe(&ch, c);
    }
    hub.deliver(&publication(&ch, 1));
    let frame = |r: &mut OutboundReceiver| match r.try_recv().unwrap() {
        Outbound::Delivery(d) => {
            assert_eq!(d.offset, 1);
            d.frame.clone()
        }
        other => panic!("{other:?}"),
    };
    let (fs1, fs2) = (frame(&mut r1), frame(&mut r2));
    assert_eq!(
        &fs1[..],
        br#"42["e","agent",{"channel":"missions","offset":1,"epoch":"x"}]"#
    );
    assert_eq!(
        fs1.as_ptr(),
        fs2.as_ptr(),
        "one encoding shared by both sockets"
    );
    assert_eq!(
        &frame(&mut rh)[..],
        br#"42["e","hq",{"channel":"missions","offset":1,"epoch":"x"}]"#
    );
    assert!(frame(&mut rn).starts_with(br#"{"type":"e""#));
}

#[test]
fn transient_skips_the_excluded_connection() {
    let hub = Hub::default();
    let ch = ChannelName::parse("room:7").unwrap();
    let (a, mut ra) = ConnectionHandle::new("a".into(), WireFormat::SocketIo, Audience::Agent, 8);
    let (b, mut rb) = ConnectionHandle::new("b".into(), WireFormat::Native, Audience::Agent, 8);
    hub.subscribe(&ch, &a);
    hub.subscribe(&ch, &b);
    hub.deliver_transient(&publication(&ch, 3), Some("a"));
    assert!(
        ra.try_recv().is_none(),
        "the excluded connection gets nothing"
    );
    match rb.try_recv().unwrap() {
        Outbound::Transient(t) => {
            assert_eq!(t.channel, ch);
            assert!(
                std::str::from_utf8(&t.frame)
                    .unwrap()
                    .contains("\"type\":\"e\"")
            );
        }
        other => panic!("{other:?}"),
    }
    hub.deliver_transient(&publication(&ch, 3), None);
    assert!(matches!(ra.try_recv(), Some(Outbound::Transient(_))));
    assert!(matches!(rb.try_recv(), Some(Outbound::Transient(_))));
}

#[test]
fn unsubscribe_removes_empty_channels() {
    let hub = Hub::default();
    let ch = ChannelName::parse("room:1").unwrap();
    let (c, _r) = ConnectionHandle::new("c".into(), WireFormat::Native, Audience::Agent, 8);
    hub.subscribe(&ch, &c);
    assert!(hub.has_subscribers(&ch));
    assert!(hub.unsubscribe(&ch, "c"));
    assert!(!hub.has_subscribers(&ch));
    assert!(!hub.unsubscribe(&ch, "c"));
    assert_eq!(hub.stats().subscriptions.load(Ordering::Relaxed), 0);
}

#[test]
fn protocol_types_and_library_names_are_wire_reserved() {
    use crate::protocol::{PresenceMember, ServerMessage, decode, encode_reply};
    let member = PresenceMember {
        user: None,
        connection_id: "c".into(),
    };
    let replies = [
        ServerMessage::Welcome {
            message: "m",
            connection_id: "c",
            protocol: 1,
            heartbeat: 1,
        },
        ServerMessage::Authenticated { user: None },
        ServerMessage::AuthError { message: "m" },
        ServerMessage::Subscribed {
            channel: "a",
            offset: 0,
            epoch: "e",
            recovered: true,
        },
        ServerMessage::Unsubscribed { channel: "a" },
        ServerMessage::Published {
            channel: "a",
            offset: 1,
        },
        ServerMessage::Presence {
            channel: "a",
            members: std::slice::from_ref(&member),
        },
        ServerMessage::Pong,
        ServerMessage::Error {
            code: "c",
            message: "m",
        },
    ];
    for reply in &replies {
        let v: serde_json::Value = serde_json::from_str(&encode_reply(reply, None)).unwrap();
        let kind = v["type"].as_str().unwrap();
        assert!(is_wire_reserved(kind), "{kind} is not reserved");
    }
    for kind in ["auth", "subscribe", "unsubscribe", "publish", "ack", "ping"] {
        assert!(is_wire_reserved(kind));
        // A type the decoder knows, not an unknown one.
        let e = decode(&format!(r#"{{"type":"{kind}","x":1}}"#));
        assert!(
            !matches!(e, Err(ref e) if e.code == crate::codes::ErrorCode::UnknownType),
            "{kind}"
        );
    }
    for name in [
        "connect",
        "disconnect",
        "newListener",
        "close",
        "connected",
        "message",
    ] {
        assert!(is_wire_reserved(name));
    }
    for name in ["chat", "mission-update", "note", "user_joined", "socket-id"] {
        assert!(!is_wire_reserved(name), "{name}");
    }
}

#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<([usize; Transport::COUNT], usize, bool)>>);

impl FanOutObserver for Recorder {
    fn fanned_out(&self, f: &FanOut<'_>) {
        self.0
            .lock()
            .unwrap()
            .push((f.delivered, f.dropped, f.transient));
    }
}

#[test]
fn the_observer_sees_one_batch_per_fan_out_counted_by_transport() {
    let hub = Hub::default();
    let recorder = Arc::new(Recorder::default());
    assert!(hub.set_observer(recorder.clone()));
    assert!(
        !hub.set_observer(Arc::new(Recorder::default())),
        "only the first observer"
    );
    let ch = ChannelName::parse("missions").unwrap();
    let conns: Vec<_> = [
        Transport::WebSocket,
        Transport::WebSocket,
        Transport::SocketIo,
        Transport::Sse,
        Transport::Poll,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, t)| ConnectionHandle::for_transport(format!("c{i}").into(), t, Audience::Agent, 8))
    .collect();
    for (c, _) in &conns {
        hub.subscribe(&ch, c);
    }
    // A queue of one that is already full: the delivery to it is dropped.
    let (slow, _keep) =
        ConnectionHandle::for_transport("s".into(), Transport::Sse, Audience::Agent, 1);
    hub.subscribe(&ch, &slow);
    hub.deliver(&publication(&ch, 1));
    hub.deliver_transient(&publication(&ch, 1), Some("c0"));
    let seen = recorder.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one report per fan-out, not per subscriber");
    assert_eq!(seen[0], ([2, 1, 2, 1], 0, false));
    // The slow one's queue is full now; c0 is skipped as the cause.
    assert_eq!(seen[1], ([1, 1, 1, 1], 1, true));
    assert_eq!(conns[2].0.transport(), Transport::SocketIo);
    assert_eq!(conns[2].0.format(), WireFormat::SocketIo);
    assert_eq!(conns[3].0.format(), WireFormat::Native);
}

#[test]
fn channels_lists_by_prefix_with_counts() {
    let hub = Hub::default();
    let (a, _ra) = ConnectionHandle::new("a".into(), WireFormat::Native, Audience::Agent, 8);
    let (b, _rb) = ConnectionHandle::new("b".into(), WireFormat::Native, Audience::Agent, 8);
    for name in ["room:1", "room:2", "lobby"] {
        hub.subscribe(&ChannelName::parse(name).unwrap(), &a);
    }
    hub.subscribe(&ChannelName::parse("room:1").unwrap(), &b);
    let mut rooms: Vec<_> = hub
        .channels("room:", 100)
        .into_iter()
        .map(|(c, n)| (c.as_str().to_owned(), n))
        .collect();
    rooms.sort();
    assert_eq!(rooms, [("room:1".into(), 2), ("room:2".into(), 1)]);
    assert_eq!(hub.channels("", 100).len(), 3);
    assert_eq!(hub.channels("", 1).len(), 1, "the limit holds");
}
