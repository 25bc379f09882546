//! The store's error catalogue.

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite engine failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL engine failed.
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    /// No PostgreSQL connection could be had from the pool.
    #[error("postgres connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// A file could not be read or written.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A stored row could not be decoded.
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The input breaks a rule of the store (a bad name, a duplicate).
    #[error("{0}")]
    Invalid(String),
    /// A compare-and-swap write lost to another writer, or a record already exists.
    #[error("{0}")]
    Conflict(String),
    /// The store is configured wrongly.
    #[error("{0}")]
    Config(String),
    /// The system's random source failed.
    #[error("random source: {0}")]
    Random(String),
    /// The schema in the database is newer than this binary.
    #[error("database schema version {found} is newer than this binary's {supported}; upgrade regelkreis")]
    SchemaTooNew {
        /// Version found.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            table,
            detail: detail.to_string(),
        }
    }
}
