//! The PostgreSQL store: the same tables and behaviour as SQLite (migrations/postgres mirrors
//! migrations/sqlite version for version), shared by every node of a scaled-out deployment.
//!
//! Writes made through the API mark their transaction (`switchboard.origin = 'api'`) so the
//! change-capture triggers (see `cdc`) only record changes made by other writers. That marking,
//! opening, migrating and change capture are all that live here; the queries are the shared
//! body (`body.rs`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{ConnectOptions, Connection, Postgres};
use tokio::sync::mpsc;

use crate::body::{ApiWrite, Dialect};
use crate::{CaptureConfig, ChangeEvent, ChangeId, StoreError, cdc};

/// The store a scaled-out deployment shares: every node reads and writes the same rows, and
/// change capture publishes what other writers change.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Who this store is when it leases change-capture entries: unique per process and open,
    /// so a restarted node never mistakes a dead predecessor's leases for its own.
    claimant: String,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PostgresStore {
    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?options]`).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|source| StoreError::Open {
            url: crate::redact_url(url),
            source,
        })?;
        Self::connect_with(options, url).await
    }

    /// Connects with explicit options (tests pin a `search_path` to a schema of their own).
    /// `url_for_errors` is redacted before it appears in an error.
    pub async fn connect_with(
        options: PgConnectOptions,
        url_for_errors: &str,
    ) -> Result<Self, StoreError> {
        // The pool retries until its acquire timeout and then says only "pool timed out"; one
        // direct connection first names the real cause (refused, unknown database, password).
        let open_err = |source| StoreError::Open {
            url: crate::redact_url(url_for_errors),
            source,
        };
        match tokio::time::timeout(Duration::from_secs(5), options.connect()).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(source)) => return Err(open_err(source)),
            Err(_) => {
                return Err(open_err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer within 5 s",
                ))));
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .idle_timeout(Some(Duration::from_secs(600)))
            .connect_with(options.application_name("switchboard"))
            .await
            .map_err(|source| StoreError::Open {
                url: crate::redact_url(url_for_errors),
                source,
            })?;
        Ok(Self {
            pool,
            claimant: claimant_id(),
        })
    }

    /// Applies pending migrations; returns how many were applied (0: it was up to date).
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let before = self.applied_migrations().await;
        MIGRATOR.run(&self.pool).await?;
        Ok(self.applied_migrations().await.saturating_sub(before))
    }

    /// How many migrations the database has recorded (0 before the first).
    async fn applied_migrations(&self) -> usize {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .map_or(0, |n| usize::try_from(n).unwrap_or(0))
    }

    /// The connection pool (change capture listens and claims through it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// A claimant id: the process id and random bits, e.g. `4711-9f3a2c1e0b7d5a68`.
fn claimant_id() -> String {
    format!("{}-{:016x}", std::process::id(), rand::random::<u64>())
}

impl Dialect for PostgresStore {
    type Db = Postgres;

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Marks the transaction as an API write: change capture skips its rows, because the API
    /// publishes them itself (publishing them again would deliver them twice). `set_config(…,
    /// true)` scopes the mark to this transaction, so a pooled connection never carries it on.
    async fn begin_api_write(&self) -> Result<ApiWrite<Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('switchboard.origin', 'api', true)")
            .execute(&mut *tx)
            .await?;
        Ok(ApiWrite {
            tx,
            logged_before: None,
            _turn: None,
        })
    }

    async fn finish_api_write(&self, write: ApiWrite<Postgres>) -> Result<(), StoreError> {
        write.tx.commit().await?;
        Ok(())
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn capture_changes(&self, config: CaptureConfig) -> Option<mpsc::Receiver<ChangeEvent>> {
        Some(cdc::postgres::spawn(
            self.pool.clone(),
            self.claimant.clone(),
            config,
        ))
    }

    async fn ack_changes(&self, ids: &[ChangeId]) -> Result<(), StoreError> {
        cdc::postgres::ack(&self.pool, &self.claimant, ids).await
    }
}
