//! Row shapes as both databases return them (`sqlx::FromRow`), and their checked conversion
//! into the public records.
//!
//! The records are not derived from rows directly because three of their columns have domain
//! types no driver decodes (a mission or payment status, a city's metrics map, offsets that are
//! `u64` in Rust but `BIGINT` in SQL). Converting here keeps an unknown stored value a
//! [`StoreError::Corrupt`] with a readable message, as it always was, and keeps sqlx's traits
//! off the records the server crate works with.

use std::collections::BTreeMap;

use crate::{
    CitySnapshotRecord, InboxEntry, MissionRecord, MissionStatus, PaymentRecord, PaymentStatus,
    StoreError,
};

/// The mission columns, as a literal so queries stay static strings (sqlx 0.9 only accepts
/// `&'static str` SQL without an explicit safety assertion).
macro_rules! mission_columns {
    () => {
        "id, codename, status, location, objective, handler_notes, asset_identity, extraction_code, updated_at"
    };
}

/// The payment columns, a literal for the same reason as [`mission_columns`].
macro_rules! payment_columns {
    () => {
        "id, amount, socket_id, status, created_at, updated_at"
    };
}

pub(crate) use {mission_columns, payment_columns};

/// A `missions` row, read by column name.
#[derive(sqlx::FromRow)]
pub(crate) struct MissionRow {
    id: i64,
    codename: String,
    status: String,
    location: String,
    objective: String,
    handler_notes: String,
    asset_identity: String,
    extraction_code: String,
    updated_at: String,
}

impl MissionRow {
    pub(crate) fn into_record(self) -> Result<MissionRecord, StoreError> {
        let status = MissionStatus::parse(&self.status).ok_or_else(|| {
            StoreError::Corrupt(format!("unknown mission status {:?}", self.status))
        })?;
        Ok(MissionRecord {
            id: self.id,
            codename: self.codename,
            status,
            location: self.location,
            objective: self.objective,
            handler_notes: self.handler_notes,
            asset_identity: self.asset_identity,
            extraction_code: self.extraction_code,
            updated_at: self.updated_at,
        })
    }
}

/// A `payments` row.
#[derive(sqlx::FromRow)]
pub(crate) struct PaymentRow {
    id: String,
    amount: f64,
    socket_id: String,
    status: String,
    created_at: String,
    updated_at: String,
}

impl PaymentRow {
    pub(crate) fn into_record(self) -> Result<PaymentRecord, StoreError> {
        let status = PaymentStatus::parse(&self.status).ok_or_else(|| {
            StoreError::Corrupt(format!("unknown payment status {:?}", self.status))
        })?;
        Ok(PaymentRecord {
            id: self.id,
            amount: self.amount,
            socket_id: self.socket_id,
            status,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// A `city_snapshots` row; `metrics` is JSON text in both databases.
#[derive(sqlx::FromRow)]
pub(crate) struct CityRow {
    city_id: String,
    metrics: String,
    updated_at: String,
}

impl CityRow {
    pub(crate) fn into_record(self) -> Result<CitySnapshotRecord, StoreError> {
        let metrics: BTreeMap<String, f64> = serde_json::from_str(&self.metrics)
            .map_err(|e| StoreError::Corrupt(format!("city metrics: {e}")))?;
        Ok(CitySnapshotRecord {
            city_id: self.city_id,
            metrics,
            updated_at: self.updated_at,
        })
    }
}

/// An `inbox` row joined with its user's epoch from `inbox_seq`.
#[derive(sqlx::FromRow)]
pub(crate) struct InboxRow {
    offset: i64,
    epoch: String,
    event: String,
    data: String,
    created_at_ms: i64,
}

impl InboxRow {
    /// Offsets and times are never negative (they are written from `u64`s); a negative one
    /// reads as 0, as it always has, rather than failing the whole inbox.
    pub(crate) fn into_entry(self) -> InboxEntry {
        InboxEntry {
            offset: u64::try_from(self.offset).unwrap_or(0),
            epoch: self.epoch,
            event: self.event,
            data: self.data,
            created_at_ms: u64::try_from(self.created_at_ms).unwrap_or(0),
        }
    }
}

/// An `inbox_seq` row: a user's last assigned offset and inbox epoch.
#[derive(sqlx::FromRow)]
pub(crate) struct SeqRow {
    pub(crate) last_offset: i64,
    pub(crate) epoch: String,
}

impl SeqRow {
    pub(crate) fn last_offset(&self) -> u64 {
        u64::try_from(self.last_offset).unwrap_or(0)
    }
}
