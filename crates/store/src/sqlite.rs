//! The SQLite store: one file in the data directory, WAL mode, created on first start.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use crate::{
    CitySnapshotRecord, InboxEntry, MissionPatch, MissionRecord, MissionStatus, NewMission,
    NewPayment, PaymentRecord, PaymentStatus, Store, StoreError, now_rfc3339,
};

/// Missions and friends in SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The mission columns, as a literal so queries stay static strings (sqlx refuses dynamic SQL).
macro_rules! mission_columns {
    () => {
        "id, codename, status, location, objective, handler_notes, asset_identity, extraction_code, updated_at"
    };
}

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
        Ok(Self { pool })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}

fn mission_from_row(row: &SqliteRow) -> Result<MissionRecord, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(MissionRecord {
        id: row.try_get("id")?,
        codename: row.try_get("codename")?,
        status: MissionStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown mission status {status:?}")))?,
        location: row.try_get("location")?,
        objective: row.try_get("objective")?,
        handler_notes: row.try_get("handler_notes")?,
        asset_identity: row.try_get("asset_identity")?,
        extraction_code: row.try_get("extraction_code")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn city_from_row(row: &SqliteRow) -> Result<CitySnapshotRecord, StoreError> {
    let metrics: String = row.try_get("metrics")?;
    Ok(CitySnapshotRecord {
        city_id: row.try_get("city_id")?,
        metrics: serde_json::from_str(&metrics)
            .map_err(|e| StoreError::Corrupt(format!("city metrics: {e}")))?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The payment columns, as a literal for the same reason as [`mission_columns`].
macro_rules! payment_columns {
    () => {
        "id, amount, socket_id, status, created_at, updated_at"
    };
}

fn payment_from_row(row: &SqliteRow) -> Result<PaymentRecord, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(PaymentRecord {
        id: row.try_get("id")?,
        amount: row.try_get("amount")?,
        socket_id: row.try_get("socket_id")?,
        status: PaymentStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown payment status {status:?}")))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn list_missions(&self) -> Result<Vec<MissionRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            mission_columns!(),
            " FROM missions ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(mission_from_row).collect()
    }

    async fn get_mission(&self, id: i64) -> Result<Option<MissionRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            mission_columns!(),
            " FROM missions WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(mission_from_row).transpose()
    }

    async fn create_mission(&self, new: &NewMission) -> Result<MissionRecord, StoreError> {
        let row = sqlx::query(concat!(
            "INSERT INTO missions (codename, status, location, objective, handler_notes, asset_identity, extraction_code, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING ",
            mission_columns!()
        ))
        .bind(&new.codename)
        .bind(new.status.unwrap_or(MissionStatus::Planned).as_str())
        .bind(&new.location)
        .bind(&new.objective)
        .bind(&new.handler_notes)
        .bind(&new.asset_identity)
        .bind(&new.extraction_code)
        .bind(now_rfc3339())
        .fetch_one(&self.pool)
        .await?;
        mission_from_row(&row)
    }

    async fn update_mission(
        &self,
        id: i64,
        patch: &MissionPatch,
    ) -> Result<Option<MissionRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE missions SET status = COALESCE(?, status), location = COALESCE(?, location), \
             objective = COALESCE(?, objective), updated_at = ? WHERE id = ? RETURNING ",
            mission_columns!()
        ))
        .bind(patch.status.map(MissionStatus::as_str))
        .bind(patch.location.as_deref())
        .bind(patch.objective.as_deref())
        .bind(now_rfc3339())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(mission_from_row).transpose()
    }

    async fn delete_mission(&self, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM missions WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_city_snapshot(
        &self,
        city_id: &str,
    ) -> Result<Option<CitySnapshotRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT city_id, metrics, updated_at FROM city_snapshots WHERE city_id = ?",
        )
        .bind(city_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(city_from_row).transpose()
    }

    async fn put_city_snapshot(
        &self,
        city_id: &str,
        metrics: &BTreeMap<String, f64>,
    ) -> Result<CitySnapshotRecord, StoreError> {
        let json = serde_json::to_string(metrics)
            .map_err(|e| StoreError::Corrupt(format!("metrics not encodable: {e}")))?;
        let row = sqlx::query(
            "INSERT INTO city_snapshots (city_id, metrics, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (city_id) DO UPDATE SET metrics = excluded.metrics, updated_at = excluded.updated_at \
             RETURNING city_id, metrics, updated_at",
        )
        .bind(city_id)
        .bind(json)
        .bind(now_rfc3339())
        .fetch_one(&self.pool)
        .await?;
        city_from_row(&row)
    }

    async fn inbox_append(
        &self,
        user: &str,
        event: &str,
        data: &str,
        epoch: &str,
        now_ms: u64,
    ) -> Result<InboxEntry, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO inbox_seq (user_id, last_offset, epoch) VALUES (?, 1, ?) \
             ON CONFLICT (user_id) DO UPDATE SET last_offset = inbox_seq.last_offset + 1 \
             RETURNING last_offset, epoch",
        )
        .bind(user)
        .bind(epoch)
        .fetch_one(&mut *tx)
        .await?;
        let offset: i64 = row.try_get("last_offset")?;
        let epoch: String = row.try_get("epoch")?;
        let created = i64::try_from(now_ms).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO inbox (user_id, offset, event, data, created_at_ms) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(user)
        .bind(offset)
        .bind(event)
        .bind(data)
        .bind(created)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(InboxEntry {
            offset: u64::try_from(offset).unwrap_or(0),
            epoch,
            event: event.to_owned(),
            data: data.to_owned(),
            created_at_ms: now_ms,
        })
    }

    async fn inbox_pending(
        &self,
        user: &str,
        not_before_ms: u64,
    ) -> Result<Vec<InboxEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.offset, s.epoch, i.event, i.data, i.created_at_ms FROM inbox i \
             JOIN inbox_seq s ON s.user_id = i.user_id \
             WHERE i.user_id = ? AND i.acked = 0 AND i.created_at_ms >= ? ORDER BY i.offset",
        )
        .bind(user)
        .bind(i64::try_from(not_before_ms).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let offset: i64 = r.try_get("offset")?;
                let created: i64 = r.try_get("created_at_ms")?;
                Ok(InboxEntry {
                    offset: u64::try_from(offset).unwrap_or(0),
                    epoch: r.try_get("epoch")?,
                    event: r.try_get("event")?,
                    data: r.try_get("data")?,
                    created_at_ms: u64::try_from(created).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn inbox_position(&self, user: &str) -> Result<Option<(u64, String)>, StoreError> {
        let row = sqlx::query("SELECT last_offset, epoch FROM inbox_seq WHERE user_id = ?")
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let last: i64 = r.try_get("last_offset")?;
            Ok((u64::try_from(last).unwrap_or(0), r.try_get("epoch")?))
        })
        .transpose()
    }

    async fn inbox_ack(&self, user: &str, offset: u64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE inbox SET acked = 1 WHERE user_id = ? AND offset <= ? AND acked = 0",
        )
        .bind(user)
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn inbox_purge(&self, before_ms: u64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM inbox WHERE acked = 1 OR created_at_ms < ?")
            .bind(i64::try_from(before_ms).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_payment(&self, new: &NewPayment) -> Result<PaymentRecord, StoreError> {
        let now = now_rfc3339();
        let row = sqlx::query(concat!(
            "INSERT INTO payments (id, amount, socket_id, status, created_at, updated_at) \
             VALUES (?, ?, ?, 'pending', ?, ?) RETURNING ",
            payment_columns!()
        ))
        .bind(&new.id)
        .bind(new.amount)
        .bind(&new.socket_id)
        .bind(&now)
        .bind(&now)
        .fetch_one(&self.pool)
        .await?;
        payment_from_row(&row)
    }

    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    async fn settle_payment(
        &self,
        id: &str,
        status: PaymentStatus,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE payments SET status = ?, updated_at = ? WHERE id = ? AND status = 'pending' \
             RETURNING ",
            payment_columns!()
        ))
        .bind(status.as_str())
        .bind(now_rfc3339())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
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
}
