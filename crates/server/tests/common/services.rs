//! Real PostgreSQL and Redis on 127.0.0.1 for scale-out tests. Unreachable services skip the
//! test with a printed reason, unless `SWITCHBOARD_REQUIRE_SERVICES=1`, where they fail it.
//! Each test gets its own PostgreSQL schema and Redis key prefix, removed by [`Services::clean`] or,
//! when a test fails before it, by the drop guard.

use std::time::Duration;

use rand::Rng;

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

pub struct Services {
    pub schema: String,
    pub prefix: String,
    pub pg: sqlx::PgPool,
    redis: redis::aio::MultiplexedConnection,
    cleaned: bool,
}

impl Services {
    /// Points a node's config at this test's PostgreSQL schema and Redis prefix, so several
    /// nodes of one test share them and no two tests do.
    pub fn configure(&self, c: &mut switchboard::Config) {
        c.store.url = self.store_url();
        c.broker.url = REDIS_URL.to_owned();
        c.broker.prefix = self.prefix.clone();
    }

    /// Like [`Self::configure`], but reaching Redis and PostgreSQL at the given addresses
    /// (a cuttable proxy in front of the shared services).
    pub fn configure_through(
        &self,
        c: &mut switchboard::Config,
        redis: std::net::SocketAddr,
        pg: std::net::SocketAddr,
    ) {
        c.store.url = format!(
            "postgres://postgres@{pg}/test?options[search_path]={}",
            self.schema
        );
        c.broker.url = format!("redis://{redis}");
        c.broker.prefix = self.prefix.clone();
    }

    /// Points a `switchboard` binary's command at this test's schema and Redis prefix, with
    /// Redis at `redis_url` (the shared one, or a test's own or proxied one), like
    /// [`Self::configure`] does for an in-process node.
    pub fn node_env(&self, cmd: &mut tokio::process::Command, secret: &str, redis_url: &str) {
        cmd.env("SWITCHBOARD_AUTH__JWT_SECRET", secret)
            .env("SWITCHBOARD_STORE__URL", self.store_url())
            .env("SWITCHBOARD_BROKER__URL", redis_url)
            .env("SWITCHBOARD_BROKER__PREFIX", &self.prefix);
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

    /// How many Redis pub/sub subscriptions the broker feed of `channel` has: one per node
    /// with a local subscriber on it. A node subscribes there when its first local client
    /// registers, so this shows from outside that a client's registration has happened.
    pub async fn feed_subscribers(&self, channel: &str) -> u64 {
        let mut redis = self.redis.clone();
        let (_, n): (String, u64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(format!("{}:feed:{channel}", self.prefix))
            .query_async(&mut redis)
            .await
            .unwrap();
        n
    }

    /// Waits (at most 5 s) until [`Self::feed_subscribers`] of `channel` is `n`.
    pub async fn wait_feed_subscribers(&self, channel: &str, n: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let now = self.feed_subscribers(channel).await;
            if now == n {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{channel}: {now} feed subscribers, waited for {n}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Drops the schema and deletes the Redis keys of this test, now. (Dropping a `Services`
    /// without calling this does the same from a guard, so a failing test cleans up too.)
    pub async fn clean(mut self) {
        drop_schema_and_keys(&self.pg, &mut self.redis, &self.schema, &self.prefix)
            .await
            .unwrap();
        self.cleaned = true;
    }
}

async fn drop_schema_and_keys(
    pg: &sqlx::PgPool,
    redis: &mut redis::aio::MultiplexedConnection,
    schema: &str,
    prefix: &str,
) -> Result<(), String> {
    // The name is ours: `test_` and hex digits.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(pg)
    .await
    .map_err(|e| e.to_string())?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(redis)
        .await
        .map_err(|e| e.to_string())?;
    if !keys.is_empty() {
        let _: u64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(redis)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

impl Drop for Services {
    /// The guard for a test that ended early (a failed assertion): cleans up on a thread of
    /// its own with fresh connections, since the test's runtime may be unwinding. Bounded by a
    /// lock timeout and a deadline so a stuck cleanup cannot hang the run; failures are
    /// printed, not raised (a panic in a panic would abort).
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let (schema, prefix) = (self.schema.clone(), self.prefix.clone());
        let outcome = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let work = async {
                    let pg = sqlx::postgres::PgPoolOptions::new()
                        .max_connections(1)
                        .after_connect(|conn, _| {
                            Box::pin(async move {
                                use sqlx::Executor;
                                conn.execute("SET lock_timeout = '5s'").await?;
                                Ok(())
                            })
                        })
                        .connect(PG_URL)
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut redis = redis::Client::open(REDIS_URL)
                        .map_err(|e| e.to_string())?
                        .get_multiplexed_async_connection()
                        .await
                        .map_err(|e| e.to_string())?;
                    drop_schema_and_keys(&pg, &mut redis, &schema, &prefix).await
                };
                tokio::time::timeout(Duration::from_secs(15), work)
                    .await
                    .map_err(|_| "timed out".to_owned())?
            })
        })
        .join();
        if !matches!(outcome, Ok(Ok(()))) {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!(
                    "cleanup of schema {} / prefix {} failed: {outcome:?}\n",
                    self.schema, self.prefix
                ),
            );
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
            cleaned: false,
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
