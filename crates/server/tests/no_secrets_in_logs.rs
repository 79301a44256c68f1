//! SPEC §6: tokens and secrets never appear in logs. Runs the real binary with debug logging,
//! sends tokens every way a client can (query string, bearer header, `auth` message, SSE), and
//! checks everything it printed.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchboard_core::auth::{Claims, JwtSigner, Role};
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const SECRET: &str = "log-check-secret-0123456789";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn tokens_and_secrets_stay_out_of_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path().join("data"))
        .current_dir(dir.path())
        .env("SWITCHBOARD_AUTH__JWT_SECRET", SECRET)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = JwtSigner::hs256(SECRET.as_bytes())
        .sign(&Claims {
            sub: Some("loguser".into()),
            exp,
            role: Role::Hq,
            channels: vec![],
        })
        .unwrap();
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
    let _ = http
        .get(format!("{base}/events?channels=missions&token={token}"))
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .map(|r| r.status());
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws?token={token}"))
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
    let (mut bad_ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws?token={bad}"))
            .await
            .unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(2), bad_ws.next()).await {}

    let _ = child.kill();
    let _ = child.wait();
    let mut logs = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(
        logs.contains("query token rejected"),
        "debug logging really ran:\n{logs}"
    );
    let signature = token.rsplit('.').next().unwrap();
    for (what, needle) in [("secret", SECRET), ("token signature", signature)] {
        assert!(
            !logs.contains(needle),
            "the {what} appears in the logs:\n{logs}"
        );
    }
}
