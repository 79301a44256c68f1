//! Server-Sent Events at `/events` (SPEC §4.3) over a real streaming HTTP client: framing,
//! audiences, several channels in one stream, resume by `Last-Event-ID` and `?since=`, history
//! gone, permissions, heartbeat comments, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use common::feeds::*;
use common::*;
use serde_json::json;
use switchboard_core::auth::Role;
use switchboard_core::channel::ChannelName;
use switchboard_core::cursor::Cursor;
use switchboard_core::publication::StreamPosition;

fn ch(name: &str) -> ChannelName {
    ChannelName::parse(name).unwrap()
}

async fn put(server: &TestServer, id: i64, location: &str) {
    let res = put_mission(server, id, Some(&hq()), json!({ "location": location })).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn connected_first_then_native_deliveries_with_cursor_ids() {
    let server = TestServer::start().await;
    let mut anon = Sse::open(&server, "channels=missions", &[]).await;
    assert_eq!(anon.response.headers()["content-type"], "text/event-stream");
    let first = anon.next_block().await.unwrap();
    assert!(
        anon.raw.starts_with("data: {\"type\":\"connected\"}\n"),
        "{:?}",
        anon.raw
    );
    assert_eq!(first.json(), json!({"type":"connected"}));
    assert_eq!(first.retry, Some(3000));
    let start = Cursor::decode(first.id.as_deref().unwrap()).unwrap();
    let at = start.get(&ch("missions")).unwrap().offset;

    let hq_token = hq();
    let mut hq_sse = Sse::open(&server, &format!("channels=missions&token={hq_token}"), &[]).await;
    hq_sse.next_event().await;

    let before: serde_json::Value = reqwest::get(server.http("/missions/1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(before["location"], "Lisbon");
    put(&server, 1, "Lisbon").await;
    let ev = anon.next_event().await;
    assert_eq!(ev.event.as_deref(), Some("mission-update"));
    let d = ev.json();
    assert_eq!(d["type"], "mission-update");
    assert_eq!(d["channel"], "missions");
    assert_eq!(d["offset"].as_u64().unwrap(), at + 1);
    assert_eq!(
        d["data"],
        json!({"id":1,"codename":"Nightingale","status":before["status"],"location":"Lisbon"})
    );
    assert!(d["data"].get("objective").is_none());
    // The id is the cursor after this event: same epoch, offset moved on.
    let cursor = Cursor::decode(ev.id.as_deref().unwrap()).unwrap();
    assert_eq!(
        cursor.get(&ch("missions")),
        Some(&StreamPosition {
            offset: at + 1,
            epoch: d["epoch"].as_str().unwrap().to_owned()
        })
    );
    // The exact bytes of the event: id, event, data = the native delivery JSON.
    assert!(
        anon.raw.ends_with(&format!(
            "id: {}\nevent: mission-update\ndata: {}\n\n",
            ev.id.as_deref().unwrap(),
            ev.data.as_deref().unwrap()
        )),
        "{:?}",
        anon.raw
    );
    // HQ's stream carries HQ's DTO; classified fields never.
    let h = hq_sse.next_event().await.json();
    assert_eq!(h["data"]["location"], "Lisbon");
    assert!(h["data"]["objective"].is_string());
    for raw in [&anon.raw, &hq_sse.raw] {
        for secret in ["handler_notes", "asset_identity", "extraction_code"] {
            assert!(!raw.contains(secret));
        }
    }
}

#[tokio::test]
async fn several_channels_share_one_stream_and_one_cursor() {
    let server = TestServer::start().await;
    let mut sse = Sse::open(&server, "channels=missions,lobby", &[]).await;
    sse.next_event().await;
    put(&server, 2, "Oslo").await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.send(json!({"type":"chat","message":"hello"})).await;
    let a = sse.next_event().await;
    let b = sse.next_event().await;
    assert_eq!(a.event.as_deref(), Some("mission-update"));
    assert_eq!(b.event.as_deref(), Some("chat"));
    assert_eq!(b.json()["data"]["message"], "hello");
    let cursor = Cursor::decode(b.id.as_deref().unwrap()).unwrap();
    assert_eq!(cursor.len(), 2);
    assert_eq!(
        cursor.get(&ch("lobby")).unwrap().offset,
        b.json()["offset"].as_u64().unwrap()
    );
    assert_eq!(
        cursor.get(&ch("missions")).unwrap().offset,
        a.json()["offset"].as_u64().unwrap()
    );
}

/// Disconnect, five publications, reconnect with `Last-Event-ID`: exactly those five, in
/// order, then live ones.
#[tokio::test]
async fn last_event_id_resumes_exactly_then_live() {
    let server = TestServer::start().await;
    let mut sse = Sse::open(&server, "channels=missions", &[]).await;
    sse.next_event().await;
    put(&server, 3, "A").await;
    let seen = sse.next_event().await;
    let last_id = seen.id.clone().unwrap();
    let last_offset = seen.json()["offset"].as_u64().unwrap();
    drop(sse);

    let locations = ["B", "C", "D", "E", "F"];
    for loc in locations {
        put(&server, 3, loc).await;
    }
    let mut sse = Sse::open(&server, "channels=missions", &[("Last-Event-ID", &last_id)]).await;
    let connected = sse.next_event().await;
    assert_eq!(connected.json()["type"], "connected");
    assert_eq!(connected.id.as_deref(), Some(last_id.as_str()));
    let notice = sse.next_event().await;
    assert_eq!(notice.event.as_deref(), Some("subscribed"));
    assert_eq!(notice.id, None);
    assert_eq!(notice.json()["recovered"], true);
    assert_eq!(notice.json()["offset"].as_u64().unwrap(), last_offset + 5);
    let mut got = Vec::new();
    for _ in 0..5 {
        let d = sse.next_event().await.json();
        got.push((
            d["offset"].as_u64().unwrap(),
            d["data"]["location"].as_str().unwrap().to_owned(),
        ));
    }
    let want: Vec<_> = (1..=5)
        .map(|i| last_offset + i)
        .zip(locations.map(String::from))
        .collect();
    assert_eq!(got, want);
    sse.expect_no_event(Duration::from_millis(150)).await;
    put(&server, 3, "G").await;
    let live = sse.next_event().await.json();
    assert_eq!(live["offset"].as_u64().unwrap(), last_offset + 6);
    assert_eq!(live["data"]["location"], "G");
}

#[tokio::test]
async fn since_query_resumes_and_a_lost_history_says_so() {
    let server = TestServer::start().await;
    let mut sse = Sse::open(&server, "channels=missions,lobby", &[]).await;
    let start = sse.next_event().await.id.clone().unwrap();
    drop(sse);
    put(&server, 4, "X").await;
    // ?since= works like Last-Event-ID.
    let mut sse = Sse::open(&server, &format!("channels=missions&since={start}"), &[]).await;
    sse.next_event().await;
    assert_eq!(sse.next_event().await.json()["recovered"], true);
    assert_eq!(sse.next_event().await.json()["data"]["location"], "X");

    // A cursor from another epoch (history gone): told per channel, nothing replayed, live
    // publications follow from the current position.
    let mut bogus = Cursor::new();
    bogus.set(
        ch("missions"),
        StreamPosition {
            offset: 1,
            epoch: "bogus".into(),
        },
    );
    let mut sse = Sse::open(
        &server,
        "channels=missions,lobby",
        &[("Last-Event-ID", &bogus.encode())],
    )
    .await;
    sse.next_event().await;
    let mut notices = Vec::new();
    for _ in 0..2 {
        let n = sse.next_event().await;
        assert_eq!(n.event.as_deref(), Some("subscribed"));
        let j = n.json();
        notices.push((
            j["channel"].as_str().unwrap().to_owned(),
            j["recovered"].clone(),
        ));
    }
    notices.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        notices,
        [
            ("lobby".to_owned(), json!(false)),
            ("missions".to_owned(), json!(false))
        ]
    );
    sse.expect_no_event(Duration::from_millis(150)).await;
    put(&server, 4, "Y").await;
    assert_eq!(sse.next_event().await.json()["data"]["location"], "Y");
}

#[tokio::test]
async fn refusals_come_before_the_stream() {
    let server = TestServer::start().await;
    let status_and_body = |query: &'static str, headers: Vec<(&'static str, String)>| {
        let server = &server;
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let res = Sse::request(server, query, &h).await;
            let status = res.status().as_u16();
            let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
            assert!(ct.starts_with("application/json"), "{ct}");
            (status, res.json::<serde_json::Value>().await.unwrap())
        }
    };
    // Anonymous: public namespaces only.
    let (s, b) = status_and_body("channels=missions,city:nairobi", vec![]).await;
    assert_eq!(s, 403, "{b}");
    assert!(b["error"].as_str().unwrap().contains("city:nairobi"));
    // A token without the channel.
    let (s, _) = status_and_body(
        "channels=city:nairobi",
        vec![(
            "Authorization",
            format!("Bearer {}", token("u", Role::Agent, &[])),
        )],
    )
    .await;
    assert_eq!(s, 403);
    // Bad tokens, by query and by header.
    let (s, b) = status_and_body("channels=missions&token=nope", vec![]).await;
    assert_eq!((s, b["error"].as_str().unwrap()), (401, "Invalid token"));
    let (s, _) = status_and_body(
        "channels=missions",
        vec![("Authorization", "Bearer nope".into())],
    )
    .await;
    assert_eq!(s, 401);
    // Malformed requests.
    let (s, b) = status_and_body("channels=a%20b", vec![]).await;
    assert_eq!((s, b["field"].as_str().unwrap()), (400, "channels"));
    let (s, _) = status_and_body("", vec![]).await;
    assert_eq!(s, 400);
    let (s, b) = status_and_body(
        "channels=missions",
        vec![("Last-Event-ID", "not-a-cursor!".into())],
    )
    .await;
    assert_eq!((s, b["field"].as_str().unwrap()), (400, "Last-Event-ID"));
    assert!(b["error"].as_str().unwrap().starts_with("Invalid cursor"));
    let (s, _) = status_and_body("channels=missions&since=AA", vec![]).await;
    assert_eq!(s, 400);

    // Allowed by the token's patterns: by query token and by bearer header.
    let t = token("u", Role::Agent, &["city:*"]);
    let mut sse = Sse::open(&server, &format!("channels=city:nairobi&token={t}"), &[]).await;
    assert_eq!(sse.next_event().await.json()["type"], "connected");
    let bearer = format!("Bearer {t}");
    let mut sse = Sse::open(
        &server,
        "channels=city:nairobi",
        &[("Authorization", &bearer)],
    )
    .await;
    assert_eq!(sse.next_event().await.json()["type"], "connected");
}

