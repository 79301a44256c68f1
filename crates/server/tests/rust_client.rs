//! The Rust client (`crates/client`, SPEC §9.2) against the real server: connect, subscribe
//! and receive, publish and presence over the socket, resume after a dropped connection with
//! nothing missed or repeated, a gap when the history is gone, the token refreshed in place,
//! and no reconnect after a close that says not to.
//!
//! A cut-able TCP proxy sits between client and server where the test needs the network to
//! drop: the server never sees a clean close, as after a real outage.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use common::proxy::Proxy;
use common::{SECRET, TestServer, WAIT, agent, hq, now, put_mission, token, token_with};
use serde_json::json;
use switchboard_client::{
    Client, ClientBuilder, ClientError, Publication, State, StreamPosition, Subscription,
    SubscriptionEvent,
};
use switchboard_core::auth::Role;

const FAST: (Duration, Duration) = (Duration::from_millis(20), Duration::from_millis(200));

async fn next(sub: &mut Subscription) -> SubscriptionEvent {
    tokio::time::timeout(WAIT, sub.next_event())
        .await
        .expect("timed out waiting for a subscription event")
        .expect("subscription ended")
}

async fn publication(sub: &mut Subscription) -> Publication {
    match next(sub).await {
        SubscriptionEvent::Publication(p) => p,
        other => panic!("expected a publication, got {other:?}"),
    }
}

async fn subscribed(sub: &mut Subscription) -> (StreamPosition, bool) {
    match next(sub).await {
        SubscriptionEvent::Subscribed {
            position,
            recovered,
        } => (position, recovered),
        other => panic!("expected subscribed, got {other:?}"),
    }
}

async fn update(server: &TestServer, location: &str) {
    let res = put_mission(server, 1, Some(&hq()), json!({ "location": location })).await;
    assert_eq!(res.status(), 200);
}

/// Waits until the client's state satisfies `f`.
async fn state_becomes(client: &Client, f: impl Fn(&State) -> bool) {
    let mut states = client.state_changes();
    tokio::time::timeout(WAIT, states.wait_for(|s| f(s)))
        .await
        .expect("timed out waiting for the client state")
        .expect("client task gone");
}

/// A server, a proxy in front of it, and a client connected through the proxy that
/// reconnects quickly.
async fn behind_a_proxy() -> (TestServer, Proxy, Client) {
    let server = TestServer::start().await;
    let proxy = Proxy::start(server.addr).await;
    let client = Client::builder(format!("ws://{}/ws", proxy.addr))
        .reconnect_delay(FAST.0, FAST.1)
        .connect()
        .await
        .unwrap();
    (server, proxy, client)
}

/// Connects (reconnecting quickly) and subscribes to `missions`, past its `subscribed`.
async fn on_missions(builder: ClientBuilder) -> (Client, Subscription) {
    let client = builder
        .reconnect_delay(FAST.0, FAST.1)
        .connect()
        .await
        .unwrap();
    let mut missions = client.subscribe("missions", None).unwrap();
    subscribed(&mut missions).await;
    (client, missions)
}

#[tokio::test]
async fn subscribes_receives_publishes_and_lists_presence() {
    let server = TestServer::start().await;
    let client = Client::connect(server.ws_url(""), Some(agent()))
        .await
        .unwrap();
    let mut missions = client.subscribe("missions", None).unwrap();
    let (at, recovered) = subscribed(&mut missions).await;
    assert!(!recovered);

    update(&server, "Lisbon").await;
    let p = publication(&mut missions).await;
    assert_eq!(
        (p.event.as_str(), p.channel.as_str()),
        ("mission-update", "missions")
    );
    assert_eq!(p.data["location"], "Lisbon");
    assert_eq!(p.position.offset, at.offset + 1);
    assert_eq!(p.position.epoch, at.epoch);
    assert!(p.data.get("objective").is_none(), "agent DTO: {}", p.data);

    let mut room = client.subscribe("room:rc", None).unwrap();
    subscribed(&mut room).await;
    let offset = client
        .publish("room:rc", "note", json!({"text":"hi"}))
        .await
        .unwrap();
    assert_eq!(offset, 1);
    let note = publication(&mut room).await;
    assert_eq!(
        (note.event.as_str(), note.data["text"].as_str()),
        ("note", Some("hi"))
    );
    let members = client.presence("room:rc").await.unwrap();
    let me = client.connection_id().unwrap();
    assert!(
        members
            .iter()
            .any(|m| m.connection_id == me && m.user.as_deref() == Some("agent-1")),
        "{members:?}"
    );
    // Refusals come back as errors, not as a dead client.
    let err = client
        .publish("missions", "note", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Refused { .. }), "{err:?}");
    let mut secret = client.subscribe("city:nairobi", None).unwrap();
    assert!(
        matches!(next(&mut secret).await, SubscriptionEvent::Refused { ref code, .. } if code == "forbidden")
    );
}

