//! The conformance suite: one `check_store` run against every engine, plus engine-level
//! tamper tests of the audit chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use regelkreis_core::{EventKind, EventQuery, NewEvent, Scope, Scopes, Tags, Timestamp};
use regelkreis_store::audit::{verify_all, verify_tenant, BreakReason};
use regelkreis_store::keys::{authenticate, issue};
use regelkreis_store::{AuditEntry, AuthError, PostgresStore, SqliteStore, Store, StoreError};
use std::sync::Arc;

fn outcome(tenant: &regelkreis_store::Tenant, at: i64, value: f64) -> NewEvent {
    NewEvent {
        tenant: tenant.id.clone(),
        at: Timestamp(at),
        tags: Tags {
            feature: Some("checkout".into()),
            campaign: None,
        },
        kind: EventKind::Outcome {
            name: "revenue".into(),
            value,
            unit: Some("u1".into()),
        },
    }
}

fn audit_entry(tenant: &regelkreis_store::Tenant, i: usize) -> AuditEntry {
    AuditEntry {
        tenant: tenant.id.clone(),
        at: Timestamp(1_000 + i as i64),
        actor: "test".into(),
        action: "key.create".into(),
        subject: format!("subject-{i}"),
        details: format!("{{\"i\":{i}}}"),
    }
}

