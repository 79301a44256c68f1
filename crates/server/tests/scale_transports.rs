//! Cross-node delivery for every transport: two nodes in one process sharing Redis (broker)
//! and PostgreSQL (store). A client on node A gets what was published through node B, over
//! Socket.IO, the native WebSocket, SSE and long-polling; payments settled on B reach the
//! socket on A; room chat and its transient notices cross nodes; a native client that loses
//! its node resumes on the other one without loss or duplicates while publications go on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;
#[path = "common/services.rs"]
#[allow(dead_code)] // shared helper; this file does not use every part of it
mod services;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::feeds::{Sse, poll};
use common::sio::{Packet, Sio};
use common::{TestServer, WAIT, Ws, hq, put_mission};
use serde_json::{Value, json};
use services::{Services, services_or_skip};

async fn node(s: &Services) -> TestServer {
    TestServer::start_with(|c| {
        s.configure(c);
        c.payments.processing_delay_ms = 100;
        c.payments.max_amount = 100.0;
    })
    .await
}

async fn put(server: &TestServer, id: i64, location: &str) {
    let res = put_mission(server, id, Some(&hq()), json!({ "location": location })).await;
    assert_eq!(res.status(), 200);
}

/// A Socket.IO client on `server` that has its `socket-id` and whose connect-time joins are
/// done: requests of one socket are handled in order, so the ack of a later request proves
/// the earlier joins (and their Redis subscriptions) completed.
async fn sio_ready(server: &TestServer) -> (Sio, String) {
    let mut s = Sio::connect(server.addr, None, None).await.unwrap();
    let id = s.recv_event("socket-id").await;
    s.emit_with_ack(900, "subscribe", json!("lobby")).await;
    assert_eq!(s.recv_ack(900).await["ok"], true);
    (s, id.as_str().unwrap().to_owned())
}

