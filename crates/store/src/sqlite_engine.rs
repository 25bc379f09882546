//! The embedded engine: one SQLite file in WAL mode.
//!
//! One writer connection behind a mutex serialises writes (SQLite allows one writer at a
//! time anyway); a few reader connections serve reads concurrently thanks to WAL. Other
//! processes (the CLI while the server runs) open the same file; `busy_timeout` makes
//! them wait for the writer lock instead of failing.

use crate::audit::{next_record, AuditHead};
use crate::row::{self, AuditRow};
use crate::{
    clamp_limit, random_id_bytes, validate_tenant_name, ApiKey, AuditEntry, AuditRecord, Document,
    Store, StoreError, Tenant,
};
use regelkreis_core::{Event, EventId, EventQuery, KeyId, NewEvent, TenantId, Timestamp};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("sql/sqlite_0001_init.sql")),
    (2, include_str!("sql/sqlite_0002_documents.sql")),
];
const READERS: usize = 4;

/// The embedded SQLite engine.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while holding the lock leaves the connection usable: an open transaction is
    // rolled back when its guard drops.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk before it returns, so an acknowledged write survives a
    // crash of the process or the machine.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut writer = connect(path)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| connect(path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.readers.len() {
            if let Ok(guard) = self.readers[(start + i) % self.readers.len()].try_lock() {
                return guard;
            }
        }
        lock(&self.readers[start % self.readers.len()])
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let current: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let newest = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > newest {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: newest,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, Timestamp::now().micros()],
        )?;
    }
    tx.commit()?;
    Ok(())
}

const TENANT_COLS: &str = "id, name, created_at";
const KEY_COLS: &str = "id, tenant_id, name, scopes, hash, created_at, revoked_at";

fn tenant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

type KeyRow = (String, String, String, String, Vec<u8>, i64, Option<i64>);

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn key_from(k: KeyRow) -> Result<ApiKey, StoreError> {
    row::api_key(k.0, k.1, k.2, k.3, k.4, k.5, k.6)
}

