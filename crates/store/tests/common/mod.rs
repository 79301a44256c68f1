//! Backends for the shared store tests: SQLite in memory always; PostgreSQL on 127.0.0.1 in a
//! fresh schema per test when reachable. Unreachable PostgreSQL skips (with a printed reason)
//! unless `SWITCHBOARD_REQUIRE_SERVICES=1`, where it fails.

#![allow(dead_code)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sqlx::postgres::PgConnectOptions;
use switchboard_store::{PostgresStore, SqliteStore, Store};

/// The test database (trust auth, no password).
pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Whether services are mandatory for this run.
pub fn services_required() -> bool {
    std::env::var("SWITCHBOARD_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A migrated in-memory SQLite store.
pub async fn sqlite() -> Arc<dyn Store> {
    let s = SqliteStore::open("sqlite::memory:").await.unwrap();
    s.migrate().await.unwrap();
    Arc::new(s)
}

/// A PostgreSQL schema of one test; [`PgSchema::drop`] removes it.
pub struct PgSchema {
    pub name: String,
    pub admin: sqlx::PgPool,
}

impl PgSchema {
    /// Connect options whose connections live in this schema.
    pub fn options(&self) -> PgConnectOptions {
        PgConnectOptions::from_str(PG_URL)
            .unwrap()
            .options([("search_path", self.name.as_str())])
    }

    /// A migrated store in this schema.
    pub async fn store(&self) -> PostgresStore {
        let s = PostgresStore::connect_with(self.options(), PG_URL)
            .await
            .unwrap();
        s.migrate().await.unwrap();
        s
    }

    /// Drops the schema and everything in it.
    pub async fn drop(self) {
        // The name is ours: `test_` and hex digits.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            self.name
        )))
        .execute(&self.admin)
        .await
        .unwrap();
    }
}

/// A fresh schema in the test database, or `None` (after printing why) when PostgreSQL is
/// unreachable and services are optional.
pub async fn pg_schema(test: &str) -> Option<PgSchema> {
    let attempt = async {
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(2))
            .connect(PG_URL)
            .await?;
        let name = format!("test_{:016x}", rand::rng().random::<u64>());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&admin)
            .await?;
        Ok::<_, sqlx::Error>(PgSchema { name, admin })
    };
    let outcome = match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    match outcome {
        Ok(schema) => Some(schema),
        Err(e) if services_required() => {
            panic!(
                "{test}: PostgreSQL at {PG_URL} is required (SWITCHBOARD_REQUIRE_SERVICES=1): {e}"
            )
        }
        Err(e) => {
            // Written to stderr directly: the test harness hides `eprintln!` of passing tests.
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("SKIPPED {test} on PostgreSQL: {PG_URL} unreachable ({e})\n"),
            );
            None
        }
    }
}

/// Runs `body` against SQLite, then against PostgreSQL in a fresh schema when reachable.
#[macro_export]
macro_rules! on_every_backend {
    ($name:ident, $body:ident) => {
        #[tokio::test]
        async fn $name() {
            $body(common::sqlite().await).await;
            if let Some(schema) = common::pg_schema(stringify!($name)).await {
                $body(std::sync::Arc::new(schema.store().await)).await;
                schema.drop().await;
            }
        }
    };
}

/// Every kind of API write to a table change capture watches — create, update and delete a
/// mission, post a city snapshot twice — which change capture must never report (the API
/// publishes them itself). Returns the created (and deleted) mission's id.
pub async fn every_api_write(store: &dyn Store) -> i64 {
    let created = store
        .create_mission(&switchboard_store::NewMission {
            codename: "Api".into(),
            location: "Here".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let patch = switchboard_store::MissionPatch {
        location: Some("There".into()),
        ..Default::default()
    };
    store
        .update_mission(created.id, &patch)
        .await
        .unwrap()
        .unwrap();
    assert!(store.delete_mission(created.id).await.unwrap());
    let metrics = std::collections::BTreeMap::from([("traffic".to_owned(), 1.0)]);
    store.put_city_snapshot("rome", &metrics).await.unwrap();
    store.put_city_snapshot("rome", &metrics).await.unwrap();
    created.id
}
