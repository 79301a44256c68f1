//! Payments (SPEC §1.3) over the native WebSocket and Socket.IO: stored pending, settled after
//! the delay, the status pushed to the one connection named, 422 on bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use common::sio::Sio;
use common::*;
use serde_json::{Value, json};

async fn start() -> TestServer {
    TestServer::start_with(|c| {
        c.payments.processing_delay_ms = 300;
        c.payments.max_amount = 100.0;
    })
    .await
}

async fn pay(server: &TestServer, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.http("/api/payments/make-payment-with-socket"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn status(server: &TestServer, id: &str) -> String {
    let v: Value = reqwest::get(server.http(&format!("/api/payments/{id}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn native_connection_gets_its_own_status_only() {
    let server = start().await;
    let mut me = Ws::connect(&server.ws_url("")).await;
    let mut other = Ws::connect(&server.ws_url("")).await;
    let res = pay(
        &server,
        json!({"amount": 25.5, "socketId": me.connection_id}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["message"], "Payment received, processing request");
    let id = body["paymentId"].as_str().unwrap().to_owned();

    let d = me.recv_type("payment-status").await;
    assert_eq!(d["data"], true);
    assert_eq!(d["channel"], format!("conn:{}", me.connection_id));
    assert_eq!(status(&server, &id).await, "succeeded");
    other.expect_silence(Duration::from_millis(300)).await;

    // Above payments.max_amount: failed, false.
    let res = pay(
        &server,
        json!({"amount": 150, "socketId": me.connection_id}),
    )
    .await;
    let id: String = res.json::<Value>().await.unwrap()["paymentId"]
        .as_str()
        .unwrap()
        .into();
    assert_eq!(me.recv_type("payment-status").await["data"], false);
    let got: Value = reqwest::get(server.http(&format!("/api/payments/{id}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["status"], "failed");
    assert_eq!(got["amount"], 150.0);
}

/// Stored `pending` until the processing delay has passed, with no status pushed before. The
/// delay is a minute here, so the check cannot race with the settlement.
#[tokio::test]
async fn a_payment_is_pending_until_the_delay_passes() {
    let server = TestServer::start_with(|c| c.payments.processing_delay_ms = 60_000).await;
    let mut me = Ws::connect(&server.ws_url("")).await;
    let res = pay(&server, json!({"amount": 5, "socketId": me.connection_id})).await;
    assert_eq!(res.status(), 200);
    let id = res.json::<Value>().await.unwrap()["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(status(&server, &id).await, "pending");
    me.expect_silence(Duration::from_millis(100)).await;
    assert_eq!(status(&server, &id).await, "pending");
}

#[tokio::test]
async fn socketio_socket_gets_its_status() {
    let server = start().await;
    let mut a = Sio::connect(server.addr, None, None).await.unwrap();
    let mut b = Sio::connect(server.addr, None, None).await.unwrap();
    let id = a.recv_event("socket-id").await;
    b.recv_event("socket-id").await;
    let res = pay(&server, json!({"amount": 10, "socketId": id})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(a.recv_event("payment-status").await, json!(true));
    // b's next event is one it caused itself, proving it got no payment-status before it.
    b.emit_with_ack(1, "subscribe", json!("lobby")).await;
    assert!(matches!(b.recv().await, common::sio::Packet::Ack(1, _)));
}

#[tokio::test]
async fn invalid_requests_get_422_naming_the_field() {
    let server = start().await;
    for (body, field) in [
        (json!({"amount": 0, "socketId": "abc"}), "amount"),
        (json!({"amount": -3, "socketId": "abc"}), "amount"),
        (json!({"amount": "10", "socketId": "abc"}), "amount"),
        (json!({"socketId": "abc"}), "amount"),
        (json!({"amount": 10}), "socketId"),
        (json!({"amount": 10, "socketId": ""}), "socketId"),
        (json!({"amount": 10, "socketId": 12}), "socketId"),
        (json!([1, 2]), "body"),
    ] {
        let res = pay(&server, body.clone()).await;
        assert_eq!(res.status(), 422, "{body}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["field"], field, "{body}");
        assert!(v["error"].is_string());
    }
    let res = reqwest::get(server.http("/api/payments/pay_nope"))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
