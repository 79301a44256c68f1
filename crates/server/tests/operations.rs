//! Operations (SPEC §8): `/metrics` with every family, moving after real traffic on each
//! transport and with bounded labels; the admin API's 401/403/200 and its disconnect (4011 on
//! every transport); request ids taken, made and echoed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::feeds::Sse;
use common::sio::Sio;
use common::*;
use serde_json::{Value, json};
use switchboard_core::auth::Role;

/// Every family SPEC §8 names.
const FAMILIES: [&str; 10] = [
    "switchboard_connections",
    "switchboard_subscriptions",
    "switchboard_publications_total",
    "switchboard_deliveries_total",
    "switchboard_dropped_total",
    "switchboard_client_errors_total",
    "switchboard_publish_latency_seconds",
    "switchboard_broker_errors_total",
    "switchboard_http_requests_total",
    "switchboard_http_request_duration_seconds",
];

/// The samples of a Prometheus text page: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(server: &TestServer) -> (String, BTreeMap<String, f64>) {
    let text = reqwest::get(server.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let s = samples(&text);
    (text, s)
}

fn value(s: &BTreeMap<String, f64>, key: &str) -> f64 {
    *s.get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {s:#?}"))
}

fn admin_token() -> String {
    token("root", Role::Admin, &[])
}

async fn get_admin(server: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    get_json(&server.http(path), token).await
}

#[tokio::test]
async fn every_family_is_served_and_moves_after_traffic_on_each_transport() {
    let server = TestServer::start().await;
    let (text, before) = scrape(&server).await;
    for family in FAMILIES {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{text}"
        );
    }
    assert_eq!(
        value(&before, "switchboard_connections{transport=\"websocket\"}"),
        0.0
    );

    let mut ws = Ws::connect(&server.ws_url(&format!("?token={}", hq()))).await;
    ws.recv_type("authenticated").await;
    ws.subscribe("missions").await;
    let mut sse = Sse::open(&server, "channels=missions", &[]).await;
    sse.next_event().await; // connected
    let mut sio = Sio::connect(server.addr, Some(json!({ "token": hq() })), None)
        .await
        .unwrap();
    let res = put_mission(&server, 1, Some(&hq()), json!({"status":"active"})).await;
    assert_eq!(res.status(), 200);
    ws.recv_type("mission-update").await;
    sio.recv_event("mission-update").await;
    ws.send_text("not json").await;
    ws.recv_type("error").await;

    let (_, after) = scrape(&server).await;
    for transport in ["websocket", "sse", "socketio"] {
        assert_eq!(
            value(
                &after,
                &format!("switchboard_connections{{transport=\"{transport}\"}}")
            ),
            1.0,
            "{transport}"
        );
        assert!(
            value(
                &after,
                &format!("switchboard_deliveries_total{{transport=\"{transport}\"}}")
            ) >= 1.0,
            "{transport} deliveries"
        );
    }
    assert!(value(&after, "switchboard_subscriptions") >= 3.0);
    assert!(
        value(
            &after,
            "switchboard_publications_total{namespace=\"missions\"}"
        ) >= 1.0
    );
    assert_eq!(
        value(
            &after,
            "switchboard_client_errors_total{code=\"invalid_json\"}"
        ),
        1.0
    );
    assert!(value(&after, "switchboard_publish_latency_seconds_count") >= 1.0);
    assert_eq!(
        value(
            &after,
            "switchboard_http_requests_total{route=\"/missions/{id}\",status=\"200\"}"
        ),
        1.0
    );
    assert!(
        value(
            &after,
            "switchboard_http_request_duration_seconds_count{route=\"/missions/{id}\"}"
        ) >= 1.0
    );

    // Closing moves the gauge back.
    drop(ws);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, s) = scrape(&server).await;
        if value(&s, "switchboard_connections{transport=\"websocket\"}") == 0.0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "gauge stayed up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn labels_stay_bounded_whatever_clients_ask_for() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    for i in 0..30 {
        let _ = client
            .get(server.http(&format!("/no-such-path-{i}?token=secret{i}")))
            .send()
            .await
            .unwrap();
        let _ = client
            .get(server.http(&format!("/missions/{i}")))
            .send()
            .await
            .unwrap();
    }
    let mut ws = Ws::connect(&server.ws_url("")).await;
    for i in 0..5 {
        ws.send(json!({"type":"subscribe","channel":format!("room:unique{i}")}))
            .await;
        ws.recv().await;
    }
    let (text, s) = scrape(&server).await;
    assert!(
        !text.contains("no-such-path") && !text.contains("secret"),
        "{text}"
    );
    assert!(
        !text.contains("unique"),
        "a channel name became a label:\n{text}"
    );
    let routes: BTreeSet<&str> = s
        .keys()
        .filter_map(|k| k.split("route=\"").nth(1)?.split('"').next())
        .collect();
    assert!(routes.contains("unmatched"), "{routes:?}");
    assert!(routes.contains("/missions/{id}"), "{routes:?}");
    assert!(
        routes.len() <= 4,
        "one value per route template: {routes:?}"
    );
    let namespaces: BTreeSet<&str> = s
        .keys()
        .filter_map(|k| k.split("namespace=\"").nth(1)?.split('"').next())
        .collect();
    assert!(namespaces.len() <= 8, "{namespaces:?}");
}

