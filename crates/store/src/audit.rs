//! The tamper-evident audit trail: one hash chain per tenant.
//!
//! Record `n` of a tenant stores `hash_n = SHA-256(domain ‖ tenant ‖ n ‖ at ‖ actor ‖
//! action ‖ subject ‖ details ‖ hash_{n-1})`, every field length-prefixed, with
//! `hash_0 = 0³²`. Changing, removing, inserting or reordering a row breaks the chain at
//! the first affected record; removing the last rows is caught by the head kept beside
//! the chain.

use crate::{Store, StoreError};
use regelkreis_core::{TenantId, Timestamp};
use sha2::{Digest, Sha256};
use std::fmt;

/// The hash before the first record of every chain.
pub const GENESIS: [u8; 32] = [0; 32];

/// Something that happened and must be provable later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Whose chain it goes to.
    pub tenant: TenantId,
    /// When.
    pub at: Timestamp,
    /// Who did it (a key id, `cli`, `system`).
    pub actor: String,
    /// What (`key.create`, `key.revoke`, `guard.verdict`, …).
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// Details as compact JSON.
    pub details: String,
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the tenant's chain, from 1.
    pub seq: u64,
    /// The entry.
    pub entry: AuditEntry,
    /// Hash of the record before (or [`GENESIS`]).
    pub prev_hash: [u8; 32],
    /// This record's hash.
    pub hash: [u8; 32],
}

/// The end of a chain as recorded at append time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditHead {
    /// Last seq.
    pub seq: u64,
    /// Last hash.
    pub hash: [u8; 32],
}

/// The hash of a record at `seq` whose predecessor has `prev`.
pub fn record_hash(entry: &AuditEntry, seq: u64, prev: &[u8; 32]) -> [u8; 32] {
    fn field(h: &mut Sha256, bytes: &[u8]) {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    let mut h = Sha256::new();
    field(&mut h, b"regelkreis-audit-v1");
    field(&mut h, entry.tenant.as_str().as_bytes());
    h.update(seq.to_be_bytes());
    h.update(entry.at.micros().to_be_bytes());
    field(&mut h, entry.actor.as_bytes());
    field(&mut h, entry.action.as_bytes());
    field(&mut h, entry.subject.as_bytes());
    field(&mut h, entry.details.as_bytes());
    h.update(prev);
    h.finalize().into()
}

/// Builds the next record of a chain whose head is `head`.
pub fn next_record(entry: &AuditEntry, head: Option<AuditHead>) -> AuditRecord {
    let (seq, prev) = head.map_or((1, GENESIS), |h| (h.seq + 1, h.hash));
    AuditRecord {
        seq,
        entry: entry.clone(),
        prev_hash: prev,
        hash: record_hash(entry, seq, &prev),
    }
}

/// Why a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakReason {
    /// The record's content does not match its hash: it was changed or moved.
    HashMismatch,
    /// The record does not point at the record before it: one was removed, inserted or
    /// the rows were reordered.
    BrokenLink,
    /// A seq number is missing: the record was removed.
    Missing,
    /// The record belongs to another tenant.
    WrongTenant,
    /// The chain ends before its recorded head: records at the end were removed.
    Truncated {
        /// The head's seq.
        head_seq: u64,
    },
    /// The chain ends after its head, or the last hash differs from the head's.
    HeadMismatch,
}

/// The first bad record of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBreak {
    /// The tenant whose chain broke.
    pub tenant: TenantId,
    /// The seq of the first bad record (for a truncation, the first missing seq).
    pub seq: u64,
    /// Why.
    pub reason: BreakReason,
}

impl fmt::Display for AuditBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match &self.reason {
            BreakReason::HashMismatch => "content does not match its hash (changed or moved)".to_owned(),
            BreakReason::BrokenLink => "does not link to the record before it (a record was removed, inserted or reordered)".to_owned(),
            BreakReason::Missing => "is missing (removed)".to_owned(),
            BreakReason::WrongTenant => "belongs to another tenant".to_owned(),
            BreakReason::Truncated { head_seq } => format!("is missing: the chain ends before its head at seq {head_seq} (records removed at the end)"),
            BreakReason::HeadMismatch => "does not match the chain head (records appended or changed outside regelkreis)".to_owned(),
        };
        write!(
            f,
            "tenant {} audit record seq {}: {}",
            self.tenant, self.seq, why
        )
    }
}

/// What a successful verification saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
}

/// Walks a tenant's chain from the start and returns the first bad record, if any.
pub fn verify_tenant(
    store: &dyn Store,
    tenant: &TenantId,
) -> Result<Result<VerifyReport, AuditBreak>, StoreError> {
    const PAGE: usize = 2_000;
    let head = store.audit_head(tenant)?;
    let mut prev = GENESIS;
    let mut expected_seq = 1u64;
    let broken = |seq, reason| {
        Ok(Err(AuditBreak {
            tenant: tenant.clone(),
            seq,
            reason,
        }))
    };
    loop {
        let page = store.audit_records(tenant, expected_seq - 1, PAGE)?;
        let n = page.len();
        for r in page {
            if r.seq != expected_seq {
                return broken(expected_seq, BreakReason::Missing);
            }
            if &r.entry.tenant != tenant {
                return broken(r.seq, BreakReason::WrongTenant);
            }
            if r.hash != record_hash(&r.entry, r.seq, &r.prev_hash) {
                return broken(r.seq, BreakReason::HashMismatch);
            }
            if r.prev_hash != prev {
                return broken(r.seq, BreakReason::BrokenLink);
            }
            prev = r.hash;
            expected_seq += 1;
        }
        if n < PAGE {
            break;
        }
    }
    let last = expected_seq - 1;
    match head {
        None if last == 0 => {}
        Some(h) if h.seq == last && h.hash == prev => {}
        Some(h) if h.seq > last => {
            return broken(last + 1, BreakReason::Truncated { head_seq: h.seq });
        }
        _ => return broken(last, BreakReason::HeadMismatch),
    }
    Ok(Ok(VerifyReport { records: last }))
}

/// Verifies every tenant's chain; returns the total, or the first break found.
pub fn verify_all(store: &dyn Store) -> Result<Result<VerifyReport, AuditBreak>, StoreError> {
    let mut total = VerifyReport::default();
    for t in store.tenants()? {
        match verify_tenant(store, &t.id)? {
            Ok(r) => total.records += r.records,
            Err(b) => return Ok(Err(b)),
        }
    }
    Ok(Ok(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(details: &str) -> AuditEntry {
        AuditEntry {
            tenant: TenantId::from_random([7; 8]),
            at: Timestamp(5),
            actor: "cli".into(),
            action: "key.create".into(),
            subject: "key_x".into(),
            details: details.into(),
        }
    }

    #[test]
    fn hash_depends_on_every_field_and_the_link() {
        let a = next_record(&entry("{}"), None);
        assert_eq!(a.seq, 1);
        assert_eq!(a.prev_hash, GENESIS);
        let b = next_record(
            &entry("{}"),
            Some(AuditHead {
                seq: a.seq,
                hash: a.hash,
            }),
        );
        assert_eq!(b.seq, 2);
        assert_ne!(a.hash, b.hash);
        assert_ne!(a.hash, record_hash(&entry("{ }"), 1, &GENESIS));
        // length prefixes keep field boundaries: moving a byte between fields changes the hash
        let mut moved = entry("{}");
        moved.actor = "clik".into();
        moved.action = "ey.create".into();
        assert_ne!(record_hash(&moved, 1, &GENESIS), a.hash);
    }
}