impl Store for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    fn ping(&self) -> Result<(), StoreError> {
        let conn = self.reader();
        conn.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| {
            r.get::<_, i64>(0)
        })?;
        Ok(())
    }

    fn ensure_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        validate_tenant_name(name)?;
        let id = TenantId::from_random(random_id_bytes()?);
        let conn = lock(&self.writer);
        conn.execute(
            "INSERT INTO tenants (id, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO NOTHING",
            params![id.as_str(), name, Timestamp::now().micros()],
        )?;
        let t = conn.query_row(
            &format!("SELECT {TENANT_COLS} FROM tenants WHERE name = ?1"),
            [name],
            tenant_row,
        )?;
        row::tenant(t.0, t.1, t.2)
    }

    fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let conn = self.reader();
        let t = conn
            .query_row(
                &format!("SELECT {TENANT_COLS} FROM tenants WHERE name = ?1"),
                [name],
                tenant_row,
            )
            .optional()?;
        t.map(|t| row::tenant(t.0, t.1, t.2)).transpose()
    }

    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        let conn = self.reader();
        let t = conn
            .query_row(
                &format!("SELECT {TENANT_COLS} FROM tenants WHERE id = ?1"),
                [id.as_str()],
                tenant_row,
            )
            .optional()?;
        t.map(|t| row::tenant(t.0, t.1, t.2)).transpose()
    }

    fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!("SELECT {TENANT_COLS} FROM tenants ORDER BY name"))?;
        let rows = stmt.query_map([], tenant_row)?;
        rows.map(|t| {
            let t = t?;
            row::tenant(t.0, t.1, t.2)
        })
        .collect()
    }

    fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let conn = lock(&self.writer);
        conn.execute(
            "INSERT INTO api_keys (id, tenant_id, name, scopes, hash, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                key.id.as_str(),
                key.tenant.as_str(),
                key.name,
                key.scopes.to_string(),
                key.hash.as_slice(),
                key.created_at.micros(),
                key.revoked_at.map(|t| t.micros()),
            ],
        )?;
        Ok(())
    }

    fn key(&self, id: &KeyId) -> Result<Option<ApiKey>, StoreError> {
        let conn = self.reader();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {KEY_COLS} FROM api_keys WHERE id = ?1"))?;
        let k = stmt.query_row([id.as_str()], key_row).optional()?;
        k.map(key_from).transpose()
    }

    fn keys(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiKey>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare(&format!(
            "SELECT {KEY_COLS} FROM api_keys WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY created_at, id"
        ))?;
        let rows = stmt.query_map([tenant.map(|t| t.as_str())], key_row)?;
        rows.map(|k| key_from(k?)).collect()
    }

    fn revoke_key(
        &self,
        id: &KeyId,
        tenant: Option<&TenantId>,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let conn = lock(&self.writer);
        let n = conn.execute(
            "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL AND (?3 IS NULL OR tenant_id = ?3)",
            params![at.micros(), id.as_str(), tenant.map(|t| t.as_str())],
        )?;
        Ok(n == 1)
    }

    fn append_events(&self, events: &[NewEvent]) -> Result<Vec<EventId>, StoreError> {
        for e in events {
            e.kind
                .validate()
                .map_err(|err| StoreError::Invalid(err.to_string()))?;
        }
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ids = Vec::with_capacity(events.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO events (tenant_id, at, type, feature, campaign, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for e in events {
                stmt.execute(params![
                    e.tenant.as_str(),
                    e.at.micros(),
                    e.kind.type_name(),
                    e.tags.feature,
                    e.tags.campaign,
                    e.kind.encode_data(),
                ])?;
                ids.push(EventId(tx.last_insert_rowid()));
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    fn events(&self, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT id, tenant_id, at, type, feature, campaign, data FROM events
             WHERE tenant_id = ?1 AND (?2 IS NULL OR type = ?2) AND (?3 IS NULL OR at >= ?3)
               AND (?4 IS NULL OR at < ?4) AND id > ?5
             ORDER BY id LIMIT ?6",
        )?;
        let rows = stmt.query_map(
            params![
                q.tenant.as_str(),
                q.type_name,
                q.since.map(|t| t.micros()),
                q.until.map(|t| t.micros()),
                q.after.map_or(0, |a| a.0),
                clamp_limit(q.limit),
            ],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                ))
            },
        )?;
        rows.map(|r| {
            let r = r?;
            row::event(r.0, r.1, r.2, r.3, r.4, r.5, r.6)
        })
        .collect()
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<AuditRecord, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let head = tx
            .query_row(
                "SELECT seq, hash FROM audit_heads WHERE tenant_id = ?1",
                [entry.tenant.as_str()],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?
            .map(|(seq, hash)| row::audit_head(seq, &hash))
            .transpose()?;
        let rec = next_record(entry, head);
        let seq = row::seq_i64(rec.seq)?;
        tx.execute(
            "INSERT INTO audit_records (tenant_id, seq, at, actor, action, subject, details, prev_hash, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                entry.tenant.as_str(),
                seq,
                entry.at.micros(),
                entry.actor,
                entry.action,
                entry.subject,
                entry.details,
                rec.prev_hash.as_slice(),
                rec.hash.as_slice(),
            ],
        )?;
        tx.execute(
            "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (?1, ?2, ?3)
             ON CONFLICT(tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            params![entry.tenant.as_str(), seq, rec.hash.as_slice()],
        )?;
        tx.commit()?;
        Ok(rec)
    }

    fn audit_records(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT tenant_id, seq, at, actor, action, subject, details, prev_hash, hash
             FROM audit_records WHERE tenant_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![
                tenant.as_str(),
                row::seq_i64(after_seq)?,
                clamp_limit(limit)
            ],
            |r| {
                Ok(AuditRow {
                    tenant_id: r.get(0)?,
                    seq: r.get(1)?,
                    at: r.get(2)?,
                    actor: r.get(3)?,
                    action: r.get(4)?,
                    subject: r.get(5)?,
                    details: r.get(6)?,
                    prev_hash: r.get(7)?,
                    hash: r.get(8)?,
                })
            },
        )?;
        rows.map(|r| row::audit(r?)).collect()
    }

    fn audit_head(&self, tenant: &TenantId) -> Result<Option<AuditHead>, StoreError> {
        let conn = self.reader();
        let head = conn
            .query_row(
                "SELECT seq, hash FROM audit_heads WHERE tenant_id = ?1",
                [tenant.as_str()],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?;
        head.map(|(seq, hash)| row::audit_head(seq, &hash))
            .transpose()
    }

    fn document(
        &self,
        tenant: &TenantId,
        kind: &str,
        key: &str,
    ) -> Result<Option<Document>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT tenant_id, kind, key, version, body, updated_at FROM documents
             WHERE tenant_id = ?1 AND kind = ?2 AND key = ?3",
        )?;
        let d = stmt
            .query_row(params![tenant.as_str(), kind, key], doc_row)
            .optional()?;
        d.map(|d| row::document(d.0, d.1, d.2, d.3, d.4, d.5))
            .transpose()
    }

    fn documents(&self, tenant: &TenantId, kind: &str) -> Result<Vec<Document>, StoreError> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(
            "SELECT tenant_id, kind, key, version, body, updated_at FROM documents
             WHERE tenant_id = ?1 AND kind = ?2 ORDER BY key",
        )?;
        let rows = stmt.query_map(params![tenant.as_str(), kind], doc_row)?;
        rows.map(|d| {
            let d = d?;
            row::document(d.0, d.1, d.2, d.3, d.4, d.5)
        })
        .collect()
    }

    fn put_document(
        &self,
        tenant: &TenantId,
        kind: &str,
        key: &str,
        body: &str,
        expected: Option<u64>,
    ) -> Result<Document, StoreError> {
        let now = Timestamp::now();
        let conn = lock(&self.writer);
        let changed = match expected {
            None => conn.execute(
                "INSERT INTO documents (tenant_id, kind, key, version, body, updated_at)
                 VALUES (?1, ?2, ?3, 1, ?4, ?5) ON CONFLICT DO NOTHING",
                params![tenant.as_str(), kind, key, body, now.micros()],
            )?,
            Some(v) => conn.execute(
                "UPDATE documents SET version = version + 1, body = ?4, updated_at = ?5
                 WHERE tenant_id = ?1 AND kind = ?2 AND key = ?3 AND version = ?6",
                params![
                    tenant.as_str(),
                    kind,
                    key,
                    body,
                    now.micros(),
                    row::seq_i64(v)?
                ],
            )?,
        };
        row::written(changed as u64, tenant, kind, key, body, expected, now)
    }
}

type DocRow = (String, String, String, i64, String, i64);

fn doc_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}
