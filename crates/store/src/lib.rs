//! Storage for regelkreis: the [`Store`] trait and its two engines, embedded SQLite (the
//! default, one file in the data dir) and PostgreSQL (the scale-out engine, same schema).
//! Both carry tenants, API keys, the append-only event log and the per-tenant hash-chained
//! audit trail. The conformance suite in `tests/` runs against every engine.
//!
//! **Invariant:** a write that returned `Ok` is durable: SQLite runs in WAL mode with
//! `synchronous = FULL`, PostgreSQL commits before returning.
//! **Boundary:** this crate knows nothing of HTTP or models.

pub mod audit;
mod error;
pub mod keys;
mod postgres_engine;
mod row;
mod sqlite_engine;

pub use audit::{AuditBreak, AuditEntry, AuditHead, AuditRecord, BreakReason, VerifyReport};
pub use error::StoreError;
pub use keys::{ApiKey, AuthError, IssuedKey};
pub use postgres_engine::PostgresStore;
pub use sqlite_engine::SqliteStore;

use regelkreis_core::{Event, EventId, EventQuery, KeyId, NewEvent, TenantId, Timestamp};
use std::path::Path;
use std::sync::Arc;

/// A tenant: the unit of isolation. Nothing of one tenant is visible to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// Its unique name, as given on the command line.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A versioned JSON document of a tenant: experiment definitions, bandit state and other
/// small records that are read and replaced whole. Writes are compare-and-swap on
/// `version`, so concurrent writers (threads or replicas) never lose an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Owner.
    pub tenant: TenantId,
    /// What it is (`experiment`, `bandit`, …).
    pub kind: String,
    /// Its key within tenant and kind.
    pub key: String,
    /// Starts at 1, grows by one per write.
    pub version: u64,
    /// JSON text.
    pub body: String,
    /// Last write.
    pub updated_at: Timestamp,
}

/// Which engine a store runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// Embedded SQLite, one file (`regelkreis.sqlite`) in the data dir.
    Sqlite,
    /// PostgreSQL at this URL (`postgres://user@host:port/db`).
    Postgres(String),
}

impl StoreSpec {
    /// `"sqlite"` or `"postgres"`.
    pub fn engine_name(&self) -> &'static str {
        match self {
            StoreSpec::Sqlite => "sqlite",
            StoreSpec::Postgres(_) => "postgres",
        }
    }

    /// Parses `"sqlite"` or a `postgres://` / `postgresql://` URL.
    pub fn parse(value: &str) -> Result<Self, StoreError> {
        if value == "sqlite" {
            Ok(StoreSpec::Sqlite)
        } else if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            Ok(StoreSpec::Postgres(value.to_owned()))
        } else {
            Err(StoreError::Config(format!(
                "store must be \"sqlite\" or a postgres:// URL, got {:?}",
                value.chars().take(80).collect::<String>()
            )))
        }
    }
}

/// The name of the SQLite file inside the data dir.
pub const SQLITE_FILE: &str = "regelkreis.sqlite";

/// Opens the store a spec names, running migrations. `data_dir` holds the SQLite file.
pub fn open(spec: &StoreSpec, data_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    match spec {
        StoreSpec::Sqlite => {
            std::fs::create_dir_all(data_dir)?;
            Ok(Arc::new(SqliteStore::open(&data_dir.join(SQLITE_FILE))?))
        }
        StoreSpec::Postgres(url) => Ok(Arc::new(PostgresStore::open(url)?)),
    }
}

/// Everything regelkreis persists about tenants, keys, events and audit records.
///
/// Methods are blocking; async callers run them on a blocking thread. Every query that
/// reads tenant data takes the tenant, so no method can read across tenants by accident.
pub trait Store: Send + Sync {
    /// `"sqlite"` or `"postgres"`.
    fn engine(&self) -> &'static str;

    /// Checks that the store answers a query.
    fn ping(&self) -> Result<(), StoreError>;

    /// Returns the tenant with this name, creating it when missing.
    fn ensure_tenant(&self, name: &str) -> Result<Tenant, StoreError>;

    /// The tenant with this name.
    fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError>;

    /// The tenant with this id.
    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;

    /// All tenants, by name.
    fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// Stores a new key (its hash, never the key).
    fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError>;

    /// The key with this id, revoked or not.
    fn key(&self, id: &KeyId) -> Result<Option<ApiKey>, StoreError>;

    /// Keys of one tenant, or of all tenants when `tenant` is `None`, by creation time.
    fn keys(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiKey>, StoreError>;

    /// Revokes a key. With `tenant` set, only a key of that tenant is touched. Returns
    /// whether a key that was active is now revoked.
    fn revoke_key(
        &self,
        id: &KeyId,
        tenant: Option<&TenantId>,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Appends events atomically (all or none); returns their ids in order.
    fn append_events(&self, events: &[NewEvent]) -> Result<Vec<EventId>, StoreError>;

    /// Reads one tenant's events in id order.
    fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StoreError>;

    /// Appends an audit record to its tenant's hash chain.
    fn append_audit(&self, entry: &AuditEntry) -> Result<AuditRecord, StoreError>;

    /// Reads audit records of a tenant with `seq > after_seq`, in seq order.
    fn audit_records(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// The last seq and hash of a tenant's chain, as recorded at append time.
    fn audit_head(&self, tenant: &TenantId) -> Result<Option<AuditHead>, StoreError>;

    /// One document.
    fn document(
        &self,
        tenant: &TenantId,
        kind: &str,
        key: &str,
    ) -> Result<Option<Document>, StoreError>;

    /// A tenant's documents of one kind, by key.
    fn documents(&self, tenant: &TenantId, kind: &str) -> Result<Vec<Document>, StoreError>;

    /// Writes a document if its stored version is `expected` (`None`: it must not exist
    /// yet). Returns the stored document, or [`StoreError::Conflict`] when another write
    /// came first.
    fn put_document(
        &self,
        tenant: &TenantId,
        kind: &str,
        key: &str,
        body: &str,
        expected: Option<u64>,
    ) -> Result<Document, StoreError>;
}

/// Tenant names are 1–64 characters of `a-z`, `0-9`, `-`, `_` and `.`.
pub fn validate_tenant_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "tenant name {:?} must be 1-64 characters of a-z, 0-9, '-', '_' and '.'",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// Eight random bytes for a new id.
pub(crate) fn random_id_bytes() -> Result<[u8; 8], StoreError> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| StoreError::Random(e.to_string()))?;
    Ok(b)
}

pub(crate) fn clamp_limit(limit: usize) -> i64 {
    i64::try_from(limit.min(100_000)).unwrap_or(100_000)
}