#[tokio::test]
async fn resumes_after_a_dropped_connection_without_missing_or_repeating() {
    let (server, proxy, client) = behind_a_proxy().await;
    let first_id = client.connection_id().unwrap();
    let mut missions = client.subscribe("missions", None).unwrap();
    let (start, _) = subscribed(&mut missions).await;
    update(&server, "a1").await;
    update(&server, "a2").await;
    let mut offsets = vec![
        publication(&mut missions).await.position.offset,
        publication(&mut missions).await.position.offset,
    ];

    proxy.cut();
    state_becomes(&client, |s| *s == State::Connecting).await;
    for l in ["b1", "b2", "b3"] {
        update(&server, l).await;
    }
    proxy.heal();
    let (_, recovered) = subscribed(&mut missions).await;
    assert!(recovered, "the history holds what was missed");
    assert_ne!(
        client.connection_id().unwrap(),
        first_id,
        "a new connection"
    );
    let mut locations = Vec::new();
    for _ in 0..3 {
        let p = publication(&mut missions).await;
        offsets.push(p.position.offset);
        locations.push(p.data["location"].as_str().unwrap().to_owned());
    }
    assert_eq!(locations, ["b1", "b2", "b3"]);
    update(&server, "live").await;
    let live = publication(&mut missions).await;
    offsets.push(live.position.offset);
    assert_eq!(live.data["location"], "live");
    let expected: Vec<u64> = (start.offset + 1..=start.offset + 6).collect();
    assert_eq!(offsets, expected, "each offset once, in order");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), missions.next_event())
            .await
            .is_err(),
        "nothing after the live one"
    );
}

#[tokio::test]
async fn a_lost_history_is_a_gap_and_the_stream_goes_on() {
    let (server, proxy, client) = behind_a_proxy().await;
    let mut missions = client.subscribe("missions", None).unwrap();
    let (old, _) = subscribed(&mut missions).await;
    update(&server, "before").await;
    publication(&mut missions).await;

    // The in-memory broker forgets everything on restart: a new epoch.
    proxy.cut();
    let server = server.restart(|_| {}).await;
    proxy.retarget(server.addr);
    proxy.heal();
    let (now_at, recovered) = subscribed(&mut missions).await;
    assert!(!recovered);
    assert_ne!(now_at.epoch, old.epoch);
    match next(&mut missions).await {
        SubscriptionEvent::Gap { position } => assert_eq!(position, now_at),
        other => panic!("expected a gap, got {other:?}"),
    }
    update(&server, "after").await;
    let p = publication(&mut missions).await;
    assert_eq!(p.data["location"], "after");
    assert_eq!(p.position.epoch, now_at.epoch);

    // A position from another epoch given by the caller is a gap at once.
    let mut again = client
        .subscribe(
            "lobby",
            Some(StreamPosition {
                offset: 3,
                epoch: "gone".into(),
            }),
        )
        .unwrap();
    assert!(!subscribed(&mut again).await.1);
    assert!(matches!(
        next(&mut again).await,
        SubscriptionEvent::Gap { .. }
    ));
}

