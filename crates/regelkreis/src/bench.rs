//! `regelkreis bench …`: benchmarks that print figures side by side with their reference,
//! measured in the same run.

use crate::cli::table;
use anyhow::Context;
use clap::Args;
use regelkreis_core::{EventKind, NewEvent, Tags, Timestamp};
use regelkreis_store::audit::verify_tenant;
use regelkreis_store::{AuditEntry, PostgresStore, SqliteStore, Store};
use std::time::Instant;

/// `bench store` arguments.
#[derive(Debug, Args)]
pub struct StoreBenchArgs {
    /// Events appended in batches.
    #[arg(long, default_value_t = 50_000)]
    pub events: usize,
    /// Events per batch (one transaction each).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Events appended one per transaction (each durable on its own).
    #[arg(long, default_value_t = 1_000)]
    pub single: usize,
    /// Audit records appended, then verified.
    #[arg(long, default_value_t = 5_000)]
    pub audit: usize,
    /// PostgreSQL to measure beside SQLite (default: `REGELKREIS_TEST_POSTGRES`).
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

struct StoreFigures {
    engine: &'static str,
    batched_per_s: f64,
    single_per_s: f64,
    audit_append_per_s: f64,
    audit_verify_per_s: f64,
}

fn event(tenant: &regelkreis_core::TenantId, i: usize) -> NewEvent {
    NewEvent {
        tenant: tenant.clone(),
        at: Timestamp::now(),
        tags: Tags {
            feature: Some("bench".into()),
            campaign: Some(format!("c{}", i % 7)),
        },
        kind: EventKind::ModelCall {
            provider: "local".into(),
            model: "extractive".into(),
            input_tokens: 812,
            output_tokens: 64,
            cached_tokens: 0,
            cost_micros: 1_234,
            latency_us: 1_800,
            cache_hit: i % 3 == 0,
            fallback_path: vec![],
        },
    }
}

fn measure(store: &dyn Store, args: &StoreBenchArgs) -> anyhow::Result<StoreFigures> {
    let tenant = store.ensure_tenant("bench")?;
    let batch = args.batch.max(1);
    let started = Instant::now();
    let mut done = 0;
    while done < args.events {
        let n = batch.min(args.events - done);
        let events: Vec<NewEvent> = (done..done + n).map(|i| event(&tenant.id, i)).collect();
        store.append_events(&events)?;
        done += n;
    }
    let batched_per_s = args.events as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    for i in 0..args.single {
        store.append_events(&[event(&tenant.id, i)])?;
    }
    let single_per_s = args.single as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    for i in 0..args.audit {
        store.append_audit(&AuditEntry {
            tenant: tenant.id.clone(),
            at: Timestamp::now(),
            actor: "bench".into(),
            action: "bench.append".into(),
            subject: format!("s{i}"),
            details: "{\"bench\":true}".into(),
        })?;
    }
    let audit_append_per_s = args.audit as f64 / started.elapsed().as_secs_f64();

    let started = Instant::now();
    let report = verify_tenant(store, &tenant.id)?
        .map_err(|b| anyhow::anyhow!("audit chain broken during bench: {b}"))?;
    let audit_verify_per_s = report.records as f64 / started.elapsed().as_secs_f64();
    Ok(StoreFigures {
        engine: store.engine(),
        batched_per_s,
        single_per_s,
        audit_append_per_s,
        audit_verify_per_s,
    })
}

/// Runs `bench store`.
pub fn store(args: &StoreBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut figures = Vec::new();
    eprintln!(
        "measuring sqlite (WAL, synchronous=FULL) in {}",
        dir.path().display()
    );
    let sqlite = SqliteStore::open(&dir.path().join("bench.sqlite"))?;
    figures.push(measure(&sqlite, args)?);

    let url = args.postgres.clone().or_else(|| {
        std::env::var("REGELKREIS_TEST_POSTGRES")
            .ok()
            .filter(|u| !u.is_empty())
    });
    let mut note = None;
    match url {
        Some(url) => {
            let mut b = [0u8; 6];
            getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("random: {e}"))?;
            let schema = format!("bench_{}", hex::encode(b));
            eprintln!("measuring postgres in schema {schema}");
            let pg = PostgresStore::open_in_schema(&url, &schema)
                .context("cannot reach the PostgreSQL given for the benchmark")?;
            figures.push(measure(&pg, args)?);
            drop(pg);
            if let Ok(mut c) = postgres::Client::connect(&url, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
            }
        }
        None => {
            note = Some(
                "postgres: not measured; pass --postgres URL (scripts/postgres.sh starts one)",
            );
        }
    }

    if args.json {
        let results: Vec<serde_json::Value> = figures
            .iter()
            .map(|f| {
                serde_json::json!({
                    "engine": f.engine,
                    "batched_events_per_s": f.batched_per_s,
                    "single_events_per_s": f.single_per_s,
                    "audit_append_per_s": f.audit_append_per_s,
                    "audit_verify_per_s": f.audit_verify_per_s,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "results": results, "batch": args.batch })
        );
        return Ok(());
    }
    let rows: Vec<[String; 5]> = figures
        .iter()
        .map(|f| {
            [
                f.engine.to_owned(),
                format!("{:.0}", f.batched_per_s),
                format!("{:.0}", f.single_per_s),
                format!("{:.0}", f.audit_append_per_s),
                format!("{:.0}", f.audit_verify_per_s),
            ]
        })
        .collect();
    println!(
        "events appended: {} in batches of {}, {} one per transaction; audit: {} records",
        args.events, args.batch, args.single, args.audit
    );
    print!(
        "{}",
        table(
            &[
                "ENGINE",
                "EVENTS/S (BATCHED)",
                "EVENTS/S (SINGLE)",
                "AUDIT APPEND/S",
                "AUDIT VERIFY/S"
            ],
            &rows
        )
    );
    if let [s, p] = figures.as_slice() {
        println!(
            "ratio postgres/sqlite: batched {:.2}x, single {:.2}x, audit append {:.2}x, audit verify {:.2}x",
            p.batched_per_s / s.batched_per_s,
            p.single_per_s / s.single_per_s,
            p.audit_append_per_s / s.audit_append_per_s,
            p.audit_verify_per_s / s.audit_verify_per_s
        );
    }
    if let Some(n) = note {
        println!("{n}");
    }
    Ok(())
}
