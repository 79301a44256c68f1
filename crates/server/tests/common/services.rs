//! Real PostgreSQL and Redis on 127.0.0.1 for scale-out tests. Unreachable services skip the
//! test with a printed reason, unless `SWITCHBOARD_REQUIRE_SERVICES=1`, where they fail it.
//! Each test gets its own PostgreSQL schema and Redis key prefix, removed by [`Services::clean`].

use std::time::Duration;

use rand::Rng;

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

pub struct Services {
    pub schema: String,
    pub prefix: String,
    pub pg: sqlx::PgPool,
    redis: redis::aio::MultiplexedConnection,
}

impl Services {
    /// Points a node's config at this test's PostgreSQL schema and Redis prefix, so several
    /// nodes of one test share them and no two tests do.
    pub fn configure(&self, c: &mut switchboard::Config) {
        c.store.url = self.store_url();
        c.broker.url = REDIS_URL.to_owned();
        c.broker.prefix = self.prefix.clone();
    }

    /// `store.url` for this test's schema.
    pub fn store_url(&self) -> String {
        format!("{PG_URL}?options[search_path]={}", self.schema)
    }

    /// A connection to this test's schema, as a foreign writer (psql, another service).
    pub async fn foreign_writer(&self) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&self.store_url())
            .await
            .unwrap()
    }

    /// Drops the schema and deletes the Redis keys of this test.
    pub async fn clean(mut self) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            self.schema
        )))
        .execute(&self.pg)
        .await
        .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut self.redis)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: u64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut self.redis)
                .await
                .unwrap();
        }
    }
}

/// Both services with a fresh schema and prefix, or `None` after printing why they are not.
pub async fn services_or_skip(test: &str) -> Option<Services> {
    let attempt = async {
        let pg = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(2))
            .connect(PG_URL)
            .await
            .map_err(|e| format!("PostgreSQL at {PG_URL}: {e}"))?;
        let client = redis::Client::open(REDIS_URL).map_err(|e| e.to_string())?;
        let redis = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| format!("Redis at {REDIS_URL}: {e}"))?;
        let id = rand::rng().random::<u64>();
        let schema = format!("test_{id:016x}");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&pg)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(Services {
            schema,
            prefix: format!("sbtest:{id:016x}"),
            pg,
            redis,
        })
    };
    let outcome = match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(r) => r,
        Err(_) => Err("timed out".to_owned()),
    };
    match outcome {
        Ok(s) => Some(s),
        Err(e) if std::env::var("SWITCHBOARD_REQUIRE_SERVICES").is_ok_and(|v| v == "1") => {
            panic!("{test}: services required (SWITCHBOARD_REQUIRE_SERVICES=1): {e}")
        }
        Err(e) => {
            // Written to stderr directly: the test harness hides `eprintln!` of passing tests.
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("SKIPPED {test}: {e}\n"),
            );
            None
        }
    }
}
