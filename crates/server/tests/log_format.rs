//! `log.format` (SPEC §8): `json` gives one JSON object a line on stderr, for log pipelines,
//! with the same content as the text lines (a connection's open and close with its transport);
//! an unknown format stops the server naming the key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::bin::{command, spawn};
use serde_json::Value;

#[tokio::test]
async fn json_log_lines_are_one_object_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env(
        "SWITCHBOARD_AUTH__JWT_SECRET",
        "log-format-secret-0123456789abcdef",
    )
    .env("SWITCHBOARD_LOG__FORMAT", "json");
    let server = spawn(cmd).await;
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .unwrap();
    drop(ws);
    // The close is logged once the server sees the socket end.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !server
        .lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("connection closed"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no close line logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = server.lines.lock().unwrap().clone();
    // stdout carries the banner and the URLs; every log line (stderr) is a JSON object.
    let logs: Vec<Value> = lines
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for l in &lines {
        assert!(
            l.starts_with('{') || !(l.contains(" INFO ") || l.contains(" WARN ")),
            "a text log line with log.format = json: {l}"
        );
    }
    let opened = logs
        .iter()
        .find(|v| v["fields"]["message"] == "connection opened")
        .unwrap_or_else(|| panic!("no connection line in {logs:?}"));
    assert_eq!(opened["level"], "INFO");
    assert_eq!(opened["fields"]["transport"], "websocket");
    assert!(opened["timestamp"].is_string(), "{opened}");
    let closed = logs
        .iter()
        .find(|v| v["fields"]["message"] == "connection closed")
        .unwrap();
    assert!(closed["fields"]["duration_ms"].is_u64(), "{closed}");
    assert_eq!(closed["fields"]["code"], 1000, "{closed}");
    // The upgrade request has its line, with its id in the request span.
    let request = logs
        .iter()
        .find(|v| v["fields"]["message"] == "request" && v["span"]["path"] == "/ws")
        .unwrap_or_else(|| panic!("no request line in {logs:?}"));
    assert_eq!(request["fields"]["status"], 101, "{request}");
    assert_eq!(
        request["span"]["request_id"].as_str().map(str::len),
        Some(36),
        "{request}"
    );
}

#[tokio::test]
async fn an_unknown_log_format_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env("SWITCHBOARD_LOG__FORMAT", "yaml")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started with log.format = yaml");
    // The key is known: the value is what is wrong, and the message says what would do.
    assert!(stderr.contains("log.format"), "{stderr}");
    assert!(!stderr.contains("unknown key"), "{stderr}");
    assert!(stderr.contains("json"), "{stderr}");
}
