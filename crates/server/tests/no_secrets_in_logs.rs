//! SPEC §6: tokens and secrets never appear in logs. Runs the real binary with debug logging,
//! sends tokens every way a client can — REST bearer header, WebSocket `?token=`, the native
//! `auth` message, SSE `?token=` and header, long-poll `?token=` and header, the Socket.IO
//! handshake `auth`, the admin API — valid and invalid, and checks everything it printed, in
//! the text format and in `log.format = "json"`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchboard_core::auth::Role;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "log-check-secret-0123456789";

#[tokio::test]
async fn tokens_and_secrets_stay_out_of_the_logs() {
    tokens_stay_out(false).await;
}

#[tokio::test]
async fn tokens_and_secrets_stay_out_of_json_logs() {
    tokens_stay_out(true).await;
}

async fn tokens_stay_out(json: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = common::bin::command(dir.path());
    cmd.env("SWITCHBOARD_AUTH__JWT_SECRET", SECRET)
        .env("RUST_LOG", "debug");
    if json {
        cmd.env("SWITCHBOARD_LOG__FORMAT", "json");
    }
    let server = common::bin::spawn(cmd).await;
    let addr = server.addr;
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let token = common::token_with(SECRET, "loguser", Role::Hq, &[], common::now() + 600);
    let bad = format!("{token}x");

    let ok = http
        .put(format!("{base}/missions/1"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"status":"active"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let refused = http
        .put(format!("{base}/missions/1"))
        .bearer_auth(&bad)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // SSE with the token in the query and in the header: the stream opens (200) and says
    // `connected`, so the token really went through the server's auth path.
    for (query, header) in [(Some(&token), None), (None, Some(&token))] {
        let mut req = http.get(match query {
            Some(t) => format!("{base}/events?channels=missions&token={t}"),
            None => format!("{base}/events?channels=missions"),
        });
        if let Some(t) = header {
            req = req.bearer_auth(t);
        }
        let mut res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        let first = tokio::time::timeout(Duration::from_secs(5), res.chunk())
            .await
            .expect("first SSE chunk")
            .unwrap()
            .expect("stream open");
        assert!(
            String::from_utf8_lossy(&first).contains("connected"),
            "{first:?}"
        );
    }
    let refused = http
        .get(format!("{base}/events?channels=missions&token={bad}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    // Long-poll with `?token=` and with the header, and a refused one.
    for url in [
        format!("{base}/poll?channels=missions&token={token}"),
        format!("{base}/poll?channels=missions&token={bad}"),
    ] {
        let res = http.get(&url).send().await.unwrap();
        let ok = !url.ends_with(bad.as_str());
        assert_eq!(res.status(), if ok { 200 } else { 401 }, "{url}");
    }
    let res = http
        .get(format!("{base}/poll?channels=missions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Socket.IO with the token in the handshake `auth`, a good and a bad one.
    let sio = common::sio::Sio::connect(addr, Some(serde_json::json!({"token": token})), None)
        .await
        .expect("socket.io connect with a good token");
    drop(sio);
    let refused = common::sio::Sio::connect(addr, Some(serde_json::json!({"token": bad})), None)
        .await
        .err()
        .expect("a bad handshake token is refused");
    assert!(!refused.is_empty());
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={token}"))
        .await
        .unwrap();
    ws.send(Message::text(format!(
        r#"{{"type":"auth","token":"{token}"}}"#
    )))
    .await
    .unwrap();
    ws.send(Message::text(format!(
        r#"{{"type":"auth","token":"{bad}"}}"#
    )))
    .await
    .unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(2), ws.next()).await {}
    let (mut bad_ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws?token={bad}"))
        .await
        .unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(2), bad_ws.next()).await {}

    // The admin API, with the admin's token and a bad one.
    let admin = common::token_with(SECRET, "logadmin", Role::Admin, &[], common::now() + 600);
    for (t, status) in [(&admin, 200), (&format!("{admin}x"), 401)] {
        let res = http
            .get(format!("{base}/api/admin/stats"))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status);
    }
    let res = http
        .post(format!("{base}/api/admin/disconnect"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"user":"loguser"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let logs = server.kill_and_output().await;
    assert!(
        logs.contains("query token rejected"),
        "debug logging really ran:\n{logs}"
    );
    if json {
        let objects = logs
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["fields"]["message"] == "request")
            .count();
        assert!(objects > 5, "JSON request lines were logged:\n{logs}");
    }
    let signature = token.rsplit('.').next().unwrap();
    let admin_signature = admin.rsplit('.').next().unwrap();
    for (what, needle) in [
        ("secret", SECRET),
        ("token signature", signature),
        ("admin token signature", admin_signature),
    ] {
        assert!(
            !logs.contains(needle),
            "the {what} appears in the logs:\n{logs}"
        );
    }
}
