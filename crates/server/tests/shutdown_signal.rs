//! Graceful shutdown of the real binary (SPEC §5): SIGTERM closes WebSockets with 1012, ends
//! SSE streams with a close notice, answers waiting long-polls, and the process exits within
//! `shutdown.grace_ms`.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::feeds::Sse;
use common::*;
use serde_json::Value;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn sigterm_closes_with_1012_and_exits_within_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let grace = Duration::from_millis(4000);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .current_dir(dir.path())
        .env("SWITCHBOARD_AUTH__JWT_SECRET", SECRET)
        .env(
            "SWITCHBOARD_SHUTDOWN__GRACE_MS",
            grace.as_millis().to_string(),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the switchboard binary");
    let pid = child.id().expect("pid");

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let ready = async {
        loop {
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), ready)
        .await
        .expect("binary became ready");

    let mut ws = Ws::connect(&format!("ws://127.0.0.1:{port}/ws")).await;
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
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());

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

    let exit = tokio::time::timeout(grace + Duration::from_secs(2), child.wait())
        .await
        .expect("process exited within the grace period")
        .unwrap();
    let took = started.elapsed();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(took < grace, "took {took:?}");
    println!("SIGTERM → exit in {took:?} (grace {grace:?})");
}
