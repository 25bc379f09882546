//! Decoding of stored rows, shared by both engines so they agree on every value.

use crate::{ApiKey, AuditEntry, AuditRecord, StoreError, Tenant};
use regelkreis_core::{Event, EventId, EventKind, KeyId, Scopes, Tags, TenantId, Timestamp};

pub(crate) fn tenant(id: String, name: String, created_at: i64) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId::parse(&id).map_err(|e| StoreError::corrupt("tenants", e))?,
        name,
        created_at: Timestamp(created_at),
    })
}

pub(crate) fn hash32(table: &'static str, bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::corrupt(table, format!("hash of {} bytes", bytes.len())))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn api_key(
    id: String,
    tenant_id: String,
    name: String,
    scopes: String,
    hash: Vec<u8>,
    created_at: i64,
    revoked_at: Option<i64>,
) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: KeyId::parse(&id).map_err(|e| StoreError::corrupt("api_keys", e))?,
        tenant: TenantId::parse(&tenant_id).map_err(|e| StoreError::corrupt("api_keys", e))?,
        name,
        scopes: Scopes::parse_list(&scopes).map_err(|e| StoreError::corrupt("api_keys", e))?,
        hash: hash32("api_keys", &hash)?,
        created_at: Timestamp(created_at),
        revoked_at: revoked_at.map(Timestamp),
    })
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn event(
    id: i64,
    tenant_id: String,
    at: i64,
    type_name: String,
    feature: Option<String>,
    campaign: Option<String>,
    data: String,
) -> Result<Event, StoreError> {
    Ok(Event {
        id: EventId(id),
        tenant: TenantId::parse(&tenant_id).map_err(|e| StoreError::corrupt("events", e))?,
        at: Timestamp(at),
        tags: Tags { feature, campaign },
        kind: EventKind::decode(&type_name, data.as_bytes())
            .map_err(|e| StoreError::corrupt("events", format!("event {id}: {e}")))?,
    })
}

pub(crate) struct AuditRow {
    pub tenant_id: String,
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

pub(crate) fn audit(r: AuditRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: u64::try_from(r.seq)
            .map_err(|_| StoreError::corrupt("audit_records", format!("seq {}", r.seq)))?,
        entry: AuditEntry {
            tenant: TenantId::parse(&r.tenant_id)
                .map_err(|e| StoreError::corrupt("audit_records", e))?,
            at: Timestamp(r.at),
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            details: r.details,
        },
        prev_hash: hash32("audit_records", &r.prev_hash)?,
        hash: hash32("audit_records", &r.hash)?,
    })
}

pub(crate) fn seq_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Invalid(format!("seq {seq} out of range")))
}

pub(crate) fn document(
    tenant_id: String,
    kind: String,
    key: String,
    version: i64,
    body: String,
    updated_at: i64,
) -> Result<crate::Document, StoreError> {
    Ok(crate::Document {
        tenant: TenantId::parse(&tenant_id).map_err(|e| StoreError::corrupt("documents", e))?,
        kind,
        key,
        version: u64::try_from(version)
            .map_err(|_| StoreError::corrupt("documents", "negative version"))?,
        body,
        updated_at: Timestamp(updated_at),
    })
}

pub(crate) fn conflict(kind: &str, key: &str, expected: Option<u64>) -> StoreError {
    match expected {
        None => StoreError::Conflict(format!("{kind} {key:?} already exists")),
        Some(v) => StoreError::Conflict(format!(
            "{kind} {key:?} changed since version {v}; read it again"
        )),
    }
}

/// The document a compare-and-swap write stored, or the conflict when it changed no row.
#[allow(clippy::too_many_arguments)]
pub(crate) fn written(
    changed: u64,
    tenant: &TenantId,
    kind: &str,
    key: &str,
    body: &str,
    expected: Option<u64>,
    now: Timestamp,
) -> Result<crate::Document, StoreError> {
    if changed != 1 {
        return Err(conflict(kind, key, expected));
    }
    Ok(crate::Document {
        tenant: tenant.clone(),
        kind: kind.to_owned(),
        key: key.to_owned(),
        version: expected.map_or(1, |v| v + 1),
        body: body.to_owned(),
        updated_at: now,
    })
}

/// A chain head as stored: last seq and hash.
pub(crate) fn audit_head(seq: i64, hash: &[u8]) -> Result<crate::AuditHead, StoreError> {
    Ok(crate::AuditHead {
        seq: u64::try_from(seq).map_err(|_| StoreError::corrupt("audit_heads", "negative seq"))?,
        hash: hash32("audit_heads", hash)?,
    })
}
