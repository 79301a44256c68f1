//! Graceful shutdown lets in-flight REST requests finish (SPEC §5): a request whose handler is
//! already reading its body when shutdown starts is answered in full, its write is saved and
//! published; a connection opened after shutdown started is not served.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn an_in_flight_rest_request_finishes_during_shutdown() {
    let mut server = TestServer::start_with(|c| c.shutdown.grace_ms = 5000).await;
    let mut watcher = Ws::connect(&server.ws_url("")).await;
    watcher.subscribe("missions:2").await;

    // A PUT whose body is not sent yet. `Expect: 100-continue` makes the server say when
    // the handler starts reading the body: from then on the request is in flight.
    let body = r#"{"location":"Finished"}"#;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(
        format!(
            "PUT /missions/2 HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            server.addr,
            hq(),
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
        .await
        .expect("100 Continue")
        .unwrap();
    let interim = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");

    let done = server.stop();
    // The WebSocket is told to reconnect elsewhere: shutdown really started.
    assert_eq!(watcher.close_code().await, 1012);
    // New connections are soon no longer served.
    let deadline = tokio::time::Instant::now() + WAIT;
    while reqwest::Client::new()
        .get(server.http("/healthz"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .is_ok()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still accepting new connections during shutdown"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The in-flight request completes.
    tcp.write_all(body.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut response))
        .await
        .expect("answered during shutdown")
        .unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let json_body: Value =
        serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json_body["location"], "Finished");
    tokio::time::timeout(Duration::from_secs(10), done)
        .await
        .expect("stopped within the grace period")
        .unwrap()
        .unwrap();
    // It was saved: a server on the same data directory reads it.
    let server = server.restart(|_| {}).await;
    let got: Value = reqwest::get(server.http("/missions/2"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["location"], "Finished", "{got}");
}
