//! Store errors. Their messages are for logs; clients get a generic 500.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL's scheme is not one this build supports.
    #[error("unsupported store url {0:?} (expected sqlite://… or postgres://…)")]
    UnsupportedUrl(String),
    /// Could not open or create the database.
    #[error("could not open database {url}: {source}")]
    Open {
        /// The URL with any password replaced, because this error is logged.
        url: String,
        /// The driver's reason.
        #[source]
        source: sqlx::Error,
    },
    /// Migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    /// A stored value could not be read back (e.g. an unknown status).
    #[error("corrupt row: {0}")]
    Corrupt(String),
}
