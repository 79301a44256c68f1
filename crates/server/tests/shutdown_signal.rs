//! Graceful shutdown of the real binary (SPEC §5): SIGTERM closes WebSockets with 1012, ends
//! SSE streams with a close notice, answers waiting long-polls, and the process exits within
//! `shutdown.grace_ms`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::{Duration, Instant};

use common::feeds::Sse;
use common::*;
use serde_json::Value;

#[tokio::test]
async fn sigterm_closes_with_1012_and_exits_within_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let grace = Duration::from_millis(4000);
    let mut cmd = common::bin::command(dir.path());
    cmd.env("SWITCHBOARD_AUTH__JWT_SECRET", SECRET)
        .env(
            "SWITCHBOARD_SHUTDOWN__GRACE_MS",
            grace.as_millis().to_string(),
        )
        // `feed joined` (debug) says when a feed is registered: the test waits for it.
        .env("RUST_LOG", "warn,switchboard::transports::feed=debug");
    let mut server = common::bin::spawn(cmd).await;
    let addr = server.addr;
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let joined = || {
        server
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("feed joined"))
            .count()
    };

    let mut ws = Ws::connect(&format!("ws://{addr}/ws")).await;
    ws.subscribe("missions").await;
    let mut sse = Sse::from_response(
        client
            .get(format!("{base}/events?channels=missions"))
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(sse.next_event().await.json()["type"], "connected");
    let first: Value = client
        .get(format!("{base}/poll?channels=lobby"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let poller = tokio::spawn({
        let url = format!(
            "{base}/poll?channels=lobby&cursor={}&timeout=30",
            first["cursor"].as_str().unwrap()
        );
        async move {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    });
    // The SSE stream's feed and the waiting poll's feed are both registered.
    let deadline = Instant::now() + Duration::from_secs(5);
    while joined() < 2 {
        assert!(Instant::now() < deadline, "the long-poll never registered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!poller.is_finished(), "the long-poll is waiting");

    let started = Instant::now();
    server.signal("TERM");

    assert_eq!(ws.close_code().await, 1012);
    let close = sse.next_event().await;
    assert_eq!(close.event.as_deref(), Some("close"));
    assert_eq!(close.json()["code"], 1012);
    assert_eq!(sse.next_block().await, None);
    let (poll_status, poll_body) = tokio::time::timeout(Duration::from_secs(5), poller)
        .await
        .expect("long-poll answered")
        .unwrap();
    assert_eq!(poll_status, 200);
    assert_eq!(poll_body["updates"], serde_json::json!([]));

    let exit = tokio::time::timeout(grace + Duration::from_secs(2), server.child.wait())
        .await
        .expect("process exited within the grace period")
        .unwrap();
    let took = started.elapsed();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(took < grace, "took {took:?}");
    println!("SIGTERM → exit in {took:?} (grace {grace:?})");
}
