//! Canary: unique strings in every classified column must never reach any client — not in REST
//! bodies (success or error), not on any transport (native WebSocket, Socket.IO, SSE,
//! long-poll), for any audience, not in the logs — and, across nodes, not in what travels
//! through or is stored in Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;
#[path = "common/services.rs"]
#[allow(dead_code)] // shared helper; this file does not use every part of it
mod services;

use common::feeds::{Sse, poll};
use common::sio::{Packet, Sio};
use common::*;
use serde_json::{Value, json};
use switchboard_core::auth::Role;

const COLUMNS: [&str; 3] = ["handler_notes", "asset_identity", "extraction_code"];

fn canary(column: &str, id: i64) -> String {
    format!("CANARY-{column}-{id}-7f3a9c")
}

#[tokio::test]
async fn classified_columns_never_leave_the_server() {
    let logs = common::logs::LogCapture::start();
    let server = TestServer::start().await;
    let db = server_db(&server).await;
    for id in 1..=5 {
        for col in COLUMNS {
            let sql = format!("UPDATE missions SET {col} = ? WHERE id = ?");
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(canary(col, id))
                .bind(id)
                .execute(&db)
                .await
                .unwrap();
        }
    }
    // These writes are foreign to the server, so change capture broadcasts them (without the
    // canaries: the log it writes names rows, not values). Let it finish before anyone
    // subscribes, so the counts below are those of the API writes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM change_log")
        .fetch_one(&db)
        .await
        .unwrap()
        > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "change capture never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let tokens: Vec<(&str, Option<String>)> = vec![
        ("anonymous", None),
        ("agent", Some(agent())),
        ("hq", Some(hq())),
        ("pipeline", Some(token("p", Role::Pipeline, &[]))),
        ("admin", Some(token("root", Role::Admin, &[]))),
    ];
    let mut sockets = Vec::new();
    for (_, tok) in &tokens {
        let q = tok
            .as_ref()
            .map(|t| format!("?token={t}"))
            .unwrap_or_default();
        let mut ws = Ws::connect(&server.ws_url(&q)).await;
        ws.subscribe("missions").await;
        for id in 1..=5 {
            ws.subscribe(&format!("missions:{id}")).await;
        }
        sockets.push(ws);
    }
    let channels = "missions,missions:1,missions:2,missions:3,missions:4,missions:5";
    let mut streams = Vec::new();
    let mut sios = Vec::new();
    let mut cursors = Vec::new();
    for (_, tok) in &tokens {
        let headers: Vec<(&str, String)> = tok
            .iter()
            .map(|t| ("Authorization", format!("Bearer {t}")))
            .collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut sse = Sse::open(&server, &format!("channels={channels}"), &headers).await;
        assert_eq!(sse.next_event().await.json()["type"], "connected");
        streams.push(sse);
        let (status, first) = poll(&server, &format!("channels={channels}"), &headers).await;
        assert_eq!(status, 200);
        cursors.push(first["cursor"].as_str().unwrap().to_owned());
        let auth = tok.as_ref().map(|t| json!({ "token": t }));
        let mut sio = Sio::connect(server.addr, auth, None).await.unwrap();
        sio.recv_event("socket-id").await;
        for id in 1..=5u64 {
            sio.emit_with_ack(id, "subscribe", json!(format!("missions:{id}")))
                .await;
            assert_eq!(sio.recv_ack(id).await["ok"], true);
        }
        sios.push(sio);
    }

    let c = reqwest::Client::new();
    let mut bodies = Vec::new();
    for (_, tok) in &tokens {
        let auth = |r: reqwest::RequestBuilder| match tok {
            Some(t) => r.bearer_auth(t),
            None => r,
        };
        bodies.push(
            auth(c.get(server.http("/missions")))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        for id in 1..=5 {
            bodies.push(
                auth(c.get(server.http(&format!("/missions/{id}"))))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
            );
        }
    }
    // Writes that broadcast, and errors that quote input.
    for id in 1..=5 {
        let res = put_mission(
            &server,
            id,
            Some(&hq()),
            json!({"status":"active","location":format!("L{id}")}),
        )
        .await;
        bodies.push(res.text().await.unwrap());
        let res = put_mission(
            &server,
            id,
            Some(&hq()),
            json!({"handler_notes": canary("handler_notes", 99)}),
        )
        .await;
        assert_eq!(res.status(), 422);
        bodies.push(res.text().await.unwrap());
    }
    let created = c
        .post(server.http("/missions"))
        .bearer_auth(hq())
        .json(&json!({
            "codename":"Canary","location":"Here",
            "handler_notes": canary("handler_notes", 6),
            "asset_identity": canary("asset_identity", 6),
            "extraction_code": canary("extraction_code", 6),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created = created.text().await.unwrap();
    let new_id = serde_json::from_str::<Value>(&created).unwrap()["id"]
        .as_i64()
        .unwrap();
    bodies.push(created);
    bodies.push(
        c.get(server.http(&format!("/missions/{new_id}")))
            .bearer_auth(hq())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    bodies.push(
        c.delete(server.http(&format!("/missions/{new_id}")))
            .bearer_auth(hq())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );

    // Every socket got every update (5 PUTs × 2 channels + create + delete on `missions`).
    for ws in &mut sockets {
        for _ in 0..(5 * 2 + 2) {
            let d = ws.recv().await;
            assert!(
                d["type"] == "mission-update" || d["type"] == "mission-removed",
                "{d}"
            );
        }
    }

    // The same updates over SSE, Socket.IO and long-poll, for every audience.
    let mut other_frames: Vec<String> = Vec::new();
    for sse in &mut streams {
        for _ in 0..(5 * 2 + 2) {
            let ev = sse.next_event().await;
            assert!(
                matches!(
                    ev.event.as_deref(),
                    Some("mission-update" | "mission-removed")
                ),
                "{ev:?}"
            );
        }
        other_frames.push(sse.raw.clone());
    }
    for sio in &mut sios {
        for _ in 0..(5 * 2 + 2) {
            match sio.recv().await {
                Packet::Event(e, d) => {
                    assert!(e == "mission-update" || e == "mission-removed", "{e}");
                    other_frames.push(d.to_string());
                }
                other => panic!("{other:?}"),
            }
        }
    }
    for ((_, tok), cursor) in tokens.iter().zip(&cursors) {
        let headers: Vec<(&str, String)> = tok
            .iter()
            .map(|t| ("Authorization", format!("Bearer {t}")))
            .collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = poll(
            &server,
            &format!("channels={channels}&cursor={cursor}"),
            &headers,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(
            body["updates"].as_array().unwrap().len(),
            5 * 2 + 2,
            "{body}"
        );
        other_frames.push(body.to_string());
    }
    let log_text = logs.text();
    assert!(
        log_text.contains("feed joined"),
        "the server's logs were captured"
    );
    other_frames.push(log_text);

    let everything: Vec<&String> = bodies
        .iter()
        .chain(sockets.iter().flat_map(|s| s.seen.iter()))
        .chain(other_frames.iter())
        .collect();
    assert!(
        everything.len() > 150,
        "the check saw real traffic: {}",
        everything.len()
    );
    for text in everything {
        assert!(!text.contains("CANARY"), "classified data leaked: {text}");
        for col in COLUMNS {
            assert!(!text.contains(col), "classified column name leaked: {text}");
        }
    }
    // The canaries really are in the database (so the check above could have failed).
    let stored: String = sqlx::query_scalar("SELECT extraction_code FROM missions WHERE id = 3")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(stored, canary("extraction_code", 3));
}

async fn server_db(server: &TestServer) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&server.store_url).await.unwrap()
}

/// Across nodes: canaries written by a foreign writer into PostgreSQL, published by change
/// capture on one node, delivered through Redis to clients of the other node on every
/// transport — and nothing classified in the Redis keys of the test (history, metadata).
#[tokio::test]
async fn classified_columns_never_cross_nodes_or_reach_redis() {
    let Some(s) = services::services_or_skip("classified_columns_never_cross_nodes").await else {
        return;
    };
    let a = TestServer::start_with(|c| s.configure(c)).await;
    let b = TestServer::start_with(|c| s.configure(c)).await;
    let mut native = Ws::connect(&b.ws_url(&format!("?token={}", hq()))).await;
    native.recv_type("authenticated").await;
    native.subscribe("missions:2").await;
    let mut sse = Sse::open(&b, "channels=missions:2", &[]).await;
    assert_eq!(sse.next_event().await.json()["type"], "connected");
    let mut sio = Sio::connect(b.addr, Some(json!({"token": hq()})), None)
        .await
        .unwrap();
    sio.recv_event("socket-id").await;
    // It joined `missions` on connect; an acked request proves the join is done.
    sio.emit_with_ack(1, "subscribe", json!("lobby")).await;
    assert_eq!(sio.recv_ack(1).await["ok"], true);

    // A foreign write of every classified column and a public one: change capture publishes
    // the row (from whichever node claims it).
    let mut writer = s.foreign_writer().await;
    sqlx::query(
        "UPDATE missions SET handler_notes = $1, asset_identity = $2, extraction_code = $3, \
         location = 'Foreign Wharf' WHERE id = 2",
    )
    .bind(canary("handler_notes", 2))
    .bind(canary("asset_identity", 2))
    .bind(canary("extraction_code", 2))
    .execute(&mut writer)
    .await
    .unwrap();
    let mut frames = Vec::new();
    for (i, location) in ["Foreign Wharf", "Via Redis"].into_iter().enumerate() {
        if i == 1 {
            // Then an API write through node A, delivered to node B's clients through
            // Redis. (Only after the first arrived: change capture publishes the row as it
            // is when read, so an earlier write would be what it publishes.)
            let res = put_mission(&a, 2, Some(&hq()), json!({"location": location})).await;
            assert_eq!(res.status(), 200);
        }
        let d = native.recv_type("mission-update").await;
        assert_eq!(d["data"]["location"], location);
        let ev = sse.next_event().await;
        assert_eq!(ev.json()["data"]["location"], location);
        let got = sio.recv_event("mission-update").await;
        assert_eq!(got["location"], location);
        frames.push(got.to_string());
    }
    frames.push(sse.raw.clone());
    frames.extend(native.seen.iter().cloned());

    // Everything this test's nodes stored in Redis, read by type.
    let client = redis::Client::open(services::REDIS_URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", s.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "the nodes stored history in Redis");
    let mut stored = String::new();
    for key in &keys {
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let read = match kind.as_str() {
            "string" => redis::cmd("GET").arg(key).clone(),
            "list" => redis::cmd("LRANGE").arg(key).arg(0).arg(-1).clone(),
            "hash" => redis::cmd("HGETALL").arg(key).clone(),
            "set" => redis::cmd("SMEMBERS").arg(key).clone(),
            "zset" => redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).clone(),
            "stream" => redis::cmd("XRANGE").arg(key).arg("-").arg("+").clone(),
            other => panic!("unexpected Redis type {other} for {key}"),
        };
        let value: redis::Value = read.query_async(&mut conn).await.unwrap();
        stored.push_str(&text_of(&value));
        stored.push('\n');
    }
    assert!(
        stored.contains("Via Redis"),
        "the history was read: {stored}"
    );
    frames.push(stored);
    for text in &frames {
        assert!(!text.contains("CANARY"), "classified data leaked: {text}");
        for col in COLUMNS {
            assert!(!text.contains(col), "classified column name leaked: {text}");
        }
    }
    // The canaries really are in the database.
    let stored: String = sqlx::query_scalar("SELECT extraction_code FROM missions WHERE id = 2")
        .fetch_one(&mut writer)
        .await
        .unwrap();
    assert_eq!(stored, canary("extraction_code", 2));
    s.clean().await;
}

/// The text in a Redis reply, flattened.
fn text_of(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(t) => t.clone(),
        redis::Value::Int(i) => i.to_string(),
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.iter().map(text_of).collect::<Vec<_>>().join(" ")
        }
        redis::Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| format!("{} {}", text_of(k), text_of(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => format!("{other:?}"),
    }
}
