//! Permissions that change or reach beyond the usual (SPEC §2, §3): a token refresh that
//! narrows what a connection may read drops the subscriptions it no longer grants, and the
//! admin role reads other connections' `conn:` and other users' `user:` channels, which no
//! other role may.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchboard_core::auth::Role;

async fn post_city(server: &TestServer, city: &str, value: f64) {
    let res = reqwest::Client::new()
        .post(server.http(&format!("/api/cities/{city}/data")))
        .bearer_auth(hq())
        .json(&json!({"metrics":{"traffic": value}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_narrower_token_drops_the_subscriptions_it_no_longer_grants() {
    let server = TestServer::start().await;
    let wide = token("alice", Role::Agent, &["city:*"]);
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={wide}"))).await;
    ws.recv_type("authenticated").await;
    for city in ["city:nairobi", "city:lagos"] {
        ws.subscribe(city).await;
        ws.recv_type("initial_data").await;
    }

    let narrow = token("alice", Role::Agent, &["city:lagos"]);
    ws.send(json!({"type":"auth","token":narrow,"ref":"refresh"}))
        .await;
    let authenticated = ws.recv().await;
    assert_eq!(
        (
            authenticated["type"].as_str(),
            authenticated["ref"].as_str()
        ),
        (Some("authenticated"), Some("refresh")),
        "{authenticated}"
    );
    let dropped = ws.recv().await;
    assert_eq!(
        dropped,
        json!({"type":"unsubscribed","channel":"city:nairobi"}),
        "the server tells the client which subscription it dropped"
    );
    // Nairobi no longer reaches this connection; Lagos still does.
    post_city(&server, "nairobi", 1.0).await;
    post_city(&server, "lagos", 2.0).await;
    let d = ws.recv().await;
    assert_eq!(
        (d["type"].as_str(), d["channel"].as_str()),
        (Some("data_update"), Some("city:lagos")),
        "{d}"
    );
    ws.expect_silence(Duration::from_millis(100)).await;
    // And it cannot subscribe to it again.
    ws.send(json!({"type":"subscribe","channel":"city:nairobi"}))
        .await;
    assert_eq!(ws.recv().await["code"], "forbidden");
}

#[tokio::test]
async fn admins_read_other_connections_and_users_and_nobody_else_does() {
    let server = TestServer::start_with(|c| c.payments.processing_delay_ms = 10).await;
    let mut target = Ws::connect(&server.ws_url("")).await;
    let conn_channel = format!("conn:{}", target.connection_id);

    let mut hq_ws = Ws::connect(&server.ws_url(&format!("?token={}", hq()))).await;
    hq_ws.recv_type("authenticated").await;
    for channel in [conn_channel.as_str(), "user:alice"] {
        hq_ws
            .send(json!({"type":"subscribe","channel":channel}))
            .await;
        let refused = hq_ws.recv().await;
        assert_eq!(refused["code"], "forbidden", "hq on {channel}: {refused}");
    }

    let admin = token("root", Role::Admin, &[]);
    let mut admin_ws = Ws::connect(&server.ws_url(&format!("?token={admin}"))).await;
    admin_ws.recv_type("authenticated").await;
    admin_ws.subscribe(&conn_channel).await;
    admin_ws.subscribe("user:alice").await;

    // A payment status for the target connection: the target and the watching admin get it.
    let res = reqwest::Client::new()
        .post(server.http("/api/payments/make-payment-with-socket"))
        .json(&json!({"amount": 5, "socketId": target.connection_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for ws in [&mut target, &mut admin_ws] {
        let d = ws.recv_type("payment-status").await;
        assert_eq!(
            (d["channel"].as_str(), &d["data"]),
            (Some(conn_channel.as_str()), &json!(true))
        );
    }
    // Alice's inbox entry: the admin watching `user:alice` gets it.
    let res = reqwest::Client::new()
        .post(server.http("/api/publish"))
        .bearer_auth(hq())
        .json(&json!({"channel":"user:alice","event":"note","data":"for alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let d: Value = admin_ws.recv_type("note").await;
    assert_eq!(
        (d["channel"].as_str(), d["data"].as_str()),
        (Some("user:alice"), Some("for alice"))
    );
    hq_ws.expect_silence(Duration::from_millis(50)).await;
}
