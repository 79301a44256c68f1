//! Change capture on the embedded default (issue 16): a row another program writes to the
//! SQLite file — the `sqlite3` CLI, a script; here a connection of the test's own — is
//! broadcast like an API write, with only the whitelisted fields; an API write is broadcast
//! once, not a second time by capture.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::time::Duration;

use common::{TestServer, Ws, hq, put_mission};
use serde_json::json;
use sqlx::{Connection, SqliteConnection};

#[tokio::test]
async fn a_row_written_by_another_program_is_broadcast_and_api_writes_once() {
    let server = TestServer::start().await;
    assert!(
        server.store_url.starts_with("sqlite:"),
        "{}",
        server.store_url
    );
    let mut ws = Ws::connect(&server.ws_url("")).await;
    ws.subscribe("missions:1").await;

    let mut other = SqliteConnection::connect(&server.store_url).await.unwrap();
    sqlx::query(
        "UPDATE missions SET location = 'Tallinn', handler_notes = 'CLASSIFIED-CLI' WHERE id = 1",
    )
    .execute(&mut other)
    .await
    .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(3), ws.recv_type("mission-update"))
        .await
        .expect("the foreign write is broadcast within the poll interval");
    assert_eq!(got["data"]["location"], "Tallinn");
    assert!(
        !got.to_string().contains("CLASSIFIED"),
        "classified field leaked: {got}"
    );
    ws.expect_silence(Duration::from_millis(500)).await;

    // An API write: one broadcast, by the API; capture does not repeat it.
    let res = put_mission(&server, 1, Some(&hq()), json!({"location": "Riga"})).await;
    assert_eq!(res.status(), 200);
    let update = ws.recv_type("mission-update").await;
    assert_eq!(update["data"]["location"], "Riga");
    ws.expect_silence(Duration::from_millis(800)).await;

    // Published entries are removed from the log.
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM change_log")
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert_eq!(left, 0);
    other.close().await.unwrap();
}