#[tokio::test]
async fn heartbeat_comments_keep_idle_streams_alive() {
    let server = TestServer::start_with(|c| c.sse.heartbeat_ms = 100).await;
    let mut sse = Sse::open(&server, "channels=lobby", &[]).await;
    sse.next_event().await;
    let started = std::time::Instant::now();
    let block = sse.next_block().await.unwrap();
    assert_eq!(block.comments, ["ping"]);
    assert_eq!(block.data, None);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(sse.raw.ends_with("\n\n: ping\n\n"), "{:?}", sse.raw);
}

#[tokio::test]
async fn shutdown_ends_streams_with_a_close_notice() {
    let mut server = TestServer::start_with(|c| c.shutdown.grace_ms = 3000).await;
    let mut sse = Sse::open(&server, "channels=missions", &[]).await;
    sse.next_event().await;
    let started = std::time::Instant::now();
    let done = server.stop();
    let close = sse.next_event().await;
    assert_eq!(close.event.as_deref(), Some("close"));
    assert_eq!(
        close.json(),
        json!({"type":"close","code":1012,"reason":"Server restarting","reconnect":true})
    );
    assert_eq!(sse.next_block().await, None, "stream ends");
    let result = tokio::time::timeout(Duration::from_secs(5), done)
        .await
        .expect("server stopped in time");
    assert!(result.unwrap().is_ok());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not wait for the grace period"
    );
}