#[tokio::test]
async fn the_admin_api_is_for_admins_only() {
    let server = TestServer::start().await;
    for path in [
        "/api/admin/stats",
        "/api/admin/channels",
        "/api/admin/presence/lobby",
    ] {
        assert_eq!(get_admin(&server, path, None).await.0, 401, "{path}");
        assert_eq!(get_admin(&server, path, Some(&hq())).await.0, 403, "{path}");
        assert_eq!(
            get_admin(&server, path, Some(&admin_token())).await.0,
            200,
            "{path}"
        );
    }
    let res = reqwest::Client::new()
        .post(server.http("/api/admin/disconnect"))
        .bearer_auth(agent())
        .json(&json!({"user":"x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn stats_channels_and_presence_describe_the_node() {
    let server = TestServer::start().await;
    let mut ws =
        Ws::connect(&server.ws_url(&format!("?token={}", token("alice", Role::Agent, &[])))).await;
    ws.recv_type("authenticated").await;
    ws.subscribe("room:7").await;
    let mut sse = Sse::open(&server, "channels=room:7", &[]).await;
    sse.next_event().await;

    let (status, stats) = get_admin(&server, "/api/admin/stats", Some(&admin_token())).await;
    assert_eq!(status, 200);
    let nodes = stats["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{stats}");
    assert_eq!(nodes[0]["connections"]["websocket"], 1, "{stats}");
    assert_eq!(nodes[0]["connections"]["sse"], 1, "{stats}");
    assert!(
        nodes[0]["uptime_s"].is_u64() && nodes[0]["id"].is_string(),
        "{stats}"
    );
    assert!(stats["channels"].as_u64().unwrap() >= 1, "{stats}");

    let (_, channels) = get_admin(
        &server,
        "/api/admin/channels?prefix=room:",
        Some(&admin_token()),
    )
    .await;
    let rooms = channels.as_array().unwrap();
    assert_eq!(rooms.len(), 1, "{channels}");
    assert_eq!(rooms[0]["channel"], "room:7");
    assert_eq!(rooms[0]["subscribers"], 2);
    assert!(
        rooms[0]["epoch"].is_string() && rooms[0]["offset"].is_u64(),
        "{channels}"
    );

    let (_, presence) =
        get_admin(&server, "/api/admin/presence/room:7", Some(&admin_token())).await;
    let users: Vec<&Value> = presence["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["user"])
        .collect();
    assert!(users.contains(&&json!("alice")), "{presence}");
    assert_eq!(users.len(), 2, "{presence}");

    let (status, body) =
        get_admin(&server, "/api/admin/channels?limit=0", Some(&admin_token())).await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("limit")),
        "{body}"
    );
    let (status, body) = get_admin(
        &server,
        "/api/admin/presence/bad%20name",
        Some(&admin_token()),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("channel")),
        "{body}"
    );
}

#[tokio::test]
async fn disconnect_closes_every_connection_of_the_user_with_4011() {
    let server = TestServer::start().await;
    let alice = token("alice", Role::Agent, &[]);
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={alice}"))).await;
    ws.recv_type("authenticated").await;
    let mut bob =
        Ws::connect(&server.ws_url(&format!("?token={}", token("bob", Role::Agent, &[])))).await;
    bob.recv_type("authenticated").await;
    let mut sio = Sio::connect(server.addr, Some(json!({ "token": alice })), None)
        .await
        .unwrap();
    let bearer = format!("Bearer {alice}");
    let mut sse = Sse::open(&server, "channels=lobby", &[("authorization", &bearer)]).await;
    sse.next_event().await;

    let res = reqwest::Client::new()
        .post(server.http("/api/admin/disconnect"))
        .bearer_auth(admin_token())
        .json(&json!({"user":"alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["disconnected"], 3, "{body}");

    assert_eq!(ws.close_code().await, 4011);
    let events = sio.until_disconnect().await;
    let error = events
        .iter()
        .find(|(e, _)| e == "error")
        .unwrap_or_else(|| panic!("no error event in {events:?}"));
    assert_eq!(error.1["code"], 4011, "{events:?}");
    assert_eq!(error.1["message"], "disconnected by an administrator");
    let close = loop {
        let e = sse.next_event().await;
        if e.event.as_deref() == Some("close") {
            break e.json();
        }
    };
    assert_eq!(close["code"], 4011, "{close}");
    assert_eq!(close["reconnect"], false, "{close}");
    // Bob stays.
    bob.send(json!({"type":"ping"})).await;
    bob.recv_type("pong").await;

    let res = reqwest::Client::new()
        .post(server.http("/api/admin/disconnect"))
        .bearer_auth(admin_token())
        .json(&json!({"nobody":"x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn request_ids_are_taken_made_and_echoed() {
    let server = TestServer::start().await;
    let client = reqwest::Client::new();
    let id = |res: &reqwest::Response| {
        res.headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let res = client
        .get(server.http("/healthz"))
        .header("x-request-id", "from-the-proxy-42")
        .send()
        .await
        .unwrap();
    assert_eq!(id(&res).as_deref(), Some("from-the-proxy-42"));
    let made = id(&client.get(server.http("/healthz")).send().await.unwrap()).unwrap();
    assert_eq!(made.len(), 36, "a UUID: {made}");
    let other = id(&client.get(server.http("/nowhere")).send().await.unwrap()).unwrap();
    assert_ne!(made, other, "one id per request");
    // One that could forge a log field is replaced.
    let res = client
        .get(server.http("/healthz"))
        .header("x-request-id", "x level=ERROR")
        .send()
        .await
        .unwrap();
    let replaced = id(&res).unwrap();
    assert_ne!(replaced, "x level=ERROR");
    assert_eq!(replaced.len(), 36);
}

#[test]
fn the_grafana_dashboard_charts_every_family_and_only_those() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana-dashboard.json"
    );
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut used = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for (i, _) in expr.match_indices("switchboard_") {
                let name: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                used.insert(name.trim_end_matches("_bucket").to_owned());
            }
        }
    }
    let families: BTreeSet<String> = FAMILIES.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        used, families,
        "the dashboard and SPEC §8's families differ"
    );
}
