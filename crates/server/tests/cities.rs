//! City dashboards (SPEC §1.4): ingest, snapshot, `data_update`, alerts, `initial_data`,
//! permissions per city, and 500 dashboards on one city.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use switchboard_core::auth::Role;

fn pipeline() -> String {
    token("pipeline-1", Role::Pipeline, &[])
}

async fn post_metrics(
    server: &TestServer,
    city: &str,
    tok: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(server.http(&format!("/api/cities/{city}/data")))
        .json(&body);
    if let Some(t) = tok {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn ingest_publishes_updates_and_alerts() {
    let server = TestServer::start().await;
    let viewer = token("viewer", Role::Agent, &["city:*"]);
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={viewer}"))).await;
    ws.recv_type("authenticated").await;
    ws.subscribe("city:nairobi").await;
    let initial = ws.recv().await;
    assert_eq!(
        initial,
        json!({"type":"initial_data","channel":"city:nairobi","data":null})
    );

    let res = post_metrics(
        &server,
        "nairobi",
        Some(&pipeline()),
        json!({"metrics":{"air_quality":180,"traffic":0.4}}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["cityId"], "nairobi");
    assert_eq!(answer["alerts"].as_array().unwrap().len(), 1);

    let update = ws.recv().await;
    assert_eq!(update["type"], "data_update");
    assert_eq!(update["channel"], "city:nairobi");
    assert_eq!(
        update["data"]["metrics"],
        json!({"air_quality":180.0,"traffic":0.4})
    );
    let alerts = ws.recv().await;
    assert_eq!(alerts["type"], "alerts");
    let a = &alerts["data"][0];
    assert_eq!(
        (
            a["metric"].as_str(),
            a["value"].as_f64(),
            a["threshold"].as_f64(),
            a["severity"].as_str()
        ),
        (
            Some("air_quality"),
            Some(180.0),
            Some(150.0),
            Some("critical")
        )
    );
    assert!(a["message"].as_str().unwrap().contains("150"));

    // Below the threshold: an update, no alert.
    post_metrics(
        &server,
        "nairobi",
        Some(&hq()),
        json!({"metrics":{"air_quality":90}}),
    )
    .await;
    assert_eq!(ws.recv().await["type"], "data_update");
    ws.expect_silence(Duration::from_millis(150)).await;

    // The snapshot is the latest post.
    let snap: Value = reqwest::Client::new()
        .get(server.http("/api/cities/nairobi"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(snap["metrics"], json!({"air_quality":90.0}));
}

#[tokio::test]
async fn auth_with_city_id_sends_initial_data_first() {
    let server = TestServer::start().await;
    post_metrics(
        &server,
        "nairobi",
        Some(&pipeline()),
        json!({"metrics":{"air_quality":42}}),
    )
    .await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.send(json!({"type":"auth","token":token("d", Role::Agent, &["city:nairobi"]),"cityId":"nairobi"})).await;
    assert_eq!(ws.recv().await["type"], "authenticated");
    assert_eq!(ws.recv().await["type"], "subscribed");
    let initial = ws.recv().await;
    assert_eq!(initial["type"], "initial_data");
    assert_eq!(initial["data"]["cityId"], "nairobi");
    assert_eq!(initial["data"]["metrics"]["air_quality"], 42.0);
    post_metrics(
        &server,
        "nairobi",
        Some(&pipeline()),
        json!({"metrics":{"air_quality":43}}),
    )
    .await;
    assert_eq!(ws.recv().await["data"]["metrics"]["air_quality"], 43.0);
}

#[tokio::test]
async fn a_token_without_the_city_is_forbidden() {
    let server = TestServer::start().await;
    let only_nairobi = token("n", Role::Agent, &["city:nairobi"]);
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={only_nairobi}"))).await;
    ws.recv_type("authenticated").await;
    ws.send(json!({"type":"subscribe","channel":"city:lagos","ref":1}))
        .await;
    let e = ws.recv().await;
    assert_eq!(
        (e["code"].as_str(), e["ref"].as_i64()),
        (Some("forbidden"), Some(1))
    );
    ws.send(json!({"type":"auth","token":only_nairobi,"cityId":"lagos"}))
        .await;
    assert_eq!(ws.recv().await["type"], "authenticated");
    assert_eq!(ws.recv().await["code"], "forbidden");
    // Anonymous can't either.
    let mut anon = Ws::connect(&server.ws_url("")).await;
    anon.send(json!({"type":"subscribe","channel":"city:lagos"}))
        .await;
    assert_eq!(anon.recv().await["code"], "forbidden");

    let c = reqwest::Client::new();
    post_metrics(
        &server,
        "lagos",
        Some(&pipeline()),
        json!({"metrics":{"x":1}}),
    )
    .await;
    assert_eq!(
        c.get(server.http("/api/cities/lagos"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.get(server.http("/api/cities/lagos"))
            .bearer_auth(&only_nairobi)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let any = token("a", Role::Agent, &["city:*"]);
    assert_eq!(
        c.get(server.http("/api/cities/lagos"))
            .bearer_auth(&any)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let missing = c
        .get(server.http("/api/cities/atlantis"))
        .bearer_auth(&any)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"],
        "City not found"
    );
}

#[tokio::test]
async fn ingest_validation_and_roles() {
    let server = TestServer::start().await;
    let body = json!({"metrics":{"a":1}});
    assert_eq!(
        post_metrics(&server, "nairobi", None, body.clone())
            .await
            .status(),
        401
    );
    assert_eq!(
        post_metrics(&server, "nairobi", Some(&agent()), body.clone())
            .await
            .status(),
        403
    );
    for (city, body, field) in [
        ("Nairobi", json!({"metrics":{"a":1}}), "cityId"),
        ("nairobi", json!({"metrics":{"a":"high"}}), "metrics"),
        ("nairobi", json!({"metrics":{}}), "metrics"),
        ("nairobi", json!({"values":{"a":1}}), "metrics"),
    ] {
        let res = post_metrics(&server, city, Some(&pipeline()), body.clone()).await;
        assert_eq!(res.status(), 422, "{city} {body}");
        assert_eq!(
            res.json::<Value>().await.unwrap()["field"],
            field,
            "{city} {body}"
        );
    }
}

#[tokio::test]
async fn five_hundred_dashboards_on_one_city() {
    const N: usize = 500;
    let server = TestServer::start().await;
    let mut dashboards = Vec::with_capacity(N);
    for i in 0..N {
        let tok = token(&format!("dash-{i}"), Role::Agent, &["city:*"]);
        let mut ws = Ws::connect(&server.ws_url(&format!("?token={tok}"))).await;
        ws.recv_type("authenticated").await;
        ws.subscribe("city:nairobi").await;
        ws.recv_type("initial_data").await;
        dashboards.push(ws);
    }
    let started = Instant::now();
    let res = post_metrics(
        &server,
        "nairobi",
        Some(&pipeline()),
        json!({"metrics":{"air_quality":155}}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let mut slowest = Duration::ZERO;
    for ws in &mut dashboards {
        let d = ws.recv().await;
        assert_eq!(d["type"], "data_update");
        assert_eq!(ws.recv().await["type"], "alerts");
        slowest = slowest.max(started.elapsed());
    }
    println!("500 dashboards: all received the update and the alert within {slowest:?}");
    assert!(slowest < Duration::from_secs(5));
}

#[tokio::test]
async fn socket_io_gets_the_same_city_permissions() {
    use common::sio::Sio;
    let server = TestServer::start().await;
    let only_nairobi = token("n", Role::Agent, &["city:nairobi"]);
    let mut sio = Sio::connect(server.addr, Some(json!({"token": only_nairobi})), None)
        .await
        .unwrap();
    sio.emit_with_ack(1, "subscribe", json!("city:lagos")).await;
    assert_eq!(sio.recv_ack(1).await["code"], "forbidden");
    sio.emit_with_ack(2, "subscribe", json!("city:nairobi"))
        .await;
    assert_eq!(sio.recv_ack(2).await["ok"], true);
    post_metrics(
        &server,
        "nairobi",
        Some(&pipeline()),
        json!({"metrics":{"air_quality":7}}),
    )
    .await;
    let (data, meta) = sio.recv_publication("data_update").await;
    assert_eq!(
        (data["cityId"].as_str(), meta["channel"].as_str()),
        (Some("nairobi"), Some("city:nairobi"))
    );
}
