//! The scale-out engine: PostgreSQL, same schema and semantics as the SQLite engine.
//!
//! Connections come from an r2d2 pool. Migrations run under an advisory lock so several
//! replicas can start at once. The audit chain head is locked with `SELECT … FOR UPDATE`
//! so concurrent appends from several replicas still form one chain per tenant.

use crate::audit::{next_record, AuditHead, GENESIS};
use crate::row::{self, AuditRow};
use crate::{
    clamp_limit, random_id_bytes, validate_tenant_name, ApiKey, AuditEntry, AuditRecord, Document,
    Store, StoreError, Tenant,
};
use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;
use regelkreis_core::{Event, EventId, EventQuery, KeyId, NewEvent, TenantId, Timestamp};
use std::time::Duration;

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("sql/postgres_0001_init.sql")),
    (2, include_str!("sql/postgres_0002_documents.sql")),
];
/// An arbitrary constant naming regelkreis' migration lock.
const MIGRATION_LOCK: i64 = 0x7265_6765_6c6b;

/// The PostgreSQL engine.
pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// Connects to `url` and brings the schema up to date. Fails (never waits forever)
    /// when the server cannot be reached.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, None)
    }

    /// Like [`PostgresStore::open`], but keeps every table in `schema` (created when
    /// missing); tests use this to run side by side in one database.
    pub fn open_in_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        if schema.is_empty()
            || !schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::Config(format!(
                "schema name {schema:?} must be lowercase letters, digits and '_'"
            )));
        }
        Self::open_with(url, Some(schema))
    }

    fn open_with(url: &str, schema: Option<&str>) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Config(format!("invalid postgres URL: {e}")))?;
        config.connect_timeout(Duration::from_secs(5));
        // One direct connection first: an unreachable server fails at once with the
        // driver's own message instead of a pool time-out.
        let mut client = config.connect(NoTls)?;
        if let Some(schema) = schema {
            client.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))?;
            config.options(&format!("-c search_path={schema}"));
        }
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(8)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        let store = PostgresStore { pool };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        let mut tx = conn.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )?;
        let current: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )?
            .get(0);
        let newest = MIGRATIONS.last().map_or(0, |m| m.0);
        if current > newest {
            return Err(StoreError::SchemaTooNew {
                found: current,
                supported: newest,
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                &[version, &Timestamp::now().micros()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

const TENANT_COLS: &str = "id, name, created_at";
const KEY_COLS: &str = "id, tenant_id, name, scopes, hash, created_at, revoked_at";

fn tenant_from(r: &postgres::Row) -> Result<Tenant, StoreError> {
    row::tenant(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)
}

fn key_from(r: &postgres::Row) -> Result<ApiKey, StoreError> {
    row::api_key(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
    )
}

fn head_from(r: &postgres::Row) -> Result<AuditHead, StoreError> {
    let hash: Vec<u8> = r.try_get(1)?;
    row::audit_head(r.try_get(0)?, &hash)
}

impl Store for PostgresStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        conn.query_one("SELECT COUNT(*) FROM schema_migrations", &[])?;
        Ok(())
    }

    fn ensure_tenant(&self, name: &str) -> Result<Tenant, StoreError> {
        validate_tenant_name(name)?;
        let id = TenantId::from_random(random_id_bytes()?);
        let mut conn = self.pool.get()?;
        conn.execute(
            "INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            &[&id.as_str(), &name, &Timestamp::now().micros()],
        )?;
        let r = conn.query_one(
            &format!("SELECT {TENANT_COLS} FROM tenants WHERE name = $1"),
            &[&name],
        )?;
        tenant_from(&r)
    }

    fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>, StoreError> {
        let mut conn = self.pool.get()?;
        conn.query_opt(
            &format!("SELECT {TENANT_COLS} FROM tenants WHERE name = $1"),
            &[&name],
        )?
        .map(|r| tenant_from(&r))
        .transpose()
    }

    fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        let mut conn = self.pool.get()?;
        conn.query_opt(
            &format!("SELECT {TENANT_COLS} FROM tenants WHERE id = $1"),
            &[&id.as_str()],
        )?
        .map(|r| tenant_from(&r))
        .transpose()
    }

    fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let mut conn = self.pool.get()?;
        conn.query(
            &format!("SELECT {TENANT_COLS} FROM tenants ORDER BY name"),
            &[],
        )?
        .iter()
        .map(tenant_from)
        .collect()
    }

    fn insert_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        conn.execute(
            "INSERT INTO api_keys (id, tenant_id, name, scopes, hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &key.id.as_str(),
                &key.tenant.as_str(),
                &key.name,
                &key.scopes.to_string(),
                &key.hash.as_slice(),
                &key.created_at.micros(),
                &key.revoked_at.map(|t| t.micros()),
            ],
        )?;
        Ok(())
    }

    fn key(&self, id: &KeyId) -> Result<Option<ApiKey>, StoreError> {
        let mut conn = self.pool.get()?;
        conn.query_opt(
            &format!("SELECT {KEY_COLS} FROM api_keys WHERE id = $1"),
            &[&id.as_str()],
        )?
        .map(|r| key_from(&r))
        .transpose()
    }

    fn keys(&self, tenant: Option<&TenantId>) -> Result<Vec<ApiKey>, StoreError> {
        let mut conn = self.pool.get()?;
        conn.query(
            &format!(
                "SELECT {KEY_COLS} FROM api_keys WHERE ($1::TEXT IS NULL OR tenant_id = $1) ORDER BY created_at, id"
            ),
            &[&tenant.map(|t| t.as_str())],
        )?
        .iter()
        .map(key_from)
        .collect()
    }

    fn revoke_key(
        &self,
        id: &KeyId,
        tenant: Option<&TenantId>,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.get()?;
        let n = conn.execute(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL AND ($3::TEXT IS NULL OR tenant_id = $3)",
            &[&at.micros(), &id.as_str(), &tenant.map(|t| t.as_str())],
        )?;
        Ok(n == 1)
    }

    fn append_events(&self, events: &[NewEvent]) -> Result<Vec<EventId>, StoreError> {
        for e in events {
            e.kind
                .validate()
                .map_err(|err| StoreError::Invalid(err.to_string()))?;
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let n = i64::try_from(events.len())
            .map_err(|_| StoreError::Invalid("too many events in one batch".into()))?;
        let mut conn = self.pool.get()?;
        let mut tx = conn.transaction()?;
        // Take the ids first so each event's id is known for certain, then insert the
        // whole batch in one statement.
        let ids: Vec<i64> = tx
            .query(
                "SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1::BIGINT, $1::BIGINT)",
                &[&n],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let tenants: Vec<&str> = events.iter().map(|e| e.tenant.as_str()).collect();
        let ats: Vec<i64> = events.iter().map(|e| e.at.micros()).collect();
        let types: Vec<&str> = events.iter().map(|e| e.kind.type_name()).collect();
        let features: Vec<Option<&str>> =
            events.iter().map(|e| e.tags.feature.as_deref()).collect();
        let campaigns: Vec<Option<&str>> =
            events.iter().map(|e| e.tags.campaign.as_deref()).collect();
        let data: Vec<String> = events.iter().map(|e| e.kind.encode_data()).collect();
        tx.execute(
            "INSERT INTO events (id, tenant_id, at, type, feature, campaign, data)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[])",
            &[&ids, &tenants, &ats, &types, &features, &campaigns, &data],
        )?;
        tx.commit()?;
        Ok(ids.into_iter().map(EventId).collect())
    }

    fn events(&self, q: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let mut conn = self.pool.get()?;
        let rows = conn.query(
            "SELECT id, tenant_id, at, type, feature, campaign, data FROM events
             WHERE tenant_id = $1 AND ($2::TEXT IS NULL OR type = $2) AND ($3::BIGINT IS NULL OR at >= $3)
               AND ($4::BIGINT IS NULL OR at < $4) AND id > $5
             ORDER BY id LIMIT $6",
            &[
                &q.tenant.as_str(),
                &q.type_name,
                &q.since.map(|t| t.micros()),
                &q.until.map(|t| t.micros()),
                &q.after.map_or(0, |a| a.0),
                &clamp_limit(q.limit),
            ],
        )?;
        rows.iter()
            .map(|r| {
                row::event(
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                    r.try_get(5)?,
                    r.try_get(6)?,
                )
            })
            .collect()
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<AuditRecord, StoreError> {
        let mut conn = self.pool.get()?;
        let mut tx = conn.transaction()?;
        // Make sure a head row exists, then lock it: concurrent appends queue here.
        tx.execute(
            "INSERT INTO audit_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (tenant_id) DO NOTHING",
            &[&entry.tenant.as_str(), &GENESIS.as_slice()],
        )?;
        let r = tx.query_one(
            "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1 FOR UPDATE",
            &[&entry.tenant.as_str()],
        )?;
        let head = head_from(&r)?;
        let rec = next_record(entry, (head.seq > 0).then_some(head));
        let seq = row::seq_i64(rec.seq)?;
        tx.execute(
            "INSERT INTO audit_records (tenant_id, seq, at, actor, action, subject, details, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &entry.tenant.as_str(),
                &seq,
                &entry.at.micros(),
                &entry.actor,
                &entry.action,
                &entry.subject,
                &entry.details,
                &rec.prev_hash.as_slice(),
                &rec.hash.as_slice(),
            ],
        )?;
        tx.execute(
            "UPDATE audit_heads SET seq = $2, hash = $3 WHERE tenant_id = $1",
            &[&entry.tenant.as_str(), &seq, &rec.hash.as_slice()],
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
        let mut conn = self.pool.get()?;
        let rows = conn.query(
            "SELECT tenant_id, seq, at, actor, action, subject, details, prev_hash, hash
             FROM audit_records WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[
                &tenant.as_str(),
                &row::seq_i64(after_seq)?,
                &clamp_limit(limit),
            ],
        )?;
        rows.iter()
            .map(|r| {
                row::audit(AuditRow {
                    tenant_id: r.try_get(0)?,
                    seq: r.try_get(1)?,
                    at: r.try_get(2)?,
                    actor: r.try_get(3)?,
                    action: r.try_get(4)?,
                    subject: r.try_get(5)?,
                    details: r.try_get(6)?,
                    prev_hash: r.try_get(7)?,
                    hash: r.try_get(8)?,
                })
            })
            .collect()
    }

    fn audit_head(&self, tenant: &TenantId) -> Result<Option<AuditHead>, StoreError> {
        let mut conn = self.pool.get()?;
        let head = conn
            .query_opt(
                "SELECT seq, hash FROM audit_heads WHERE tenant_id = $1",
                &[&tenant.as_str()],
            )?
            .map(|r| head_from(&r))
            .transpose()?;
        Ok(head.filter(|h| h.seq > 0))
    }

    fn document(
        &self,
        tenant: &TenantId,
        kind: &str,
        key: &str,
    ) -> Result<Option<Document>, StoreError> {
        let mut conn = self.pool.get()?;
        conn.query_opt(
            "SELECT tenant_id, kind, key, version, body, updated_at FROM documents
             WHERE tenant_id = $1 AND kind = $2 AND key = $3",
            &[&tenant.as_str(), &kind, &key],
        )?
        .map(|r| doc_from(&r))
        .transpose()
    }

    fn documents(&self, tenant: &TenantId, kind: &str) -> Result<Vec<Document>, StoreError> {
        let mut conn = self.pool.get()?;
        conn.query(
            "SELECT tenant_id, kind, key, version, body, updated_at FROM documents
             WHERE tenant_id = $1 AND kind = $2 ORDER BY key",
            &[&tenant.as_str(), &kind],
        )?
        .iter()
        .map(doc_from)
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
        let mut conn = self.pool.get()?;
        let changed = match expected {
            None => conn.execute(
                "INSERT INTO documents (tenant_id, kind, key, version, body, updated_at)
                 VALUES ($1, $2, $3, 1, $4, $5) ON CONFLICT DO NOTHING",
                &[&tenant.as_str(), &kind, &key, &body, &now.micros()],
            )?,
            Some(v) => conn.execute(
                "UPDATE documents SET version = version + 1, body = $4, updated_at = $5
                 WHERE tenant_id = $1 AND kind = $2 AND key = $3 AND version = $6",
                &[
                    &tenant.as_str(),
                    &kind,
                    &key,
                    &body,
                    &now.micros(),
                    &row::seq_i64(v)?,
                ],
            )?,
        };
        row::written(changed, tenant, kind, key, body, expected, now)
    }
}

fn doc_from(r: &postgres::Row) -> Result<Document, StoreError> {
    row::document(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
    )
}
