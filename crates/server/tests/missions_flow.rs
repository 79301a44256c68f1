//! The mission flow of SPEC §1.1 end to end: REST write → database → broadcast → WebSocket,
//! with the DTO per audience.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchboard_core::auth::Role;

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn put_broadcasts_the_dto_each_audience_may_see() {
    let server = TestServer::start().await;
    let mut anon = Ws::connect(&server.ws_url("")).await;
    let mut agent_ws = Ws::connect(&server.ws_url(&format!("?token={}", agent()))).await;
    assert_eq!(agent_ws.recv().await["type"], "authenticated");
    let mut hq_ws = Ws::connect(&server.ws_url(&format!("?token={}", hq()))).await;
    assert_eq!(hq_ws.recv().await["user"], "hq-1");
    for ws in [&mut anon, &mut agent_ws, &mut hq_ws] {
        let sub = ws.subscribe("missions").await;
        assert_eq!(sub["channel"], "missions");
        assert!(sub["epoch"].is_string());
    }
    let mut one = Ws::connect(&server.ws_url("")).await;
    one.subscribe("missions:1").await;

    let db = sqlx::SqlitePool::connect(&server.store_url).await.unwrap();
    let stored = || async {
        sqlx::query_as::<_, (String, String)>("SELECT status, location FROM missions WHERE id = 1")
            .fetch_one(&db)
            .await
            .unwrap()
    };
    assert_ne!(stored().await.1, "Berlin");
    // The write runs on its own; the check below happens the moment the first subscriber has
    // the publication, before the REST answer is even read.
    let put = {
        let url = server.http("/missions/1");
        tokio::spawn(async move {
            reqwest::Client::new()
                .put(url)
                .bearer_auth(hq())
                .json(&json!({"status":"compromised","location":"Berlin"}))
                .send()
                .await
                .unwrap()
        })
    };
    let expected_agent =
        json!({"id":1,"codename":"Nightingale","status":"compromised","location":"Berlin"});
    let first = anon.recv().await;
    // Saved before it was published: the row in the database file already holds the change
    // when the publication arrives.
    assert_eq!(
        stored().await,
        ("compromised".to_owned(), "Berlin".to_owned()),
        "published before it was saved"
    );
    assert_eq!(first["data"], expected_agent);
    let res = put.await.unwrap();
    assert_eq!(res.status(), 200);
    let answered: Value = res.json().await.unwrap();

    for (i, ws) in [&mut anon, &mut agent_ws].into_iter().enumerate() {
        let d = if i == 0 {
            first.clone()
        } else {
            ws.recv().await
        };
        assert_eq!(d["type"], "mission-update");
        assert_eq!(d["channel"], "missions");
        assert!(d["offset"].as_u64().unwrap() >= 1);
        assert!(d["epoch"].is_string() && d["timestamp"].is_u64());
        assert_eq!(d["data"], expected_agent);
    }
    let d = hq_ws.recv().await;
    assert_eq!(
        keys(&d["data"]),
        [
            "codename",
            "id",
            "location",
            "objective",
            "status",
            "updated_at"
        ]
    );
    // The REST answer is the same DTO that was broadcast to that audience.
    assert_eq!(d["data"], answered);
    let d = one.recv().await;
    assert_eq!(d["channel"], "missions:1");
    assert_eq!(d["data"], expected_agent);

    // And the REST read serves what was saved.
    let got: Value = reqwest::get(server.http("/missions/1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, expected_agent);
}

#[tokio::test]
async fn rest_reads_are_per_audience() {
    let server = TestServer::start().await;
    let c = reqwest::Client::new();
    let list: Value = c
        .get(server.http("/missions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list = list.as_array().unwrap();
    assert!(list.len() >= 5);
    for m in list {
        assert_eq!(keys(m), ["codename", "id", "location", "status"]);
    }
    let hq_list: Value = c
        .get(server.http("/missions"))
        .bearer_auth(hq())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        keys(&hq_list[0]),
        [
            "codename",
            "id",
            "location",
            "objective",
            "status",
            "updated_at"
        ]
    );
    let one: Value = c
        .get(server.http("/missions/3"))
        .bearer_auth(agent())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys(&one), ["codename", "id", "location", "status"]);
    let missing = c.get(server.http("/missions/999")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"error":"Mission not found"})
    );
}

