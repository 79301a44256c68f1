//! Long-polling at `/poll` (SPEC §4.4) with a real HTTP client: first poll, immediate answers,
//! waiting, timeouts, resume after a disconnect, history gone, refusals, shutdown, and a race
//! check (publications while polling are neither missed nor duplicated).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::{Duration, Instant};

use common::feeds::*;
use common::*;
use serde_json::{Value, json};
use switchboard_core::auth::Role;
use switchboard_core::channel::ChannelName;
use switchboard_core::cursor::Cursor;
use switchboard_core::publication::StreamPosition;

async fn put(server: &TestServer, id: i64, location: &str) {
    let res = put_mission(server, id, Some(&hq()), json!({ "location": location })).await;
    assert_eq!(res.status(), 200);
}

fn cursor_of(body: &Value) -> String {
    body["cursor"].as_str().expect("cursor").to_owned()
}

#[tokio::test]
async fn first_poll_answers_at_once_then_waits_for_news() {
    let logs = common::logs::LogCapture::start();
    let server = TestServer::start().await;
    let started = Instant::now();
    let (s, first) = poll(&server, "channels=missions,lobby", &[]).await;
    assert_eq!(s, 200);
    assert_eq!(first["updates"], json!([]));
    assert!(started.elapsed() < Duration::from_secs(1));
    let keys: Vec<_> = first.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["cursor", "updates"]);
    let cursor = cursor_of(&first);
    assert_eq!(Cursor::decode(&cursor).unwrap().len(), 2);

    // Nothing new: waits, and answers when something arrives.
    let waiter = {
        let url = format!("channels=missions,lobby&cursor={cursor}&timeout=10");
        let server_addr = server.addr;
        tokio::spawn(async move {
            let started = Instant::now();
            let res = reqwest::get(format!("http://{server_addr}/poll?{url}"))
                .await
                .unwrap();
            (started.elapsed(), res.json::<Value>().await.unwrap())
        })
    };
    // The poll has registered on both channels and found nothing: it is waiting.
    logs.wait_for("feed joined", 2).await;
    assert!(!waiter.is_finished(), "answered with nothing to answer");
    put(&server, 1, "Cairo").await;
    let (waited, body) = waiter.await.unwrap();
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let updates = body["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["type"], "mission-update");
    assert_eq!(updates[0]["channel"], "missions");
    assert_eq!(updates[0]["data"]["location"], "Cairo");
    assert!(updates[0]["data"].get("objective").is_none());
    let next = Cursor::decode(&cursor_of(&body)).unwrap();
    let missions = ChannelName::parse("missions").unwrap();
    assert_eq!(
        next.get(&missions).unwrap().offset,
        updates[0]["offset"].as_u64().unwrap()
    );

    // The same cursor again: answered at once with the same update (the cursor is the state).
    let started = Instant::now();
    let (_, again) = poll(
        &server,
        &format!("channels=missions,lobby&cursor={cursor}"),
        &[],
    )
    .await;
    assert_eq!(again["updates"], body["updates"]);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn timeout_answers_empty_with_the_same_positions() {
    let server = TestServer::start().await;
    let (_, first) = poll(&server, "channels=lobby", &[]).await;
    let cursor = cursor_of(&first);
    let started = Instant::now();
    let (s, body) = poll(
        &server,
        &format!("channels=lobby&cursor={cursor}&timeout=0.4"),
        &[],
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(s, 200);
    assert_eq!(body, json!({"updates":[],"cursor":cursor}));
    assert!(waited >= Duration::from_millis(350), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

/// Disconnect, five publications, poll with the old cursor: exactly those five, then live.
#[tokio::test]
async fn resume_after_a_disconnect_is_exact_then_live() {
    let logs = common::logs::LogCapture::start();
    let server = TestServer::start().await;
    let (_, first) = poll(&server, "channels=missions", &[]).await;
    let cursor = cursor_of(&first);
    let base = Cursor::decode(&cursor).unwrap();
    let base = base.iter().next().unwrap().1.offset;
    let locations = ["B", "C", "D", "E", "F"];
    for loc in locations {
        put(&server, 2, loc).await;
    }
    let (_, body) = poll(&server, &format!("channels=missions&cursor={cursor}"), &[]).await;
    assert_eq!(
        offsets(&body["updates"]),
        (base + 1..=base + 5).collect::<Vec<_>>()
    );
    let got: Vec<_> = body["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["data"]["location"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, locations);
    assert!(body.get("unrecovered").is_none());

    let next = cursor_of(&body);
    let joined = logs.count("feed joined");
    let waiter = {
        let addr = server.addr;
        tokio::spawn(async move {
            reqwest::get(format!(
                "http://{addr}/poll?channels=missions&cursor={next}&timeout=10"
            ))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
        })
    };
    logs.wait_for("feed joined", joined + 1).await;
    assert!(!waiter.is_finished());
    put(&server, 2, "G").await;
    let live = waiter.await.unwrap();
    assert_eq!(offsets(&live["updates"]), [base + 6]);
}

#[tokio::test]
async fn lost_history_is_stated_and_the_cursor_moves_to_now() {
    let server = TestServer::start().await;
    put(&server, 3, "Q").await;
    let mut bogus = Cursor::new();
    bogus.set(
        ChannelName::parse("missions").unwrap(),
        StreamPosition {
            offset: 1,
            epoch: "bogus".into(),
        },
    );
    let (s, body) = poll(
        &server,
        &format!("channels=missions&cursor={}&timeout=0", bogus.encode()),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["updates"], json!([]));
    assert_eq!(body["unrecovered"], json!(["missions"]));
    let now = Cursor::decode(&cursor_of(&body)).unwrap();
    let (_, current) = poll(&server, "channels=missions", &[]).await;
    assert_eq!(now, Cursor::decode(&cursor_of(&current)).unwrap());
    assert_ne!(now.iter().next().unwrap().1.epoch, "bogus");
}

#[tokio::test]
async fn refusals_and_audiences() {
    let server = TestServer::start().await;
    let (s, b) = poll(&server, "channels=missions&cursor=%%%", &[]).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = poll(&server, "channels=missions&cursor=Zm9v", &[]).await;
    assert_eq!((s, b["field"].as_str().unwrap()), (400, "cursor"), "{b}");
    assert!(b["error"].as_str().unwrap().starts_with("Invalid cursor"));
    let (s, _) = poll(&server, "channels=missions&timeout=soon", &[]).await;
    assert_eq!(s, 400);
    let (s, _) = poll(&server, "channels=user:someone", &[]).await;
    assert_eq!(s, 403);
    let (s, _) = poll(&server, "channels=missions&token=bad", &[]).await;
    assert_eq!(s, 401);

    // HQ's token by header gets HQ's DTO; its own user channel is allowed.
    let t = token("boss", Role::Hq, &[]);
    let bearer = format!("Bearer {t}");
    let h = [("Authorization", bearer.as_str())];
    let (s, first) = poll(&server, "channels=missions,user:boss", &h).await;
    assert_eq!(s, 200);
    put(&server, 4, "Rome").await;
    let (_, body) = poll(
        &server,
        &format!("channels=missions,user:boss&cursor={}", cursor_of(&first)),
        &h,
    )
    .await;
    assert!(
        body["updates"][0]["data"]["objective"].is_string(),
        "{body}"
    );
}

#[tokio::test]
async fn shutdown_answers_a_waiting_poll() {
    let logs = common::logs::LogCapture::start();
    let mut server = TestServer::start_with(|c| c.shutdown.grace_ms = 5000).await;
    let (_, first) = poll(&server, "channels=lobby", &[]).await;
    let cursor = cursor_of(&first);
    let addr = server.addr;
    let waiter = tokio::spawn(async move {
        let res = reqwest::get(format!(
            "http://{addr}/poll?channels=lobby&cursor={cursor}&timeout=30"
        ))
        .await
        .unwrap();
        (res.status().as_u16(), res.json::<Value>().await.unwrap())
    });
    logs.wait_for("feed joined", 1).await;
    assert!(!waiter.is_finished());
    let started = Instant::now();
    let done = server.stop();
    let (status, body) = tokio::time::timeout(Duration::from_secs(3), waiter)
        .await
        .expect("poll answered on shutdown")
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["updates"], json!([]));
    tokio::time::timeout(Duration::from_secs(3), done)
        .await
        .expect("server stopped")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// A publisher runs flat out while a client polls in a loop: every offset arrives exactly
/// once, in order — the register-before-history order closes the gap between polls.
#[tokio::test]
async fn polling_under_load_misses_nothing_and_repeats_nothing() {
    const N: u64 = 300;
    // Enough history that a slow machine never turns this into an `unrecovered` answer.
    let server = TestServer::start_with(|c| {
        if let Some(room) = c.namespaces.get_mut("room") {
            room.history_size = 10_000;
        }
        // One publisher sends every message: keep it under the client rate limit.
        c.limits.client_messages_per_minute = 10_000;
    })
    .await;
    let (_, first) = poll(&server, "channels=room:race", &[]).await;
    let mut cursor = cursor_of(&first);
    let mut publisher = Ws::connect(&server.ws_url("")).await;
    let pub_task = tokio::spawn(async move {
        for i in 0..N {
            publisher
                .send(json!({"type":"publish","channel":"room:race","event":"tick","data":i}))
                .await;
            if i % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // Keep the socket open until every publish has been answered.
        for _ in 0..N {
            publisher.recv_type("published").await;
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (seen.len() as u64) < N && Instant::now() < deadline {
        let (s, body) = poll(
            &server,
            &format!("channels=room:race&cursor={cursor}&timeout=2"),
            &[],
        )
        .await;
        assert_eq!(s, 200, "{body}");
        assert!(body.get("unrecovered").is_none(), "{body}");
        seen.extend(offsets(&body["updates"]));
        cursor = cursor_of(&body);
    }
    pub_task.await.unwrap();
    assert_eq!(seen, (1..=N).collect::<Vec<_>>());
}
