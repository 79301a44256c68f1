//! The reconnect rule, against a stand-in server that greets each connection and closes it
//! with one code: a do-not-reconnect code (4011, an administrator's disconnect; 4001) is one
//! connection and a stopped client, a transient one (1012, restarting) is a reconnect. The
//! real server's closes are tested in crates/server/tests/rust_client.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use switchboard_client::{Client, State, SubscriptionEvent};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// Accepts connections, sends `welcome`, waits a moment (so the client's subscribe is in
/// flight), closes with `code`; counts the connections.
async fn closing_server(code: u16) -> (String, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let count = Arc::new(AtomicU32::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let welcome = format!(
                    r#"{{"type":"welcome","message":"Connected to WebSocket server","connectionId":"c{n}","protocol":1,"heartbeat":30000}}"#
                );
                let _ = ws.send(Message::text(welcome)).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                let frame = CloseFrame {
                    code: code.into(),
                    reason: "bye".into(),
                };
                let _ = ws.close(Some(frame)).await;
            });
        }
    });
    (url, count)
}

async fn client(url: &str) -> Client {
    Client::builder(url)
        .reconnect_delay(Duration::from_millis(10), Duration::from_millis(20))
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn do_not_reconnect_codes_stop_the_client_after_one_connection() {
    for code in [4011, 4001, 4010] {
        let (url, count) = closing_server(code).await;
        let client = client(&url).await;
        let mut sub = client.subscribe("missions", None).unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(5), sub.next_event())
            .await
            .expect("the stream ends");
        assert_eq!(ev, Some(SubscriptionEvent::Stopped { code: Some(code) }));
        assert_eq!(sub.next_event().await, None, "and then it is over");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "{code}: no second connection"
        );
        assert_eq!(client.state(), State::Stopped { code: Some(code) });
    }
}

#[tokio::test]
async fn transient_codes_reconnect() {
    for code in [1012, 4009, 1001] {
        let (url, count) = closing_server(code).await;
        let client = client(&url).await;
        let _sub = client.subscribe("missions", None).unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(count.load(Ordering::SeqCst) >= 3, "{code}: reconnected");
        assert!(!matches!(client.state(), State::Stopped { .. }));
    }
}