#[tokio::test]
async fn socketio_on_a_gets_a_mission_update_put_to_b() {
    let Some(s) = services_or_skip("socketio_on_a_gets_a_mission_update_put_to_b").await else {
        return;
    };
    let a = node(&s).await;
    let b = node(&s).await;
    let (mut on_a, _) = sio_ready(&a).await;
    let before: Value = reqwest::get(a.http("/missions/4"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(before["location"], "Bergen");

    put(&b, 4, "Bergen").await;
    let got = on_a.recv_event("mission-update").await;
    assert_eq!(
        got,
        json!({"id":4,"codename":"Silent Meridian","status":before["status"],"location":"Bergen"})
    );
    s.clean().await;
}

#[tokio::test]
async fn payment_posted_to_b_reaches_the_connection_on_a() {
    let Some(s) = services_or_skip("payment_posted_to_b_reaches_the_connection_on_a").await else {
        return;
    };
    let a = node(&s).await;
    let b = node(&s).await;
    let (mut sio, sid) = sio_ready(&a).await;
    let mut native = Ws::connect(&a.ws_url("")).await;
    // A bystander on B: a payment-status for a socket on A must not show up here.
    let (mut bystander, _) = sio_ready(&b).await;
    let client = reqwest::Client::new();
    let pay = |socket_id: String, amount: f64| {
        let client = client.clone();
        let url = b.http("/api/payments/make-payment-with-socket");
        async move {
            let res = client
                .post(url)
                .json(&json!({"amount": amount, "socketId": socket_id}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.unwrap();
            body["paymentId"].as_str().unwrap().to_owned()
        }
    };

    let id = pay(sid.clone(), 10.0).await;
    assert_eq!(sio.recv_event("payment-status").await, json!(true));
    // Settled in the shared store: node A reads what node B wrote.
    let stored: Value = reqwest::get(a.http(&format!("/api/payments/{id}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["status"], "succeeded");

    // A native connection on A, and a failed payment (over payments.max_amount).
    pay(native.connection_id.clone(), 150.0).await;
    let got = native.recv_type("payment-status").await;
    assert_eq!(got["data"], false);
    assert_eq!(got["channel"], format!("conn:{}", native.connection_id));

    // Neither the bystander nor the Socket.IO socket saw the native one's status: their next
    // packet is the answer to a request sent now.
    for other in [&mut bystander, &mut sio] {
        other.emit_with_ack(901, "subscribe", json!("lobby")).await;
        assert!(matches!(other.recv().await, Packet::Ack(901, _)));
    }
    s.clean().await;
}

#[tokio::test]
async fn sse_on_a_sees_b_and_resumes_on_b_with_last_event_id() {
    let Some(s) = services_or_skip("sse_on_a_sees_b_and_resumes_on_b").await else {
        return;
    };
    let a = node(&s).await;
    let b = node(&s).await;
    let mut sse = Sse::open(&a, "channels=missions", &[]).await;
    let connected = sse.next_event().await;
    assert_eq!(connected.json()["type"], "connected");

    put(&b, 2, "Oslo").await;
    let ev = sse.next_event().await;
    let first = ev.json();
    assert_eq!(ev.event.as_deref(), Some("mission-update"));
    assert_eq!(first["data"]["location"], "Oslo");
    let at = first["offset"].as_u64().unwrap();
    let last_id = ev.id.clone().unwrap();
    drop(sse);

    // Three publications while away, through both nodes; then resume on B.
    put(&b, 2, "Turku").await;
    put(&a, 2, "Tampere").await;
    put(&b, 2, "Espoo").await;
    let mut sse = Sse::open(&b, "channels=missions", &[("Last-Event-ID", &last_id)]).await;
    assert_eq!(sse.next_event().await.json()["type"], "connected");
    let notice = sse.next_event().await;
    assert_eq!(notice.event.as_deref(), Some("subscribed"));
    assert_eq!(notice.json()["recovered"], true, "{:?}", notice.data);
    let mut got = Vec::new();
    for _ in 0..3 {
        let d = sse.next_event().await.json();
        got.push((d["offset"].as_u64().unwrap(), d["data"]["location"].clone()));
    }
    assert_eq!(
        got,
        vec![
            (at + 1, json!("Turku")),
            (at + 2, json!("Tampere")),
            (at + 3, json!("Espoo"))
        ]
    );
    // Then live, published on the other node.
    put(&a, 2, "Vaasa").await;
    let live = sse.next_event().await.json();
    assert_eq!(
        (live["offset"].as_u64().unwrap(), &live["data"]["location"]),
        (at + 4, &json!("Vaasa"))
    );
    sse.expect_no_event(Duration::from_millis(300)).await;
    s.clean().await;
}

#[tokio::test]
async fn long_poll_on_a_is_answered_by_a_publication_on_b() {
    let Some(s) = services_or_skip("long_poll_on_a_is_answered_by_b").await else {
        return;
    };
    let a = node(&s).await;
    let b = node(&s).await;
    let (status, first) = poll(&a, "channels=missions", &[]).await;
    assert_eq!(status, 200);
    let cursor = first["cursor"].as_str().unwrap().to_owned();
    let waiting = {
        let url = a.http(&format!(
            "/poll?channels=missions&cursor={cursor}&timeout=10"
        ));
        tokio::spawn(async move { reqwest::get(url).await.unwrap().json::<Value>().await })
    };
    // The poll is registered on node A (its node subscribed to the channel's Redis feed;
    // node B has no subscriber) before anything is published, so the answer can only come
    // from the cross-node wake-up, not from history.
    s.wait_feed_subscribers("missions", 1).await;
    let started = std::time::Instant::now();
    put(&b, 5, "Quito").await;
    let body = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("long-poll answered")
        .unwrap()
        .unwrap();
    let updates = body["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1, "{body}");
    assert_eq!(updates[0]["data"]["location"], "Quito");
    assert!(started.elapsed() < WAIT, "woken, not timed out");
    s.clean().await;
}

/// The offsets and locations of the `mission-update` frames a native client saw.
fn updates_seen(ws: &Ws) -> Vec<(u64, String)> {
    ws.seen
        .iter()
        .map(|t| serde_json::from_str::<Value>(t).unwrap())
        .filter(|v| v["type"] == "mission-update")
        .map(|v| {
            (
                v["offset"].as_u64().unwrap(),
                v["data"]["location"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn native_client_losing_node_a_resumes_on_b_without_loss_or_duplicates() {
    const TOTAL: u64 = 40;
    let Some(s) = services_or_skip("native_client_losing_node_a_resumes_on_b").await else {
        return;
    };
    let mut a = node(&s).await;
    let b = node(&s).await;
    let mut on_a = Ws::connect(&a.ws_url("")).await;
    let sub = on_a.subscribe("missions").await;
    let epoch = sub["epoch"].as_str().unwrap().to_owned();
    let start = sub["offset"].as_u64().unwrap();

    // Publications through node B, one every 15 ms, going on while A stops and the client
    // moves: each PUT is one publication, so offset start + i carries location P<i>.
    let published = Arc::new(AtomicU64::new(0));
    let publisher = {
        let url = b.http("/missions/1");
        let published = Arc::clone(&published);
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 1..=TOTAL {
                let res = client
                    .put(&url)
                    .bearer_auth(hq())
                    .json(&json!({ "location": format!("P{i}") }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                published.store(i, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };

    for _ in 0..10 {
        on_a.recv_type("mission-update").await;
    }
    let stopped = a.stop();
    // Node A closes its WebSockets with 1012 (restarting); frames before the close are kept.
    assert_eq!(on_a.close_code().await, 1012);
    tokio::time::timeout(Duration::from_secs(15), stopped)
        .await
        .expect("node A stopped")
        .unwrap()
        .unwrap();
    let mut got = updates_seen(&on_a);
    let last = got.last().unwrap().0;
    assert!(
        last + 2 <= start + TOTAL,
        "publications must still be going on when the client moves (last {last})"
    );

    // Away long enough for two publications the client must recover from history.
    tokio::time::timeout(WAIT, async {
        while published.load(Ordering::SeqCst) < last - start + 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("publications went on while the client was away");
    let mut on_b = Ws::connect(&b.ws_url("")).await;
    on_b.send(
        json!({"type":"subscribe","channel":"missions","since":{"offset":last,"epoch":epoch}}),
    )
    .await;
    let resumed = on_b.recv_type("subscribed").await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    assert!(resumed["offset"].as_u64().unwrap() >= last + 2, "{resumed}");
    loop {
        let v = on_b.recv_type("mission-update").await;
        if v["offset"].as_u64() == Some(start + TOTAL) {
            break;
        }
    }
    tokio::time::timeout(WAIT, publisher)
        .await
        .expect("publisher done")
        .unwrap();
    on_b.expect_silence(Duration::from_millis(300)).await;
    got.extend(updates_seen(&on_b));
    let want: Vec<(u64, String)> = (1..=TOTAL).map(|i| (start + i, format!("P{i}"))).collect();
    assert_eq!(got, want, "exactly every publication, once, in order");
    s.clean().await;
}

#[tokio::test]
async fn room_chat_and_transient_notices_cross_nodes() {
    let Some(s) = services_or_skip("room_chat_and_transient_notices_cross_nodes").await else {
        return;
    };
    let a = node(&s).await;
    let b = node(&s).await;
    let (mut x, x_id) = sio_ready(&a).await;
    let (mut y, y_id) = sio_ready(&b).await;
    let mut native = Ws::connect(&b.ws_url("")).await;
    native.subscribe("room:r9").await;

    y.emit_with_ack(1, "join-room", json!("r9")).await;
    assert_eq!(
        y.recv_ack(1).await,
        json!({"ok": true, "channel": "room:r9"})
    );
    x.emit_with_ack(1, "join-room", json!("r9")).await;
    assert_eq!(x.recv_ack(1).await["ok"], true);
    // The joiner's notice (transient) reaches the others on the other node.
    assert_eq!(y.recv_event("user-joined").await, json!(x_id));

    x.emit("chat-message", json!({"roomId":"r9","message":"from A"}))
        .await;
    let at_y = y.recv_event("new-message").await;
    assert_eq!(at_y["message"], "from A");
    assert_eq!(at_y["sender"], json!(x_id));
    assert_eq!(x.recv_event("new-message").await, at_y);
    let at_native = native.recv_type("new-message").await;
    assert_eq!(at_native["data"], at_y);

    // Typing on A reaches B (and the native subscriber), never the typist.
    x.emit("typing", json!({"roomId":"r9"})).await;
    assert_eq!(y.recv_event("user-typing").await, json!(x_id));
    let typing = native.recv_type("user-typing").await;
    assert_eq!(typing["data"], json!(x_id));
    // And the other way round. x's next packet is y's notice, not its own.
    y.emit("typing", json!({"roomId":"r9"})).await;
    assert_eq!(
        x.recv().await,
        Packet::Event("user-typing".into(), json!(y_id))
    );
    // The next thing y gets after its own typing is its message.
    y.emit("chat-message", json!({"roomId":"r9","message":"from B"}))
        .await;
    match y.recv().await {
        Packet::Event(e, d) => assert_eq!(
            (e.as_str(), &d["message"]),
            ("new-message", &json!("from B"))
        ),
        other => panic!("{other:?}"),
    }
    // Likewise for x: the message, no notice of y's typing or its own in between.
    match x.recv().await {
        Packet::Event(e, d) => assert_eq!(
            (e.as_str(), d["sender"].clone()),
            ("new-message", json!(y_id))
        ),
        other => panic!("{other:?}"),
    }
    s.clean().await;
}
