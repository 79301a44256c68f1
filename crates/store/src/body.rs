//! One store body for SQLite and PostgreSQL: every [`Store`] method is written once, here.
//!
//! **One SQL text per query.** The statements use only what both databases accept, so there
//! is no per-dialect statement table to keep in step:
//! - `$n` placeholders: PostgreSQL's own, and sqlx's SQLite driver binds `$n` by its number
//!   (a `$n` used twice is one parameter in both);
//! - `"offset"` quoted: a reserved word in PostgreSQL, an ordinary quoted name in SQLite;
//! - `acked = FALSE` / `acked = TRUE`: PostgreSQL's BOOLEAN, and SQLite (3.23+) reads the
//!   keywords as 0 and 1 in its INTEGER column, so the `(user_id, acked, offset)` index still
//!   serves the pending query on both;
//! - upserts as `INSERT … ON CONFLICT (key) DO UPDATE … excluded.…`, and `RETURNING`, which
//!   both have (SQLite 3.35+).
//!
//! **Generic over `sqlx::Database`,** not `sqlx::Any` and not a macro. `Any` decodes through a
//! lowest common type set and loses the driver's own types; a macro expanding the body once per
//! pool type would type-check the same text twice and report errors inside the expansion. A
//! generic impl is checked once against its `where` clause, which states exactly what the
//! shared SQL needs from a driver (these parameter types, these row shapes, a connection that
//! executes); both drivers satisfy it.
//!
//! **What really differs stays behind [`Dialect`]**: opening and migrating (each backend's own
//! file), the transaction an API write of a captured table runs in (so change capture skips
//! its rows: PostgreSQL marks it, SQLite deletes what it logged), and change capture itself. Should a statement ever need different
//! text, it becomes an associated constant of `Dialect`; until then one text is one truth.

use std::collections::BTreeMap;
use std::future::Future;

use async_trait::async_trait;
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, Transaction, Type};
use tokio::sync::mpsc;

use crate::rows::{
    CityRow, InboxRow, MissionRow, PaymentRow, SeqRow, mission_columns, payment_columns,
};
use crate::{
    CaptureConfig, ChangeEvent, ChangeId, CitySnapshotRecord, InboxEntry, MissionPatch,
    MissionRecord, MissionStatus, NewMission, NewPayment, PaymentRecord, PaymentStatus, Store,
    StoreError, now_rfc3339,
};