/// Everything every engine must do the same way.
fn check_store(store: Arc<dyn Store>) {
    store.ping().unwrap();

    // tenants
    let a = store.ensure_tenant("acme").unwrap();
    let again = store.ensure_tenant("acme").unwrap();
    assert_eq!(a, again, "ensure_tenant is idempotent");
    let b = store.ensure_tenant("globex").unwrap();
    assert_ne!(a.id, b.id);
    assert!(matches!(
        store.ensure_tenant("Bad Name"),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.tenant_by_name("globex").unwrap(), Some(b.clone()));
    assert_eq!(store.tenant(&a.id).unwrap(), Some(a.clone()));
    assert_eq!(store.tenant_by_name("nobody").unwrap(), None);
    let names: Vec<String> = store
        .tenants()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, vec!["acme", "globex"]);

    // keys
    let ka = issue(&a.id, "ci", Scopes::new([Scope::KbRead]), Timestamp(1)).unwrap();
    let kb = issue(&b.id, "ci", Scopes::new([Scope::Admin]), Timestamp(2)).unwrap();
    store.insert_key(&ka.record).unwrap();
    store.insert_key(&kb.record).unwrap();
    assert_eq!(store.key(&ka.record.id).unwrap(), Some(ka.record.clone()));
    let found = authenticate(store.as_ref(), &ka.secret).unwrap();
    assert_eq!(found.tenant, a.id);
    assert!(found.scopes.allows(Scope::KbRead));
    let mut forged = ka.secret.clone();
    forged.pop();
    forged.push(if ka.secret.ends_with('0') { '1' } else { '0' });
    assert!(matches!(
        authenticate(store.as_ref(), &forged),
        Err(AuthError::Unknown)
    ));
    assert!(matches!(
        authenticate(store.as_ref(), "hello"),
        Err(AuthError::Malformed)
    ));
    assert_eq!(store.keys(Some(&a.id)).unwrap(), vec![ka.record.clone()]);
    assert_eq!(store.keys(None).unwrap().len(), 2);
    assert!(
        !store
            .revoke_key(&ka.record.id, Some(&b.id), Timestamp(3))
            .unwrap(),
        "a tenant cannot revoke another tenant's key"
    );
    assert!(authenticate(store.as_ref(), &ka.secret).is_ok());
    assert!(store
        .revoke_key(&ka.record.id, Some(&a.id), Timestamp(3))
        .unwrap());
    assert!(!store.revoke_key(&ka.record.id, None, Timestamp(4)).unwrap());
    assert!(matches!(
        authenticate(store.as_ref(), &ka.secret),
        Err(AuthError::Revoked)
    ));
    assert_eq!(
        store.key(&ka.record.id).unwrap().unwrap().revoked_at,
        Some(Timestamp(3))
    );

    // events
    let batch: Vec<NewEvent> = (0..10)
        .map(|i| outcome(&a, 100 + i, i as f64 * 0.5))
        .collect();
    let ids = store.append_events(&batch).unwrap();
    assert_eq!(ids.len(), 10);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids grow in append order"
    );
    store
        .append_events(&[NewEvent {
            kind: EventKind::Exposure {
                experiment: "headline".into(),
                arm: "b".into(),
                unit: "u1".into(),
            },
            ..outcome(&b, 105, 0.0)
        }])
        .unwrap();
    let all_a = store
        .events(&EventQuery::for_tenant(a.id.clone(), 100))
        .unwrap();
    assert_eq!(all_a.len(), 10);
    assert!(all_a.iter().all(|e| e.tenant == a.id));
    assert_eq!(all_a[3].kind, batch[3].kind);
    assert_eq!(all_a[3].tags, batch[3].tags);
    assert_eq!(all_a[3].at, Timestamp(103));
    let window = store
        .events(&EventQuery {
            since: Some(Timestamp(102)),
            until: Some(Timestamp(105)),
            ..EventQuery::for_tenant(a.id.clone(), 100)
        })
        .unwrap();
    assert_eq!(
        window.iter().map(|e| e.at.0).collect::<Vec<_>>(),
        vec![102, 103, 104]
    );
    let page = store
        .events(&EventQuery {
            after: Some(ids[7]),
            ..EventQuery::for_tenant(a.id.clone(), 100)
        })
        .unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(
        store
            .events(&EventQuery::for_tenant(a.id.clone(), 4))
            .unwrap()
            .len(),
        4
    );
    let typed = store
        .events(&EventQuery {
            type_name: Some("exposure".into()),
            ..EventQuery::for_tenant(a.id.clone(), 100)
        })
        .unwrap();
    assert!(
        typed.is_empty(),
        "tenant a has no exposures; b's must not leak"
    );
    let b_events = store
        .events(&EventQuery {
            type_name: Some("exposure".into()),
            ..EventQuery::for_tenant(b.id.clone(), 100)
        })
        .unwrap();
    assert_eq!(b_events.len(), 1);
    let bad = store.append_events(&[outcome(&a, 1, 1.0), outcome(&a, 2, f64::INFINITY)]);
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
    assert_eq!(
        store
            .events(&EventQuery::for_tenant(a.id.clone(), 100))
            .unwrap()
            .len(),
        10,
        "a refused batch writes nothing"
    );

    // audit chains, including concurrent appends to one tenant
    for i in 0..5 {
        let r = store.append_audit(&audit_entry(&a, i)).unwrap();
        assert_eq!(r.seq, i as u64 + 1);
    }
    for i in 0..3 {
        store.append_audit(&audit_entry(&b, i)).unwrap();
    }
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            let a = a.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    store.append_audit(&audit_entry(&a, 100 * t + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let report = verify_tenant(store.as_ref(), &a.id).unwrap().unwrap();
    assert_eq!(report.records, 105);
    assert_eq!(verify_all(store.as_ref()).unwrap().unwrap().records, 108);
    let records = store.audit_records(&a.id, 100, 10).unwrap();
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![101, 102, 103, 104, 105]
    );
    assert_eq!(store.audit_head(&a.id).unwrap().unwrap().seq, 105);
    // documents: compare-and-swap, per tenant
    let d = store
        .put_document(&a.id, "bandit", "hero", "{\"v\":1}", None)
        .unwrap();
    assert_eq!(d.version, 1);
    assert!(matches!(
        store.put_document(&a.id, "bandit", "hero", "{}", None),
        Err(StoreError::Conflict(_))
    ));
    let d2 = store
        .put_document(&a.id, "bandit", "hero", "{\"v\":2}", Some(1))
        .unwrap();
    assert_eq!(d2.version, 2);
    assert!(matches!(
        store.put_document(&a.id, "bandit", "hero", "{\"v\":3}", Some(1)),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .document(&a.id, "bandit", "hero")
            .unwrap()
            .unwrap()
            .body,
        "{\"v\":2}"
    );
    assert_eq!(
        store.document(&b.id, "bandit", "hero").unwrap(),
        None,
        "documents are per tenant"
    );
    store
        .put_document(&b.id, "bandit", "hero", "{}", None)
        .unwrap();
    store
        .put_document(&a.id, "bandit", "alpha", "{}", None)
        .unwrap();
    let keys: Vec<String> = store
        .documents(&a.id, "bandit")
        .unwrap()
        .into_iter()
        .map(|d| d.key)
        .collect();
    assert_eq!(keys, vec!["alpha", "hero"]);
    assert!(store.documents(&a.id, "experiment").unwrap().is_empty());
    // concurrent read-modify-write loses no increment
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let a = a.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    loop {
                        let d = store.document(&a.id, "counter", "c").unwrap();
                        let (n, v) = d.map_or((0, None), |d| {
                            (d.body.parse::<u64>().unwrap(), Some(d.version))
                        });
                        match store.put_document(&a.id, "counter", "c", &(n + 1).to_string(), v) {
                            Ok(_) => break,
                            Err(StoreError::Conflict(_)) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(
        store.document(&a.id, "counter", "c").unwrap().unwrap().body,
        "100"
    );

    let nobody = store.ensure_tenant("initech").unwrap();
    assert_eq!(store.audit_head(&nobody.id).unwrap(), None);
    assert_eq!(
        verify_tenant(store.as_ref(), &nobody.id)
            .unwrap()
            .unwrap()
            .records,
        0
    );
}

mod sqlite {
    use super::*;

    fn open() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.sqlite")).unwrap();
        (dir, Arc::new(store))
    }

    #[test]
    fn conforms() {
        let (_dir, store) = open();
        check_store(store);
    }

    #[test]
    fn reopening_keeps_everything_and_migrations_are_idempotent() {
        let (dir, store) = open();
        let t = store.ensure_tenant("acme").unwrap();
        store.append_audit(&audit_entry(&t, 0)).unwrap();
        drop(store);
        let store = SqliteStore::open(&dir.path().join("t.sqlite")).unwrap();
        assert_eq!(store.tenant_by_name("acme").unwrap(), Some(t.clone()));
        assert_eq!(verify_tenant(&store, &t.id).unwrap().unwrap().records, 1);
    }

    /// Sets up a chain of 6 records, lets `tamper` edit the file with plain SQL, and
    /// returns what verification says.
    fn tampered(tamper: &str) -> Option<(u64, BreakReason)> {
        let (dir, store) = open();
        let t = store.ensure_tenant("acme").unwrap();
        for i in 0..6 {
            store.append_audit(&audit_entry(&t, i)).unwrap();
        }
        drop(store);
        let raw = rusqlite::Connection::open(dir.path().join("t.sqlite")).unwrap();
        raw.execute_batch(tamper).unwrap();
        drop(raw);
        let store = SqliteStore::open(&dir.path().join("t.sqlite")).unwrap();
        match verify_tenant(&store, &t.id).unwrap() {
            Ok(_) => None,
            Err(b) => Some((b.seq, b.reason)),
        }
    }

    #[test]
    fn audit_verify_names_the_first_changed_removed_or_reordered_record() {
        assert_eq!(tampered("SELECT 1"), None);
        assert_eq!(
            tampered("UPDATE audit_records SET details = '{\"i\":99}' WHERE seq = 3"),
            Some((3, BreakReason::HashMismatch))
        );
        assert_eq!(
            tampered("DELETE FROM audit_records WHERE seq = 4"),
            Some((4, BreakReason::Missing))
        );
        // swap records 2 and 3 by renumbering them
        assert_eq!(
            tampered(
                "UPDATE audit_records SET seq = 100 WHERE seq = 2;
                 UPDATE audit_records SET seq = 2 WHERE seq = 3;
                 UPDATE audit_records SET seq = 3 WHERE seq = 100;"
            ),
            Some((2, BreakReason::HashMismatch))
        );
        assert_eq!(
            tampered("DELETE FROM audit_records WHERE seq = 6"),
            Some((6, BreakReason::Truncated { head_seq: 6 }))
        );
        // remove record 4 and renumber the rest so seqs stay dense: the hashes break
        assert_eq!(
            tampered(
                "DELETE FROM audit_records WHERE seq = 4;
                 UPDATE audit_records SET seq = seq - 1 WHERE seq > 4;"
            ),
            Some((4, BreakReason::HashMismatch))
        );
    }
}

mod postgres {
    use super::*;

    /// The URL of the PostgreSQL server the tests use. CI always provides one; without it
    /// outside CI the PostgreSQL half of the suite says loudly that it did not run.
    fn url() -> Option<String> {
        match std::env::var("REGELKREIS_TEST_POSTGRES") {
            Ok(url) if !url.is_empty() => Some(url),
            _ if std::env::var("CI").is_ok() => {
                panic!("CI is set but REGELKREIS_TEST_POSTGRES is not: the PostgreSQL engine must be tested in CI")
            }
            _ => {
                eprintln!("\n*** POSTGRES ENGINE NOT TESTED: set REGELKREIS_TEST_POSTGRES=postgres://… (scripts/test.sh does) ***\n");
                None
            }
        }
    }

    fn fresh_schema() -> String {
        let mut b = [0u8; 6];
        getrandom::fill(&mut b).unwrap();
        format!("t_{}", hex::encode(b))
    }

    #[test]
    fn conforms() {
        let Some(url) = url() else { return };
        let store = PostgresStore::open_in_schema(&url, &fresh_schema())
            .expect("REGELKREIS_TEST_POSTGRES is set, so PostgreSQL must be reachable");
        check_store(Arc::new(store));
    }

    #[test]
    fn audit_verify_catches_tampering() {
        let Some(url) = url() else { return };
        let schema = fresh_schema();
        let store = PostgresStore::open_in_schema(&url, &schema).unwrap();
        let t = store.ensure_tenant("acme").unwrap();
        for i in 0..4 {
            store.append_audit(&audit_entry(&t, i)).unwrap();
        }
        let mut raw = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        raw.batch_execute(&format!(
            "UPDATE {schema}.audit_records SET actor = 'mallory' WHERE seq = 2"
        ))
        .unwrap();
        let err = verify_tenant(&store, &t.id).unwrap().unwrap_err();
        assert_eq!((err.seq, err.reason), (2, BreakReason::HashMismatch));
    }

    #[test]
    fn an_unreachable_server_fails_fast_with_a_clear_error() {
        let started = std::time::Instant::now();
        let err = PostgresStore::open("postgres://nobody@127.0.0.1:1/none").err();
        assert!(err.is_some());
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }
}
