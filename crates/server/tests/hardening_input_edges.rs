//! Hardening (issue items 4 and 10): the feed endpoints' request limit and Origin check, cursors
//! the server issues are accepted back, `nbf` and `crit` in tokens, the payments body, and the
//! implicit channels outside `max_subscriptions_per_connection`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::feeds::{Sse, poll};
use common::sio::Sio;
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use switchboard_core::auth::Role;

/// A cursor-less poll over 1,000 channels returned a cursor over 32 KiB that the server then
/// refused as too long. (The whole request target must still fit the HTTP layer's 64 KiB URI
/// limit, so the names here are short enough for channels plus cursor to fit in one URL.)
#[tokio::test]
async fn a_cursor_the_server_issues_is_accepted_back() {
    let server = TestServer::start().await;
    let names: Vec<String> = (0..1000).map(|i| format!("missions:c-{i:04}")).collect();
    let channels = names.join(",");
    let (status, body) = poll(&server, &format!("channels={channels}"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let cursor = body["cursor"].as_str().unwrap().to_owned();
    assert!(cursor.len() > 32 * 1024, "cursor of {} bytes", cursor.len());
    let (status, body) = poll(
        &server,
        &format!("channels={channels}&cursor={cursor}&timeout=0"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "issued cursor refused by /poll: {body}");
    assert_eq!(body["updates"], json!([]));
    let sse = Sse::request(
        &server,
        &format!("channels={channels}"),
        &[("Last-Event-ID", &cursor)],
    )
    .await;
    assert_eq!(sse.status(), 200, "issued cursor refused by /events");
}

#[tokio::test]
async fn feeds_refuse_a_disallowed_origin_like_websocket_does() {
    let server = TestServer::start().await;
    let evil = [("Origin", "http://evil.example")];
    let res = Sse::request(&server, "channels=missions", &evil).await;
    assert_eq!(res.status(), 403, "/events let a disallowed Origin in");
    let res = reqwest::Client::new()
        .get(server.http("/poll?channels=missions"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "/poll let a disallowed Origin in");
    // The allow-listed origin and no Origin at all still work.
    let ok = [("Origin", "http://localhost:3000")];
    assert_eq!(poll(&server, "channels=missions", &ok).await.0, 200);
    assert_eq!(poll(&server, "channels=missions", &[]).await.0, 200);
    let ws = Ws::connect_raw(&server.ws_url(""), Some("http://evil.example")).await;
    assert!(ws.is_err(), "websocket is the reference behaviour");
}

#[tokio::test]
async fn feed_requests_count_against_a_per_ip_limit() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let mut limited = 0;
    for _ in 0..700 {
        let res = http
            .get(server.http("/poll?channels=missions"))
            .send()
            .await
            .unwrap();
        match res.status().as_u16() {
            200 => {}
            429 => {
                assert!(res.headers().contains_key("retry-after"));
                limited += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(limited > 0, "700 polls in a row were never limited");
}

fn signed(header: &Header, claims: &Value) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

async fn status_with(server: &TestServer, token: &str) -> u16 {
    put_mission(server, 1, Some(token), json!({"status":"active"}))
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn tokens_not_yet_valid_or_with_unknown_critical_headers_are_refused() {
    let server = TestServer::start().await;
    let claims = json!({"sub":"hq-1","role":"hq","exp":now() + 3600});
    let plain = Header::new(Algorithm::HS256);
    assert_eq!(status_with(&server, &signed(&plain, &claims)).await, 200);

    let mut future = claims.clone();
    future["nbf"] = json!(now() + 3000);
    assert_eq!(
        status_with(&server, &signed(&plain, &future)).await,
        401,
        "a token with nbf in the future was accepted"
    );
    let mut past = claims.clone();
    past["nbf"] = json!(now() - 10);
    assert_eq!(status_with(&server, &signed(&plain, &past)).await, 200);

    let mut crit = Header::new(Algorithm::HS256);
    crit.crit = Some(vec!["x-unknown-extension".into()]);
    assert_eq!(
        status_with(&server, &signed(&crit, &claims)).await,
        401,
        "a token with an unknown crit header was accepted"
    );
    // Also on a socket.
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.send(json!({"type":"auth","token":signed(&plain, &future)}))
        .await;
    assert_eq!(ws.recv().await["type"], "auth_error");
}

#[tokio::test]
async fn payments_refuse_unknown_body_fields() {
    let server = TestServer::start().await;
    let post = |body: Value| {
        reqwest::Client::new()
            .post(server.http("/api/payments/make-payment-with-socket"))
            .json(&body)
            .send()
    };
    let res = post(json!({"amount":5,"socketId":"abc","status":"succeeded"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 422, "an unknown field was accepted");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["field"], "body", "{body}");
    let res = post(json!({"amount":5,"socketId":"abc"})).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn implicit_channels_do_not_count_against_the_subscription_limit() {
    let server = TestServer::start_with(|c| c.limits.max_subscriptions_per_connection = 3).await;
    // Socket.IO: missions, lobby and conn:<sid> are joined on connect; a room still fits.
    let mut sio = Sio::connect(server.addr, None, None).await.unwrap();
    sio.recv_event("socket-id").await;
    sio.emit_with_ack(1, "join-room", json!("r1")).await;
    let ack = sio.recv_ack(1).await;
    assert_eq!(ack["ok"], true, "join-room refused: {ack}");

    // Native with a token: conn:<id> and user:<sub> are implicit; three chosen channels fit,
    // the fourth does not.
    let token = token("lim-1", Role::Agent, &["city:*"]);
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={token}"))).await;
    assert_eq!(ws.recv().await["type"], "authenticated");
    for channel in ["missions", "lobby", "room:a"] {
        ws.subscribe(channel).await;
    }
    ws.send(json!({"type":"subscribe","channel":"room:b"}))
        .await;
    let refused = ws.recv().await;
    assert_eq!(refused["type"], "error", "{refused}");
}