/// The seam between the shared body and one database: only what cannot be the same SQL.
pub(crate) trait Dialect: Send + Sync + 'static {
    /// The sqlx driver.
    type Db: Database;

    /// The pool every shared query runs on.
    fn pool(&self) -> &Pool<Self::Db>;

    /// Begins an API write to a table change capture watches (`missions`, `city_snapshots`):
    /// the API publishes those rows itself, so capture must not publish them again.
    /// PostgreSQL marks the transaction so its triggers skip the rows; SQLite's triggers cannot
    /// tell writers apart, so the write remembers where the log ended and
    /// [`finish_api_write`](Dialect::finish_api_write) deletes what its statement logged.
    fn begin_api_write(
        &self,
    ) -> impl Future<Output = Result<ApiWrite<Self::Db>, StoreError>> + Send;

    /// Commits an API write begun by [`begin_api_write`](Dialect::begin_api_write).
    fn finish_api_write(
        &self,
        write: ApiWrite<Self::Db>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many rows a statement changed: each driver has its own result type, and sqlx has no
    /// common trait for it.
    fn rows_affected(done: &<Self::Db as Database>::QueryResult) -> u64;

    /// Starts change capture where the database has it; see [`Store::capture_changes`].
    fn capture_changes(&self, _config: CaptureConfig) -> Option<mpsc::Receiver<ChangeEvent>> {
        None
    }

    /// Deletes the log entries of published changes; see [`Store::ack_changes`].
    fn ack_changes(&self, ids: &[ChangeId]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// An API write in progress (see [`Dialect::begin_api_write`]).
pub(crate) struct ApiWrite<DB: Database> {
    /// The write's transaction; dropped without [`Dialect::finish_api_write`], it rolls back.
    pub(crate) tx: Transaction<'static, DB>,
    /// SQLite: the newest `change_log` id when the write began; later entries are its own.
    pub(crate) logged_before: Option<i64>,
    /// SQLite: this process's API writes take the database's write lock one at a time, in
    /// this queue, instead of sleeping in SQLite's busy handler for each other.
    pub(crate) _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// Runs one API-write statement inside the write [`Dialect::begin_api_write`] opens, then
/// finishes it. `$ex` is bound to the transaction's connection.
macro_rules! api_write {
    ($store:ident, |$ex:ident| $body:expr) => {{
        let mut write = $store.begin_api_write().await?;
        let out = {
            let $ex = &mut *write.tx;
            $body
        };
        $store.finish_api_write(write).await?;
        out
    }};
}

const LIST_MISSIONS: &str = concat!("SELECT ", mission_columns!(), " FROM missions ORDER BY id");
const GET_MISSION: &str = concat!(
    "SELECT ",
    mission_columns!(),
    " FROM missions WHERE id = $1"
);
const CREATE_MISSION: &str = concat!(
    "INSERT INTO missions (codename, status, location, objective, handler_notes, \
     asset_identity, extraction_code, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
    mission_columns!()
);
const UPDATE_MISSION: &str = concat!(
    "UPDATE missions SET status = COALESCE($1, status), location = COALESCE($2, location), \
     objective = COALESCE($3, objective), updated_at = $4 WHERE id = $5 RETURNING ",
    mission_columns!()
);
const DELETE_MISSION: &str = "DELETE FROM missions WHERE id = $1";

const GET_CITY: &str = "SELECT city_id, metrics, updated_at FROM city_snapshots WHERE city_id = $1";
const PUT_CITY: &str = "INSERT INTO city_snapshots (city_id, metrics, updated_at) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (city_id) DO UPDATE SET metrics = excluded.metrics, \
     updated_at = excluded.updated_at \
     RETURNING city_id, metrics, updated_at";

const INBOX_NEXT_OFFSET: &str = "INSERT INTO inbox_seq (user_id, last_offset, epoch) \
     VALUES ($1, 1, $2) \
     ON CONFLICT (user_id) DO UPDATE SET last_offset = inbox_seq.last_offset + 1 \
     RETURNING last_offset, epoch";
const INBOX_INSERT: &str = "INSERT INTO inbox (user_id, \"offset\", event, data, created_at_ms) \
     VALUES ($1, $2, $3, $4, $5)";
pub(crate) const INBOX_PENDING: &str = "SELECT i.\"offset\", s.epoch, i.event, i.data, i.created_at_ms \
     FROM inbox i JOIN inbox_seq s ON s.user_id = i.user_id \
     WHERE i.user_id = $1 AND i.acked = FALSE AND i.created_at_ms >= $2 \
     ORDER BY i.\"offset\"";
const INBOX_POSITION: &str = "SELECT last_offset, epoch FROM inbox_seq WHERE user_id = $1";
const INBOX_ACK: &str = "UPDATE inbox SET acked = TRUE \
     WHERE user_id = $1 AND \"offset\" <= $2 AND acked = FALSE";
const INBOX_PURGE: &str = "DELETE FROM inbox WHERE acked = TRUE OR created_at_ms < $1";

const CREATE_PAYMENT: &str = concat!(
    "INSERT INTO payments (id, amount, socket_id, status, created_at, updated_at) \
     VALUES ($1, $2, $3, 'pending', $4, $4) RETURNING ",
    payment_columns!()
);
const GET_PAYMENT: &str = concat!(
    "SELECT ",
    payment_columns!(),
    " FROM payments WHERE id = $1"
);
const SETTLE_PAYMENT: &str = concat!(
    "UPDATE payments SET status = $1, updated_at = $2 WHERE id = $3 AND status = 'pending' \
     RETURNING ",
    payment_columns!()
);

/// Milliseconds as stored: `BIGINT`, saturating (a `u64` past `i64::MAX` is centuries away).
fn stored_ms(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

#[async_trait]
impl<D, DB> Store for D
where
    D: Dialect<Db = DB>,
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB>,
    for<'a> Option<&'a str>: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    for<'a> f64: Encode<'a, DB> + Type<DB>,
    for<'r> MissionRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> PaymentRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> CityRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> InboxRow: sqlx::FromRow<'r, DB::Row>,
    for<'r> SeqRow: sqlx::FromRow<'r, DB::Row>,
{
    async fn list_missions(&self) -> Result<Vec<MissionRecord>, StoreError> {
        sqlx::query_as::<DB, MissionRow>(LIST_MISSIONS)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(MissionRow::into_record)
            .collect()
    }

    async fn get_mission(&self, id: i64) -> Result<Option<MissionRecord>, StoreError> {
        sqlx::query_as::<DB, MissionRow>(GET_MISSION)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(MissionRow::into_record)
            .transpose()
    }

    async fn create_mission(&self, new: &NewMission) -> Result<MissionRecord, StoreError> {
        let now = now_rfc3339();
        let row = api_write!(self, |ex| sqlx::query_as::<DB, MissionRow>(CREATE_MISSION)
            .bind(new.codename.as_str())
            .bind(new.status.unwrap_or(MissionStatus::Planned).as_str())
            .bind(new.location.as_str())
            .bind(new.objective.as_str())
            .bind(new.handler_notes.as_str())
            .bind(new.asset_identity.as_str())
            .bind(new.extraction_code.as_str())
            .bind(now.as_str())
            .fetch_one(ex)
            .await?);
        row.into_record()
    }

    async fn update_mission(
        &self,
        id: i64,
        patch: &MissionPatch,
    ) -> Result<Option<MissionRecord>, StoreError> {
        let now = now_rfc3339();
        let row = api_write!(self, |ex| sqlx::query_as::<DB, MissionRow>(UPDATE_MISSION)
            .bind(patch.status.map(MissionStatus::as_str))
            .bind(patch.location.as_deref())
            .bind(patch.objective.as_deref())
            .bind(now.as_str())
            .bind(id)
            .fetch_optional(ex)
            .await?);
        row.map(MissionRow::into_record).transpose()
    }

    async fn delete_mission(&self, id: i64) -> Result<bool, StoreError> {
        let done = api_write!(self, |ex| sqlx::query::<DB>(DELETE_MISSION)
            .bind(id)
            .execute(ex)
            .await?);
        Ok(D::rows_affected(&done) > 0)
    }

    async fn get_city_snapshot(
        &self,
        city_id: &str,
    ) -> Result<Option<CitySnapshotRecord>, StoreError> {
        sqlx::query_as::<DB, CityRow>(GET_CITY)
            .bind(city_id)
            .fetch_optional(self.pool())
            .await?
            .map(CityRow::into_record)
            .transpose()
    }

    async fn put_city_snapshot(
        &self,
        city_id: &str,
        metrics: &BTreeMap<String, f64>,
    ) -> Result<CitySnapshotRecord, StoreError> {
        let json = serde_json::to_string(metrics)
            .map_err(|e| StoreError::Corrupt(format!("metrics not encodable: {e}")))?;
        let now = now_rfc3339();
        let row = api_write!(self, |ex| sqlx::query_as::<DB, CityRow>(PUT_CITY)
            .bind(city_id)
            .bind(json.as_str())
            .bind(now.as_str())
            .fetch_one(ex)
            .await?);
        row.into_record()
    }

    async fn inbox_append(
        &self,
        user: &str,
        event: &str,
        data: &str,
        epoch: &str,
        now_ms: u64,
    ) -> Result<InboxEntry, StoreError> {
        // One transaction: the offset is taken and used atomically, or not at all.
        let mut tx = self.pool().begin().await?;
        let seq = sqlx::query_as::<DB, SeqRow>(INBOX_NEXT_OFFSET)
            .bind(user)
            .bind(epoch)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query::<DB>(INBOX_INSERT)
            .bind(user)
            .bind(seq.last_offset)
            .bind(event)
            .bind(data)
            .bind(stored_ms(now_ms))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(InboxEntry {
            offset: seq.last_offset(),
            epoch: seq.epoch,
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
        let rows = sqlx::query_as::<DB, InboxRow>(INBOX_PENDING)
            .bind(user)
            .bind(stored_ms(not_before_ms))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.into_iter().map(InboxRow::into_entry).collect())
    }

    async fn inbox_position(&self, user: &str) -> Result<Option<(u64, String)>, StoreError> {
        let seq = sqlx::query_as::<DB, SeqRow>(INBOX_POSITION)
            .bind(user)
            .fetch_optional(self.pool())
            .await?;
        Ok(seq.map(|s| (s.last_offset(), s.epoch)))
    }

    async fn inbox_ack(&self, user: &str, offset: u64) -> Result<u64, StoreError> {
        let done = sqlx::query::<DB>(INBOX_ACK)
            .bind(user)
            .bind(stored_ms(offset))
            .execute(self.pool())
            .await?;
        Ok(D::rows_affected(&done))
    }

    async fn inbox_purge(&self, before_ms: u64) -> Result<u64, StoreError> {
        let done = sqlx::query::<DB>(INBOX_PURGE)
            .bind(stored_ms(before_ms))
            .execute(self.pool())
            .await?;
        Ok(D::rows_affected(&done))
    }

    async fn create_payment(&self, new: &NewPayment) -> Result<PaymentRecord, StoreError> {
        let now = now_rfc3339();
        sqlx::query_as::<DB, PaymentRow>(CREATE_PAYMENT)
            .bind(new.id.as_str())
            .bind(new.amount)
            .bind(new.socket_id.as_str())
            .bind(now.as_str())
            .fetch_one(self.pool())
            .await?
            .into_record()
    }

    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        sqlx::query_as::<DB, PaymentRow>(GET_PAYMENT)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(PaymentRow::into_record)
            .transpose()
    }

    async fn settle_payment(
        &self,
        id: &str,
        status: PaymentStatus,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let now = now_rfc3339();
        sqlx::query_as::<DB, PaymentRow>(SETTLE_PAYMENT)
            .bind(status.as_str())
            .bind(now.as_str())
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(PaymentRow::into_record)
            .transpose()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query::<DB>("SELECT 1").execute(self.pool()).await?;
        Ok(())
    }

    fn capture_changes(&self, config: CaptureConfig) -> Option<mpsc::Receiver<ChangeEvent>> {
        Dialect::capture_changes(self, config)
    }

    async fn ack_changes(&self, ids: &[ChangeId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        Dialect::ack_changes(self, ids).await
    }
}