#[tokio::test]
async fn a_refreshed_token_keeps_the_connection_past_the_old_expiry() {
    let server = TestServer::start().await;
    let short = token_with(SECRET, "alice", Role::Agent, &[], now() + 2);
    let client = Client::connect(server.ws_url(""), Some(short))
        .await
        .unwrap();
    let id = client.connection_id().unwrap();
    let mut missions = client.subscribe("missions", None).unwrap();
    subscribed(&mut missions).await;
    client
        .refresh_token(token("alice", Role::Agent, &[]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    update(&server, "still here").await;
    let p = publication(&mut missions).await;
    assert_eq!(p.data["location"], "still here");
    assert_eq!(client.connection_id(), Some(id), "the same connection");
}

#[tokio::test]
async fn an_expired_token_is_replaced_by_the_provider_and_the_stream_resumes() {
    let server = TestServer::start().await;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = calls.clone();
    let client = Client::builder(server.ws_url("")).token_provider(move || {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let exp = if n == 0 { now() + 2 } else { now() + 3600 };
            Ok::<_, String>(token_with(SECRET, "carol", Role::Agent, &[], exp))
        }
    });
    let (_client, mut missions) = on_missions(client).await;
    // The server closes with 4004 at expiry; the client asks for a new token and resumes.
    let (_, recovered) = tokio::time::timeout(Duration::from_secs(5), subscribed(&mut missions))
        .await
        .expect("resubscribed after expiry");
    assert!(recovered);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    update(&server, "renewed").await;
    assert_eq!(publication(&mut missions).await.data["location"], "renewed");
}

#[tokio::test]
async fn a_refused_token_stops_the_client_for_good() {
    let server = TestServer::start().await;
    // At connect: the error, no client.
    let err = Client::connect(server.ws_url(""), Some("not-a-jwt".into()))
        .await
        .err()
        .expect("refused");
    assert_eq!(err.close_code(), Some(4002), "{err:?}");

    // In place: the refresh fails, the server closes with 4002, and the client stays down.
    let client = Client::builder(server.ws_url("")).token(token("dave", Role::Agent, &[]));
    let (client, mut missions) = on_missions(client).await;
    let err = client.refresh_token("not-a-jwt").await.unwrap_err();
    assert!(matches!(err, ClientError::AuthRefused(_)), "{err:?}");
    assert_eq!(
        next(&mut missions).await,
        SubscriptionEvent::Stopped { code: Some(4002) }
    );
    assert_eq!(client.state(), State::Stopped { code: Some(4002) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.state(), State::Stopped { code: Some(4002) });
    assert!(
        matches!(client.subscribe("lobby", None), Err(ClientError::Stopped)),
        "the client's task is gone: nothing reconnects"
    );
}

/// WebSocket connections the server counts now (`/api/admin/stats`).
async fn websocket_connections(server: &TestServer) -> u64 {
    let admin = token("root", Role::Admin, &[]);
    let (_, stats) = common::get_json(&server.http("/api/admin/stats"), Some(&admin)).await;
    stats["nodes"][0]["connections"]["websocket"]
        .as_u64()
        .unwrap_or_else(|| panic!("{stats}"))
}

#[tokio::test]
async fn an_administrators_disconnect_is_not_undone_by_a_reconnect() {
    let server = TestServer::start().await;
    let builder = Client::builder(server.ws_url("")).token(token("erin", Role::Agent, &[]));
    let (client, mut missions) = on_missions(builder).await;
    assert_eq!(websocket_connections(&server).await, 1);
    let res = reqwest::Client::new()
        .post(server.http("/api/admin/disconnect"))
        .bearer_auth(token("root", Role::Admin, &[]))
        .json(&json!({"user":"erin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        next(&mut missions).await,
        SubscriptionEvent::Stopped { code: Some(4011) }
    );
    // Several backoff periods later the server still counts no connection of the client.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(websocket_connections(&server).await, 0);
    assert_eq!(client.state(), State::Stopped { code: Some(4011) });
}
