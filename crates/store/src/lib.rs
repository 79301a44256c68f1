//! switchboard-store: persistence for the reference applications, behind the [`Store`] trait.
//!
//! SQLite (a WAL-mode file in the data directory) is the default; PostgreSQL (`postgres://…`)
//! is shared by the nodes of a scaled-out deployment. Both have change capture ([`cdc`]): rows
//! changed by other writers come out as [`ChangeEvent`]s for the server to publish. Records
//! carry classified columns and stay inside the server; apps turn them into DTOs.
//!
//! Modules: `body` is the one implementation of [`Store`] for both databases (generic over
//! `sqlx::Database`; its doc says why and which SQL both accept), `rows` the row shapes it reads
//! (`sqlx::FromRow`) and their conversion into records; `sqlite` and `postgres` only open,
//! migrate and implement the small `Dialect` seam (the API-write transaction, change capture);
//! [`cdc`] is change capture (a module per database); the records live in `mission`, `payment`, `city`
//! and `inbox`, the error type in `error`.
//!
//! Adding a store method: declare it on [`Store`], implement it once in `body.rs` in SQL both
//! databases accept, add migrations of the same version in `migrations/sqlite` and
//! `migrations/postgres`, and a case in the shared `tests/store.rs` body, which runs against
//! both.

mod body;
pub mod cdc;
mod city;
mod error;
mod inbox;
mod mission;
mod payment;
mod postgres;
mod rows;
mod sqlite;

use async_trait::async_trait;

pub use cdc::{CaptureConfig, ChangeEvent, ChangeId, ChangeTable};
pub use city::CitySnapshotRecord;
pub use error::StoreError;
pub use inbox::InboxEntry;
pub use mission::{MissionPatch, MissionRecord, MissionStatus, NewMission, now_rfc3339};
pub use payment::{NewPayment, PaymentRecord, PaymentStatus};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// What the apps need from a database: the one seam between apps and storage, so an app never
/// knows which database it runs on.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// All missions, by id.
    async fn list_missions(&self) -> Result<Vec<MissionRecord>, StoreError>;
    /// One mission; `None` when the id does not exist.
    async fn get_mission(&self, id: i64) -> Result<Option<MissionRecord>, StoreError>;
    /// Inserts and returns the stored row.
    async fn create_mission(&self, new: &NewMission) -> Result<MissionRecord, StoreError>;
    /// Applies a partial update; `None` when the id does not exist.
    async fn update_mission(
        &self,
        id: i64,
        patch: &MissionPatch,
    ) -> Result<Option<MissionRecord>, StoreError>;
    /// Deletes; false when the id did not exist.
    async fn delete_mission(&self, id: i64) -> Result<bool, StoreError>;
    /// A city's latest snapshot; `None` before its first post.
    async fn get_city_snapshot(
        &self,
        city_id: &str,
    ) -> Result<Option<CitySnapshotRecord>, StoreError>;
    /// Replaces a city's latest snapshot (stamping `updated_at`) and returns what was stored.
    async fn put_city_snapshot(
        &self,
        city_id: &str,
        metrics: &std::collections::BTreeMap<String, f64>,
    ) -> Result<CitySnapshotRecord, StoreError>;
    /// Appends to `user`'s inbox with the next per-user offset (atomically). `epoch` is used
    /// only when the user has no inbox yet.
    async fn inbox_append(
        &self,
        user: &str,
        event: &str,
        data: &str,
        epoch: &str,
        now_ms: u64,
    ) -> Result<InboxEntry, StoreError>;
    /// Unacknowledged entries created at or after `not_before_ms`, in offset order.
    async fn inbox_pending(
        &self,
        user: &str,
        not_before_ms: u64,
    ) -> Result<Vec<InboxEntry>, StoreError>;
    /// The user's inbox position `(last offset, epoch)`, if the user has an inbox.
    async fn inbox_position(&self, user: &str) -> Result<Option<(u64, String)>, StoreError>;
    /// Marks every entry up to and including `offset` as delivered; returns how many changed.
    async fn inbox_ack(&self, user: &str, offset: u64) -> Result<u64, StoreError>;
    /// Deletes entries that are acknowledged or older than `before_ms`.
    async fn inbox_purge(&self, before_ms: u64) -> Result<u64, StoreError>;
    /// Stores a new payment as `pending` and returns the row.
    async fn create_payment(&self, new: &NewPayment) -> Result<PaymentRecord, StoreError>;
    /// One payment; `None` when the id does not exist.
    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError>;
    /// Moves a `pending` payment to `status`; `None` when no pending payment has that id, so a
    /// payment is settled at most once even if two workers race.
    async fn settle_payment(
        &self,
        id: &str,
        status: PaymentStatus,
    ) -> Result<Option<PaymentRecord>, StoreError>;
    /// Whether the database answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Starts change capture: the receiver yields rows of `missions` and `city_snapshots`
    /// changed by writers other than the API, each leased by one node at a time ([`cdc`]).
    /// `None` where nobody else can write (an in-memory SQLite database).
    fn capture_changes(
        &self,
        _config: CaptureConfig,
    ) -> Option<tokio::sync::mpsc::Receiver<ChangeEvent>> {
        None
    }

    /// Deletes the log entries of changes that were published, so no node takes them again.
    /// Until then a change whose lease runs out is taken (and published) again.
    async fn ack_changes(&self, _ids: &[ChangeId]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Opens and migrates the store a URL names: `sqlite://PATH` (created if missing) or
/// `postgres://…`.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(open_migrated(url).await?.0)
}

/// [`open`], also saying how many migrations it applied (0: the schema was up to date), for
/// `switchboard migrate` to report.
pub async fn open_migrated(url: &str) -> Result<(std::sync::Arc<dyn Store>, usize), StoreError> {
    if url.starts_with("sqlite:") {
        let store = SqliteStore::open(url).await?;
        let applied = store.migrate().await?;
        Ok((std::sync::Arc::new(store), applied))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = PostgresStore::open(url).await?;
        let applied = store.migrate().await?;
        Ok((std::sync::Arc::new(store), applied))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// A URL with any password replaced, safe to log or show.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact_url("sqlite://./x.db"), "sqlite://./x.db");
    }
}
