//! The PostgreSQL store: the same tables and behaviour as SQLite (migrations/postgres mirrors
//! migrations/sqlite version for version), shared by every node of a scaled-out deployment.
//!
//! Writes made through the API mark their transaction (`switchboard.origin = 'api'`) so the
//! change-capture triggers (see `cdc`) only record changes made by other writers.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Transaction};

use crate::{
    CitySnapshotRecord, InboxEntry, MissionPatch, MissionRecord, MissionStatus, NewMission,
    NewPayment, PaymentRecord, PaymentStatus, Store, StoreError, now_rfc3339,
};

/// Missions and friends in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The mission columns, as a literal so queries stay static strings (sqlx refuses dynamic SQL).
macro_rules! mission_columns {
    () => {
        "id, codename, status, location, objective, handler_notes, asset_identity, extraction_code, updated_at"
    };
}

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
        Ok(Self { pool })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// The connection pool (change capture listens and claims through it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Starts a transaction marked as an API write: change capture skips its rows, because the
    /// API publishes them itself (publishing them again would deliver them twice).
    async fn api_tx(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('switchboard.origin', 'api', true)")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

fn mission_from_row(row: &PgRow) -> Result<MissionRecord, StoreError> {
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

/// The payment columns, as a literal for the same reason as [`mission_columns`].
macro_rules! payment_columns {
    () => {
        "id, amount, socket_id, status, created_at, updated_at"
    };
}

fn payment_from_row(row: &PgRow) -> Result<PaymentRecord, StoreError> {
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

fn city_from_row(row: &PgRow) -> Result<CitySnapshotRecord, StoreError> {
    let metrics: String = row.try_get("metrics")?;
    Ok(CitySnapshotRecord {
        city_id: row.try_get("city_id")?,
        metrics: serde_json::from_str(&metrics)
            .map_err(|e| StoreError::Corrupt(format!("city metrics: {e}")))?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[async_trait]
impl Store for PostgresStore {
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
            " FROM missions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(mission_from_row).transpose()
    }

    async fn create_mission(&self, new: &NewMission) -> Result<MissionRecord, StoreError> {
        let mut tx = self.api_tx().await?;
        let row = sqlx::query(concat!(
            "INSERT INTO missions (codename, status, location, objective, handler_notes, asset_identity, extraction_code, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
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
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        mission_from_row(&row)
    }

    async fn update_mission(
        &self,
        id: i64,
        patch: &MissionPatch,
    ) -> Result<Option<MissionRecord>, StoreError> {
        let mut tx = self.api_tx().await?;
        let row = sqlx::query(concat!(
            "UPDATE missions SET status = COALESCE($1, status), location = COALESCE($2, location), \
             objective = COALESCE($3, objective), updated_at = $4 WHERE id = $5 RETURNING ",
            mission_columns!()
        ))
        .bind(patch.status.map(MissionStatus::as_str))
        .bind(patch.location.as_deref())
        .bind(patch.objective.as_deref())
        .bind(now_rfc3339())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(mission_from_row).transpose()
    }

    async fn delete_mission(&self, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.api_tx().await?;
        let done = sqlx::query("DELETE FROM missions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_city_snapshot(
        &self,
        city_id: &str,
    ) -> Result<Option<CitySnapshotRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT city_id, metrics, updated_at FROM city_snapshots WHERE city_id = $1",
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
        let mut tx = self.api_tx().await?;
        let json = serde_json::to_string(metrics)
            .map_err(|e| StoreError::Corrupt(format!("metrics not encodable: {e}")))?;
        let row = sqlx::query(
            "INSERT INTO city_snapshots (city_id, metrics, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (city_id) DO UPDATE SET metrics = excluded.metrics, updated_at = excluded.updated_at \
             RETURNING city_id, metrics, updated_at",
        )
        .bind(city_id)
        .bind(json)
        .bind(now_rfc3339())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
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
            "INSERT INTO inbox_seq (user_id, last_offset, epoch) VALUES ($1, 1, $2) \
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
            "INSERT INTO inbox (user_id, \"offset\", event, data, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
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
            "SELECT i.\"offset\", s.epoch, i.event, i.data, i.created_at_ms FROM inbox i \
             JOIN inbox_seq s ON s.user_id = i.user_id \
             WHERE i.user_id = $1 AND NOT i.acked AND i.created_at_ms >= $2 ORDER BY i.\"offset\"",
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
        let row = sqlx::query("SELECT last_offset, epoch FROM inbox_seq WHERE user_id = $1")
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
            "UPDATE inbox SET acked = TRUE WHERE user_id = $1 AND \"offset\" <= $2 AND NOT acked",
        )
        .bind(user)
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn inbox_purge(&self, before_ms: u64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM inbox WHERE acked OR created_at_ms < $1")
            .bind(i64::try_from(before_ms).unwrap_or(i64::MAX))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn create_payment(&self, new: &NewPayment) -> Result<PaymentRecord, StoreError> {
        let now = now_rfc3339();
        let row = sqlx::query(concat!(
            "INSERT INTO payments (id, amount, socket_id, status, created_at, updated_at) \
             VALUES ($1, $2, $3, 'pending', $4, $4) RETURNING ",
            payment_columns!()
        ))
        .bind(&new.id)
        .bind(new.amount)
        .bind(&new.socket_id)
        .bind(&now)
        .fetch_one(&self.pool)
        .await?;
        payment_from_row(&row)
    }

    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE id = $1"
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
            "UPDATE payments SET status = $1, updated_at = $2 WHERE id = $3 AND status = 'pending' \
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

    fn capture_changes(&self) -> Option<tokio::sync::mpsc::Receiver<crate::ChangeEvent>> {
        Some(crate::cdc::spawn(self.pool.clone()))
    }
}
