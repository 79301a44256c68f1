//! Canary: unique strings in every classified column must never reach any client — not in REST
//! bodies (success or error), not in any WebSocket frame, for any audience.

mod common;

use common::*;
use serde_json::{Value, json};
use switchboard_core::auth::Role;

const COLUMNS: [&str; 3] = ["handler_notes", "asset_identity", "extraction_code"];

fn canary(column: &str, id: i64) -> String {
    format!("CANARY-{column}-{id}-7f3a9c")
}

#[tokio::test]
async fn classified_columns_never_leave_the_server() {
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

    let everything: Vec<&String> = bodies
        .iter()
        .chain(sockets.iter().flat_map(|s| s.seen.iter()))
        .collect();
    assert!(
        everything.len() > 100,
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
