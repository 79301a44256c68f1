//! switchboard-store: persistence for the reference applications, behind the [`Store`] trait.
//!
//! SQLite (a WAL-mode file in the data directory) is the default; the trait is the seam a
//! PostgreSQL implementation fills without touching the apps. Records carry classified columns
//! and stay inside the server; apps turn them into DTOs.

mod error;
mod mission;
mod payment;
mod sqlite;

use async_trait::async_trait;

pub use error::StoreError;
pub use mission::{MissionPatch, MissionRecord, MissionStatus, NewMission, now_rfc3339};
pub use payment::{NewPayment, PaymentRecord, PaymentStatus};
pub use sqlite::SqliteStore;

/// What the apps need from a database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// All missions, by id.
    async fn list_missions(&self) -> Result<Vec<MissionRecord>, StoreError>;
    /// One mission.
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
    /// Stores a new payment as `pending` and returns the row.
    async fn create_payment(&self, new: &NewPayment) -> Result<PaymentRecord, StoreError>;
    /// One payment.
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
}

/// Opens the store a URL names: `sqlite://PATH` (created if missing).
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        let store = SqliteStore::open(url).await?;
        store.migrate().await?;
        Ok(std::sync::Arc::new(store))
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
