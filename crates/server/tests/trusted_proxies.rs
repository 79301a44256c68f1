//! `security.trusted_proxies` (SPEC §10): only a request from a trusted proxy may name the
//! client in `X-Forwarded-For`; per-IP connection limits, rate limits and logs then use that
//! client's address. From anyone else the header is ignored. The tests' loopback connections
//! play the proxy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use common::TestServer;
use common::logs::LogCapture;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn server(trusted: &[&str]) -> TestServer {
    let trusted: Vec<String> = trusted.iter().map(|s| s.to_string()).collect();
    TestServer::start_with(move |c| {
        c.security.trusted_proxies = trusted;
        c.limits.max_connections_per_ip = 2;
    })
    .await
}

/// A WebSocket through "the proxy" for `client`; the HTTP status when refused.
async fn ws_as(
    server: &TestServer,
    client: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    let mut req = server.ws_url("").into_client_request().unwrap();
    req.headers_mut()
        .insert("x-forwarded-for", client.parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("handshake failed without a status: {e}"),
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_connection_limit() {
    let server = server(&["127.0.0.1/32"]).await;
    let mut open = Vec::new();
    // Five clients behind one proxy address: each counted by its own address.
    for i in 1..=5 {
        open.push(
            ws_as(&server, &format!("198.51.100.{i}"))
                .await
                .expect("own limit"),
        );
    }
    // One client over its limit of two is refused, whoever else shares the proxy.
    open.push(ws_as(&server, "203.0.113.9").await.unwrap());
    open.push(ws_as(&server, "203.0.113.9").await.unwrap());
    assert_eq!(ws_as(&server, "203.0.113.9").await.err(), Some(429));
    // Its count is returned when a connection closes.
    drop(open.pop());
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while ws_as(&server, "203.0.113.9").await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the permit was not returned"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn from_an_untrusted_peer_the_header_is_ignored() {
    // Loopback is not trusted here: the header is a spoof, every connection is 127.0.0.1's.
    let server = server(&["10.9.9.9"]).await;
    let _a = ws_as(&server, "198.51.100.1").await.unwrap();
    let _b = ws_as(&server, "198.51.100.2").await.unwrap();
    assert!(
        ws_as(&server, "198.51.100.3").await.is_err(),
        "counted as one address"
    );
}

#[tokio::test]
async fn rate_limits_and_logs_use_the_forwarded_client() {
    let logs = LogCapture::start();
    let server = TestServer::start_with(|c| {
        c.security.trusted_proxies = vec!["127.0.0.1".into()];
        c.limits.client_messages_per_minute = 2;
    })
    .await;
    let _ws = ws_as(&server, "198.51.100.8").await.unwrap();
    logs.wait_for("connection opened", 1).await;
    let line = logs
        .text()
        .lines()
        .find(|l| l.contains("connection opened"))
        .unwrap()
        .to_owned();
    assert!(
        line.contains("peer=198.51.100.8"),
        "the log names the client: {line}"
    );

    // Anonymous client-API requests are limited per address: each client behind the proxy
    // has its own bucket.
    let client = reqwest::Client::new();
    let presence = async |who: &str| {
        client
            .get(server.http("/api/client/presence/lobby"))
            .header("x-forwarded-for", who)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(presence("192.0.2.1").await);
    }
    assert_eq!(first, [200, 200, 429]);
    assert_eq!(
        presence("192.0.2.2").await,
        200,
        "another client has its own bucket"
    );
    // Without the header the proxy's own address is the client, with its own bucket too.
    let direct = client
        .get(server.http("/api/client/presence/lobby"))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 200);
}
