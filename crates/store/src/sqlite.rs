//! The SQLite store: one file in the data directory, WAL mode, created on first start.
//!
//! Opening, migrating, the API-write transaction and change capture live here; the queries are
//! the shared body (`body.rs`). Change capture (`cdc::sqlite`) publishes rows another program
//! wrote; the API's own writes delete what their statement logged, because they publish
//! themselves.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use std::sync::Arc;

use sqlx::Sqlite;
use tokio::sync::mpsc;

use crate::body::{ApiWrite, Dialect};
use crate::{CaptureConfig, ChangeEvent, ChangeId, StoreError, cdc};

/// The default store: one file, owned by this process; rows other programs write to it are
/// published through change capture.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Whether the database lives only in this process (`sqlite::memory:`): nobody else can
    /// write it, so there is nothing to capture.
    in_memory: bool,
    /// The queue API writes take SQLite's write lock in (see [`ApiWrite`]).
    write_turn: Arc<tokio::sync::Mutex<()>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or `sqlite::memory:`).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            url: url.to_owned(),
            source,
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| open_err(sqlx::Error::Io(e)))?;
        }
        let in_memory = url.contains(":memory:");
        let pool = SqlitePoolOptions::new()
            // An in-memory database lives and dies with its one connection.
            .max_connections(if in_memory { 1 } else { 8 })
            .min_connections(usize::from(in_memory) as u32)
            .idle_timeout(if in_memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if in_memory {
                None
            } else {
                Some(Duration::from_secs(3600))
            })
            .connect_with(options)
            .await
            .map_err(open_err)?;
        Ok(Self {
            pool,
            in_memory,
            write_turn: Arc::default(),
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
}

impl Dialect for SqliteStore {
    type Db = Sqlite;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// `BEGIN IMMEDIATE`: the write lock is taken before the log's end is read, so no other
    /// writer can append to the log between that read and this write's statement.
    async fn begin_api_write(&self) -> Result<ApiWrite<Sqlite>, StoreError> {
        let turn = Arc::clone(&self.write_turn).lock_owned().await;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let logged_before: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM change_log")
            .fetch_one(&mut *tx)
            .await?;
        Ok(ApiWrite {
            tx,
            logged_before: Some(logged_before),
            _turn: Some(turn),
        })
    }

    async fn finish_api_write(&self, mut write: ApiWrite<Sqlite>) -> Result<(), StoreError> {
        if let Some(before) = write.logged_before {
            sqlx::query("DELETE FROM change_log WHERE id > $1")
                .bind(before)
                .execute(&mut *write.tx)
                .await?;
        }
        write.tx.commit().await?;
        Ok(())
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    fn capture_changes(&self, config: CaptureConfig) -> Option<mpsc::Receiver<ChangeEvent>> {
        (!self.in_memory).then(|| cdc::sqlite::spawn(self.pool.clone(), config))
    }

    async fn ack_changes(&self, ids: &[ChangeId]) -> Result<(), StoreError> {
        cdc::sqlite::ack(&self.pool, ids).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Store contract itself is tested for every backend in tests/store.rs.
    #[tokio::test]
    async fn file_database_is_created_in_wal_mode() {
        let dir = std::env::temp_dir().join(format!("sb-store-{}", std::process::id()));
        let path = dir.join("nested").join("s.db");
        let s = SqliteStore::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        s.migrate().await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert!(path.exists());
        // Migrating twice is a no-op.
        s.migrate().await.unwrap();
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    // The pending query is shared with PostgreSQL, so it compares `acked = FALSE` rather than
    // `NOT acked`: SQLite can only seek the `(user_id, acked, offset)` index on an equality.
    #[tokio::test]
    async fn pending_inbox_query_seeks_the_pending_index() {
        let s = SqliteStore::open("sqlite::memory:").await.unwrap();
        s.migrate().await.unwrap();
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {}",
            crate::body::INBOX_PENDING
        )))
        .bind("u")
        .bind(0_i64)
        .fetch_all(&s.pool)
        .await
        .unwrap();
        assert!(
            plan.iter()
                .any(|(.., detail)| detail.contains("inbox_pending (user_id=? AND acked=?)")),
            "{plan:?}"
        );
    }
}