#[tokio::test]
async fn writes_validate_and_name_the_field() {
    let server = TestServer::start().await;
    let res = put_mission(&server, 999, Some(&hq()), json!({"status":"active"})).await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error":"Mission not found"})
    );

    for (body, field) in [
        (json!({"status":"lost"}), "status"),
        (json!({"location": "x".repeat(201)}), "location"),
        (json!({"objective": 12}), "objective"),
        (json!({"handler_notes":"x"}), "body"),
        (json!({}), "body"),
        (json!([1]), "body"),
    ] {
        let res = put_mission(&server, 1, Some(&hq()), body.clone()).await;
        assert_eq!(res.status(), 422, "{body}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["field"], field, "{body} → {v}");
        assert!(v["error"].as_str().unwrap().len() > 3);
    }
    let res = reqwest::Client::new()
        .put(server.http("/missions/1"))
        .bearer_auth(hq())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(res.json::<Value>().await.unwrap()["field"], "body");
}

#[tokio::test]
async fn create_and_delete_publish_and_answer_the_dto() {
    let server = TestServer::start().await;
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.subscribe("missions").await;
    let c = reqwest::Client::new();
    let res = c
        .post(server.http("/missions"))
        .bearer_auth(hq())
        .json(&json!({"codename":"Night Owl","location":"Prague","objective":"Watch","extraction_code":"SECRET-X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["status"], "planned");
    let id = created["id"].as_i64().unwrap();
    let d = ws.recv().await;
    assert_eq!(d["type"], "mission-update");
    assert_eq!(
        d["data"],
        json!({"id":id,"codename":"Night Owl","status":"planned","location":"Prague"})
    );

    let res = c
        .post(server.http("/missions"))
        .bearer_auth(hq())
        .json(&json!({"location":"x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(res.json::<Value>().await.unwrap()["field"], "codename");

    let res = c
        .delete(server.http(&format!("/missions/{id}")))
        .bearer_auth(hq())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let d = ws.recv().await;
    assert_eq!(d["type"], "mission-removed");
    assert_eq!(d["data"], json!({"id": id}));
    let res = c
        .delete(server.http(&format!("/missions/{id}")))
        .bearer_auth(hq())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn rest_auth_failures() {
    let server = TestServer::start().await;
    // A body that differs from the stored row, so a refused write that slipped through
    // would show in the row and on the channel.
    let body = json!({"status":"aborted","location":"Nowhere"});
    let read = || async {
        reqwest::Client::new()
            .get(server.http("/missions/1"))
            .bearer_auth(hq())
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let before = read().await;
    assert_ne!(
        (&before["status"], &before["location"]),
        (&json!("aborted"), &json!("Nowhere")),
        "the refused body must differ from the stored row: {before}"
    );
    let mut watcher = Ws::connect(&server.ws_url("")).await;
    watcher.subscribe("missions:1").await;
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        ("missing", None, 401, "Authentication required"),
        ("malformed", Some("abc.def".into()), 401, "Invalid token"),
        (
            "wrong key",
            Some(token_with(
                "another-secret-of-good-length",
                "x",
                Role::Hq,
                &[],
                now() + 60,
            )),
            401,
            "Invalid token",
        ),
        ("alg none", Some(alg_none_token()), 401, "Invalid token"),
        (
            "expired",
            Some(token_with(SECRET, "x", Role::Hq, &[], now() - 120)),
            401,
            "Token expired",
        ),
        (
            "wrong role",
            Some(agent()),
            403,
            "Forbidden: requires role hq",
        ),
        (
            "pipeline role",
            Some(token("p", Role::Pipeline, &[])),
            403,
            "Forbidden: requires role hq",
        ),
    ];
    for (name, tok, status, error) in cases {
        let res = put_mission(&server, 1, tok.as_deref(), body.clone()).await;
        assert_eq!(res.status().as_u16(), status, "{name}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], error, "{name}");
    }
    // Nothing was written (the whole HQ view, `updated_at` included, is unchanged) and
    // nothing was published.
    assert_eq!(read().await, before);
    watcher.expect_silence(Duration::from_millis(100)).await;
    // Admins may write too: the same body does change the row and is published.
    let res = put_mission(&server, 1, Some(&token("root", Role::Admin, &[])), body).await;
    assert_eq!(res.status(), 200);
    let after = read().await;
    assert_eq!(
        (&after["status"], &after["location"]),
        (&json!("aborted"), &json!("Nowhere"))
    );
    let d = watcher.recv().await;
    assert_eq!(
        (d["type"].as_str(), d["data"]["location"].as_str()),
        (Some("mission-update"), Some("Nowhere"))
    );
}

#[tokio::test]
async fn healthz_and_readyz() {
    let server = TestServer::start().await;
    let h = reqwest::get(server.http("/healthz")).await.unwrap();
    assert_eq!(h.status(), 200);
    let r = reqwest::get(server.http("/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["ready"], true);
}
