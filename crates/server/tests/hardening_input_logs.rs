//! Hardening (issue item 9): secrets stay out of the logs at every level, `trace` included.
//! At `trace` tungstenite logs every frame it reads (a native `auth` message carries a token),
//! socketioxide logs the handshake's `auth` payload at `debug`, and sqlx logs every statement —
//! the demo seed with its classified values among them. Runs the real binary with
//! `RUST_LOG=trace` on a fresh data directory (so the seed migration runs), sends a token every
//! way a client can, and checks what it printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::bin::{command, spawn};
use futures_util::{SinkExt, StreamExt};
use switchboard_core::auth::Role;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "trace-log-check-secret-0123456789";

/// Reads frames until `d` passes without one.
async fn drain<S>(ws: &mut S, d: Duration)
where
    S: StreamExt + Unpin,
{
    while let Ok(Some(_)) = tokio::time::timeout(d, ws.next()).await {}
}

#[tokio::test]
async fn nothing_secret_is_logged_even_at_trace() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env("SWITCHBOARD_AUTH__JWT_SECRET", SECRET)
        .env("RUST_LOG", "trace");
    let server = spawn(cmd).await;
    let port = server.addr.port();
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    let token = common::token_with(SECRET, "traceuser", Role::Hq, &[], common::now() + 600);

    // Native: the token in an `auth` message (a frame tungstenite reads).
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
        .await
        .unwrap();
    ws.send(Message::text(format!(
        r#"{{"type":"auth","token":"{token}"}}"#
    )))
    .await
    .unwrap();
    drain(&mut ws, Duration::from_millis(500)).await;

    // Socket.IO: the token in the handshake's `auth` payload.
    let (mut sio, _) = tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    ))
    .await
    .unwrap();
    let _open = tokio::time::timeout(Duration::from_secs(5), sio.next()).await;
    sio.send(Message::text(format!(r#"40{{"token":"{token}"}}"#)))
        .await
        .unwrap();
    drain(&mut sio, Duration::from_millis(500)).await;

    // REST with a bearer token.
    let res = http
        .get(format!("{base}/missions/1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let logs = server.kill_and_output().await;
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "trace logging really ran:\n{logs}"
    );
    let signature = token.rsplit('.').next().unwrap();
    for (what, needle) in [
        ("secret", SECRET),
        ("token signature", signature),
        ("a seeded extraction code", "EX-7731-ALPHA"),
        ("seeded handler notes", "Asset nervous"),
        ("a seeded asset identity", "K. Brandt"),
    ] {
        let at = logs.find(needle);
        assert!(
            at.is_none(),
            "{what} appears in the trace logs: …{}…",
            at.map(|i| &logs[i.saturating_sub(300)..(i + 100).min(logs.len())])
                .unwrap_or_default()
        );
    }
}
