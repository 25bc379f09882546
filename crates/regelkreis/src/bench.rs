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
            cache_hit: i.is_multiple_of(3),
            fallback_path: vec![],
            key_id: None,
            requested_model: None,
            cache_write_tokens: 0,
            estimated: false,
            shared_by: 1,
            stream: false,
            interrupted: false,
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

/// `bench stats` arguments.
#[derive(Debug, Args)]
pub struct StatsBenchArgs {
    /// Steps per simulated bandit run.
    #[arg(long, default_value_t = 20_000)]
    pub steps: usize,
    /// Seeds, comma-separated; one run per seed and policy.
    #[arg(long, default_value = "1,2,3,4,5")]
    pub seeds: String,
    /// Assignments to time.
    #[arg(long, default_value_t = 20_000_000)]
    pub assignments: usize,
    /// Skip MABWiser (no Python needed).
    #[arg(long)]
    pub no_reference: bool,
}

struct PolicyFigures {
    regrets: Vec<f64>,
    decisions_per_s: f64,
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

/// A virtualenv under `target/` with the given PyPI packages, made on first use.
pub fn python_env(name: &str, packages: &[&str]) -> anyhow::Result<std::path::PathBuf> {
    python_env_at(&std::path::Path::new("target").join(name), packages)
}

/// A virtualenv in `dir` with the given PyPI packages, made on first use.
pub fn python_env_at(
    dir: &std::path::Path,
    packages: &[&str],
) -> anyhow::Result<std::path::PathBuf> {
    let python = dir.join("bin").join("python");
    let marker = dir.join(".installed");
    let wanted = packages.join(" ");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        eprintln!("installing {wanted} into {} (once)", dir.display());
        let status = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(dir)
            .status()
            .context("python3 is needed for the reference implementation")?;
        anyhow::ensure!(status.success(), "python3 -m venv failed");
        let status = std::process::Command::new(dir.join("bin").join("pip"))
            .args(["install", "-q"])
            .args(packages)
            .status()?;
        anyhow::ensure!(status.success(), "pip install {wanted} failed");
        std::fs::write(&marker, &wanted)?;
    }
    Ok(python)
}

/// Runs `bench stats`.
pub fn stats(args: &StatsBenchArgs) -> anyhow::Result<()> {
    use regelkreis_measure::assignment::{Assigner, Experiment};
    use regelkreis_measure::bandit::{simulate_bernoulli, Bandit, Policy};
    use regelkreis_measure::rng::Rng;

    let seeds: Vec<u64> = args
        .seeds
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .context("--seeds takes comma-separated integers")?;
    let rates: Vec<f64> = (0..10).map(|i| 0.01 + 0.04 * f64::from(i) / 9.0).collect();
    let policies = [
        (
            "thompson",
            Policy::BetaThompson {
                alpha: 1.0,
                beta: 1.0,
            },
        ),
        ("ucb1", Policy::Ucb1 { c: 1.0 }),
        ("epsilon_greedy", Policy::EpsilonGreedy { epsilon: 0.1 }),
    ];
    let mut ours = Vec::new();
    for (name, policy) in &policies {
        let mut regrets = Vec::new();
        let mut seconds = 0.0;
        for &seed in &seeds {
            let mut bandit = Bandit::new(policy.clone(), rates.len(), 1);
            let mut rng = Rng::seeded(seed);
            let started = Instant::now();
            regrets.push(simulate_bernoulli(
                &mut bandit,
                &rates,
                args.steps,
                &mut rng,
            ));
            seconds += started.elapsed().as_secs_f64();
        }
        let decisions_per_s = (args.steps * seeds.len()) as f64 / seconds;
        ours.push((
            *name,
            PolicyFigures {
                regrets,
                decisions_per_s,
            },
        ));
    }

    let reference: Option<serde_json::Value> = if args.no_reference {
        None
    } else {
        let python = python_env("venv-bench", &["mabwiser==2.7.4"])?;
        eprintln!("running MABWiser on the same arms, rates, steps and seeds");
        let out = std::process::Command::new(python)
            .arg("scripts/bench_mabwiser.py")
            .arg(args.steps.to_string())
            .arg(&args.seeds)
            .arg(serde_json::to_string(&rates)?)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "MABWiser run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(serde_json::from_slice(&out.stdout)?)
    };

    println!(
        "Bernoulli bandit: 10 arms, rates 0.010-0.050, {} steps, seeds {}",
        args.steps, args.seeds
    );
    let rows: Vec<[String; 7]> = ours
        .iter()
        .map(|(name, f)| {
            let (m, sd) = mean_sd(&f.regrets);
            let r = reference.as_ref().map(|r| &r[*name]);
            let theirs: Vec<f64> = r
                .and_then(|r| r["regret"].as_array())
                .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
                .unwrap_or_default();
            let (rm, rsd) = if theirs.is_empty() {
                (f64::NAN, f64::NAN)
            } else {
                mean_sd(&theirs)
            };
            // Welch interval of the difference in mean regret
            let (n1, n2) = (f.regrets.len() as f64, theirs.len() as f64);
            let (v1, v2) = (sd * sd / n1, rsd * rsd / n2);
            let dof = (v1 + v2).powi(2) / (v1 * v1 / (n1 - 1.0) + v2 * v2 / (n2 - 1.0));
            let half = regelkreis_measure::special::t_ppf(0.975, dof) * (v1 + v2).sqrt();
            let diff = m - rm;
            let rdps = r
                .and_then(|r| r["decisions_per_s"].as_f64())
                .unwrap_or(f64::NAN);
            [
                (*name).to_owned(),
                format!("{m:.1} ± {sd:.1}"),
                if rm.is_nan() {
                    "-".into()
                } else {
                    format!("{rm:.1} ± {rsd:.1}")
                },
                format!("{:.0}", f.decisions_per_s),
                if rdps.is_nan() {
                    "-".into()
                } else {
                    format!("{rdps:.0}")
                },
                if rdps.is_nan() {
                    "-".into()
                } else {
                    format!("{:.0}x", f.decisions_per_s / rdps)
                },
                if diff.is_nan() || half.is_nan() {
                    "-".into()
                } else {
                    format!("{diff:+.1} [{:+.1}, {:+.1}]", diff - half, diff + half)
                },
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "POLICY",
                "REGRET (OURS)",
                "REGRET (MABWISER)",
                "DECISIONS/S (OURS)",
                "DECISIONS/S (MABWISER)",
                "SPEED-UP",
                "REGRET DIFF (95 % CI)"
            ],
            &rows
        )
    );

    let experiment = Experiment {
        key: "headline-test".into(),
        variations: 3,
        weights: None,
        coverage: 1.0,
        seed: None,
        hash_version: 2,
        namespace: None,
        holdout: None,
    };
    let assigner = Assigner::new(&experiment);
    let units: Vec<String> = (0..1_000_000).map(|i| format!("user-{i}")).collect();
    let started = Instant::now();
    let mut counts = [0usize; 4];
    for unit in units.iter().cycle().take(args.assignments) {
        let v = assigner.assign(unit).map_or(3, |v| v);
        counts[v] += 1;
    }
    let per_s = args.assignments as f64 / started.elapsed().as_secs_f64();
    println!(
        "assignments (GrowthBook hash v2, 3 arms, one thread): {:.1} M/s (goal 20 M/s); split {:?}",
        per_s / 1e6,
        &counts[..3]
    );
    Ok(())
}

/// `bench ann` arguments.
#[derive(Debug, Args)]
pub struct AnnBenchArgs {
    /// Vectors in the index.
    #[arg(long, default_value_t = 200_000)]
    pub n: usize,
    /// Dimensions.
    #[arg(long, default_value_t = 384)]
    pub dim: usize,
    /// Queries (single-threaded, one at a time).
    #[arg(long, default_value_t = 1_000)]
    pub queries: usize,
    /// Print `{"results": [...]}` instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Skip hnswlib and faiss-cpu (no Python needed).
    #[arg(long)]
    pub no_reference: bool,
    /// Real all-MiniLM-L6-v2 embeddings instead of synthetic vectors: Debian's English
    /// package descriptions as the base, the summaries of other packages as queries
    /// (up to ~56,000 texts; embeddings cached in target/bench-retrieval).
    #[arg(long)]
    pub real: bool,
}

/// Real MiniLM embeddings of Debian's package descriptions (base) and summaries of
/// packages outside the base (queries), embedded once and cached.
/// Base vectors and query vectors.
type VectorSets = (Vec<Vec<f32>>, Vec<Vec<f32>>);

fn real_embeddings(n: usize, nq: usize) -> anyhow::Result<VectorSets> {
    use regelkreis_knowledge::embed::{models_dir, Encoder, Role, MINILM};
    use sha2::Digest;
    let path = std::path::Path::new("target/retrieval/debian-en-all.jsonl");
    if !path.exists() {
        let ok = std::process::Command::new("python3")
            .arg("scripts/retrieval_dataset.py")
            .status()?
            .success();
        anyhow::ensure!(ok, "scripts/retrieval_dataset.py failed");
    }
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(path)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(
        rows.len() >= n + nq,
        "only {} texts: use --n {} or less",
        rows.len(),
        rows.len().saturating_sub(nq)
    );
    let encoder = Encoder::load(&models_dir().join(MINILM))?;
    let cache = regelkreis_knowledge::cache::EmbeddingCache::open(std::path::Path::new(
        "target/bench-retrieval/embedding-cache.sqlite",
    ))?;
    let embed = |texts: Vec<&str>, role: Role, what: &str| -> anyhow::Result<Vec<Vec<f32>>> {
        let keys: Vec<[u8; 32]> = texts
            .iter()
            .map(|t| sha2::Sha256::digest(format!("{role:?}\u{0}{t}").as_bytes()).into())
            .collect();
        let mut out = vec![Vec::new(); texts.len()];
        let mut missing = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            match cache.get(encoder.id(), k)? {
                Some(v) => out[i] = v,
                None => missing.push(i),
            }
        }
        let bar = indicatif::ProgressBar::new(missing.len() as u64)
            .with_message(format!("embedding {what}"));
        for part in missing.chunks(512) {
            let vs = encoder.embed(&part.iter().map(|&i| texts[i]).collect::<Vec<_>>(), role)?;
            let fresh: Vec<([u8; 32], Vec<f32>)> = part
                .iter()
                .zip(&vs)
                .map(|(&i, v)| (keys[i], v.clone()))
                .collect();
            cache.put(encoder.id(), &fresh)?;
            for (&i, v) in part.iter().zip(vs) {
                out[i] = v;
            }
            bar.inc(part.len() as u64);
        }
        bar.finish_and_clear();
        Ok(out)
    };
    let base = embed(
        rows[..n]
            .iter()
            .map(|r| r["text"].as_str().unwrap_or(""))
            .collect(),
        Role::Passage,
        "descriptions",
    )?;
    let queries = embed(
        rows[n..n + nq]
            .iter()
            .map(|r| r["query"].as_str().unwrap_or(""))
            .collect(),
        Role::Query,
        "summaries",
    )?;
    Ok((base, queries))
}

/// Unit vectors shaped like sentence embeddings: clustered around topic directions, with
/// per-vector noise, so nearest neighbours are neither trivial nor random.
fn embedding_like(
    n: usize,
    dim: usize,
    centers: &[Vec<f32>],
    rng: &mut regelkreis_measure::rng::Rng,
) -> Vec<Vec<f32>> {
    let noise = 1.2 / (dim as f64).sqrt();
    (0..n)
        .map(|_| {
            let c = &centers[rng.below(centers.len())];
            let mut v: Vec<f32> = c
                .iter()
                .map(|x| x + (rng.normal() * noise) as f32)
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect()
}

struct AnnResult {
    engine: String,
    params: String,
    recall: f64,
    qps: f64,
    build_s: f64,
    bytes_per_vector: f64,
    /// Bytes per vector read from the memory-mapped index file instead of the heap.
    mapped_bytes_per_vector: f64,
}

/// Runs `bench ann`.
pub fn ann(args: &AnnBenchArgs) -> anyhow::Result<()> {
    use regelkreis_index::{FlatIndex, HnswIndex, HnswParams, Metric, VectorIndex};
    use regelkreis_measure::rng::Rng;
    let (n, dim, nq, k) = (args.n, args.dim, args.queries, 10);
    anyhow::ensure!(
        n >= 100 && dim >= 2 && nq >= 1,
        "need n >= 100, dim >= 2, queries >= 1"
    );
    let (base, queries, dim) = if args.real {
        eprintln!("real all-MiniLM-L6-v2 embeddings: {n} Debian descriptions, {nq} summaries of other packages as queries");
        let (b, q) = real_embeddings(n, nq)?;
        (b, q, 384)
    } else {
        let mut rng = Rng::seeded(2026);
        eprintln!(
            "generating {n} vectors of {dim} dimensions (embedding-like clusters), {nq} queries"
        );
        let centers: Vec<Vec<f32>> = (0..(n / 200).max(10))
            .map(|_| {
                let v: Vec<f32> = (0..dim).map(|_| rng.normal() as f32).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / norm).collect()
            })
            .collect();
        let base = embedding_like(n, dim, &centers, &mut rng);
        let queries = embedding_like(nq, dim, &centers, &mut rng);
        (base, queries, dim)
    };

    eprintln!("exact ground truth (2 threads, batches of queries)");
    let mut flat = FlatIndex::new(Metric::Cosine, dim);
    for (i, v) in base.iter().enumerate() {
        flat.upsert(i as u64, v)?;
    }
    let query_refs: Vec<&[f32]> = queries.iter().map(|q| q.as_slice()).collect();
    let started = Instant::now();
    let truth: Vec<Vec<u64>> = flat
        .search_batch(&query_refs, k, 0, 2)?
        .into_iter()
        .map(|hits| hits.into_iter().map(|h| h.id).collect())
        .collect();
    // two threads shared the queries: per-thread (single-query-thread) throughput
    let flat_batched_qps = (nq as f64 / 2.0) / started.elapsed().as_secs_f64();
    let single = &queries[..nq.min(50)];
    let started = Instant::now();
    for q in single {
        flat.search(q, k, 0, None)?;
    }
    let flat_qps = single.len() as f64 / started.elapsed().as_secs_f64();
    let flat_row = |params: &str, qps: f64| AnnResult {
        engine: "regelkreis-flat".into(),
        params: params.into(),
        recall: 1.0,
        qps,
        build_s: 0.0,
        bytes_per_vector: flat.bytes_per_vector(),
        mapped_bytes_per_vector: 0.0,
    };
    let mut results = vec![
        flat_row("exact", flat_qps),
        flat_row("exact,batched", flat_batched_qps),
    ];

    let efs = [10usize, 16, 20, 24, 28, 32, 40, 48, 64, 96, 128, 200, 300];
    let recall_of = |found: &[Vec<u64>]| -> f64 {
        found
            .iter()
            .zip(&truth)
            .map(|(f, t)| f.iter().filter(|id| t.contains(id)).count() as f64 / k as f64)
            .sum::<f64>()
            / nq as f64
    };
    let mut last_hnsw = None;
    for (engine, int8) in [("regelkreis-hnsw", false), ("regelkreis-hnsw-int8", true)] {
        eprintln!("building {engine} (M=16, efConstruction=200, 2 threads)");
        let started = Instant::now();
        let params = HnswParams {
            int8,
            ..HnswParams::default()
        };
        let mut hnsw = HnswIndex::new(Metric::Cosine, dim, params);
        let items: Vec<(u64, &[f32])> = base
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64, v.as_slice()))
            .collect();
        for (c, chunk) in items.chunks(20_000).enumerate() {
            hnsw.upsert_batch(chunk, 2)?;
            let done = (c + 1) * 20_000;
            eprintln!(
                "  {} / {n} ({:.0} vectors/s, 2 threads)",
                done.min(n),
                done.min(n) as f64 / started.elapsed().as_secs_f64()
            );
        }
        let build_s = started.elapsed().as_secs_f64();
        hnsw.shrink_to_fit();
        if int8 {
            // Searched as a server runs it: saved, then opened from the file, whose
            // full-precision vectors (read only to re-score) stay mapped.
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("int8.idx");
            hnsw.save(&path)?;
            let opened = Instant::now();
            hnsw = HnswIndex::open(&path)?;
            eprintln!(
                "  saved and reopened in {:.2} s: {:.0} heap bytes per vector + {:.0} mapped",
                opened.elapsed().as_secs_f64(),
                hnsw.bytes_per_vector(),
                hnsw.mapped_bytes_per_vector()
            );
        }
        for &ef in &efs {
            let (found, qps) = best_pass(&queries, |q| hnsw.search(q, k, ef, None))?;
            results.push(AnnResult {
                engine: engine.into(),
                params: format!("M=16,efC=200,ef={ef}"),
                recall: recall_of(&found),
                qps,
                build_s,
                bytes_per_vector: hnsw.bytes_per_vector(),
                mapped_bytes_per_vector: hnsw.mapped_bytes_per_vector(),
            });
        }
        last_hnsw = Some(hnsw);
    }

    let filtered = match last_hnsw.take() {
        Some(index) => filtered_search(&index, &flat, &queries, k)?,
        None => Vec::new(),
    };
    let nlist = ((n as f64).sqrt() * 2.0).round().clamp(1.0, 4096.0) as usize;
    eprintln!("training IVF-Flat (nlist={nlist}, k-means on a sample)");
    let started = Instant::now();
    let sample: Vec<Vec<f32>> = base
        .iter()
        .step_by((n / (nlist * 16)).max(1))
        .cloned()
        .collect();
    let mut ivf = regelkreis_index::IvfFlatIndex::train(Metric::Cosine, dim, nlist, &sample, 6, 7)?;
    for (i, v) in base.iter().enumerate() {
        ivf.upsert(i as u64, v)?;
    }
    let ivf_build = started.elapsed().as_secs_f64();
    for nprobe in [4usize, 8, 16, 32, 64] {
        let started = Instant::now();
        let found = queries
            .iter()
            .map(|q| {
                ivf.search(q, k, nprobe, None)
                    .map(|h| h.iter().map(|x| x.id).collect::<Vec<_>>())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let qps = nq as f64 / started.elapsed().as_secs_f64();
        results.push(AnnResult {
            engine: "regelkreis-ivf-flat".into(),
            params: format!("nlist={nlist},nprobe={nprobe}"),
            recall: recall_of(&found),
            qps,
            build_s: ivf_build,
            bytes_per_vector: (dim * 4 + 8 + 24) as f64,
            mapped_bytes_per_vector: 0.0,
        });
    }

    if !args.no_reference {
        let dir = std::path::Path::new("target").join("bench-ann");
        std::fs::create_dir_all(&dir)?;
        let write_f32 = |name: &str, rows: &[Vec<f32>]| -> anyhow::Result<()> {
            let mut bytes = Vec::with_capacity(rows.len() * dim * 4);
            for r in rows {
                for x in r {
                    bytes.extend_from_slice(&x.to_le_bytes());
                }
            }
            Ok(std::fs::write(dir.join(name), bytes)?)
        };
        write_f32("base.f32", &base)?;
        write_f32("queries.f32", &queries)?;
        let mut t = Vec::with_capacity(nq * k * 4);
        for row in &truth {
            for id in row {
                t.extend_from_slice(&u32::try_from(*id)?.to_le_bytes());
            }
        }
        std::fs::write(dir.join("truth.u32"), t)?;
        std::fs::write(
            dir.join("meta.json"),
            serde_json::json!({"n": n, "dim": dim, "queries": nq, "ef": efs}).to_string(),
        )?;
        let python = python_env("venv-ann", &["numpy", "hnswlib", "faiss-cpu"])?;
        eprintln!("running hnswlib and faiss-cpu on the same vectors");
        let out = std::process::Command::new(python)
            .arg("scripts/bench_ann.py")
            .arg(&dir)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "reference run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            results.push(AnnResult {
                engine: v["engine"].as_str().unwrap_or("?").to_owned(),
                params: v["params"].as_str().unwrap_or("?").to_owned(),
                recall: v["recall_at_10"].as_f64().unwrap_or(f64::NAN),
                qps: v["qps"].as_f64().unwrap_or(f64::NAN),
                build_s: v["build_s"].as_f64().unwrap_or(f64::NAN),
                bytes_per_vector: v["bytes_per_vector"].as_f64().unwrap_or(f64::NAN),
                mapped_bytes_per_vector: 0.0,
            });
        }
    }

    if args.json {
        let filtered_json: Vec<serde_json::Value> = filtered
            .iter()
            .map(|f| serde_json::json!({"form": f.form, "selectivity": f.selectivity, "recall_at_10": f.recall, "p50_us": f.p50_us, "p95_us": f.p95_us, "unfiltered_p95_us": f.unfiltered_p95_us, "p95_ratio": f.p95_ratio}))
            .collect();
        let list: Vec<serde_json::Value> = results
            .iter()
            .map(|r| {
                serde_json::json!({"engine": r.engine, "params": r.params, "recall_at_10": r.recall,
                    "qps": r.qps, "build_s": r.build_s, "bytes_per_vector": r.bytes_per_vector,
                    "mapped_bytes_per_vector": r.mapped_bytes_per_vector})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "results": list, "filtered": filtered_json })
        );
        return Ok(());
    }
    println!(
        "{n} vectors, {dim} dimensions, {nq} queries, one query thread, kernels {}",
        regelkreis_index::distance::kernel_name()
    );
    let rows: Vec<[String; 6]> = results
        .iter()
        .map(|r| {
            [
                r.engine.clone(),
                r.params.clone(),
                format!("{:.4}", r.recall),
                format!("{:.0}", r.qps),
                format!("{:.1} ({:.0}/s)", r.build_s, n as f64 / r.build_s),
                if r.mapped_bytes_per_vector > 0.0 {
                    format!(
                        "{:.0} (+{:.0} mapped)",
                        r.bytes_per_vector, r.mapped_bytes_per_vector
                    )
                } else {
                    format!("{:.0}", r.bytes_per_vector)
                },
            ]
        })
        .collect();
    println!(
        "QPS: one query at a time on one thread; HNSW rows (ours, hnswlib, faiss) the fastest of {PASSES} passes over the queries"
    );
    print!(
        "{}",
        table(
            &[
                "ENGINE",
                "PARAMS",
                "RECALL@10",
                "QPS",
                "BUILD S (VECTORS/S)",
                "BYTES/VECTOR"
            ],
            &rows
        )
    );
    if !filtered.is_empty() {
        println!("\nfiltered search (int8 HNSW, ef=64). metadata: `tenant = t` (one tenant per id, tenants holding each selectivity) evaluated from the postings of a MetadataIndex for every query; a dense answer goes to the index as the bitset over ids it is (search_among_bits: exact over the matches' slots when cheaper, else a walk testing each node's id bit), a sparse one as a list of ids. predicate: a function of the id; exact below 8 % sampled selectivity or while the matches cost less to scan than a walk (fewer than 70 x max(k / selectivity, 1.5 ef); the filter asked about all ids 1,024 at a time, then the int8 codes scored four rows per VNNI kernel pass), else a one-hop walk keeping 1.5 x ef x selectivity matching nodes, at least k (two hops below 5 % only where exact_max_matches caps the scan); id list: the ids become a bitset of slots, then the same choice (a list of an eighth of the nodes or more walks with a bitset over ids). P95 is the best of 5 rounds of 300 queries on each side, unfiltered rounds alternating with filtered ones:");
        let rows: Vec<[String; 7]> = filtered
            .iter()
            .map(|f| {
                [
                    f.form.to_owned(),
                    format!("{:.1} %", f.selectivity * 100.0),
                    format!("{:.4}", f.recall),
                    format!("{:.0}", f.p50_us),
                    format!("{:.0}", f.p95_us),
                    format!("{:.0}", f.unfiltered_p95_us),
                    format!("{:.2}x", f.p95_ratio),
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &[
                    "FILTER",
                    "SELECTIVITY",
                    "RECALL@10",
                    "P50 US",
                    "P95 US",
                    "UNFILTERED P95 US",
                    "P95 / UNFILTERED"
                ],
                &rows
            )
        );
    }
    for threshold in [0.95, 0.98, 0.99] {
        let best = |engine: &str| {
            results
                .iter()
                .filter(|r| r.engine == engine && r.recall >= threshold)
                .map(|r| r.qps)
                .fold(f64::NAN, f64::max)
        };
        let theirs = best("hnswlib");
        for engine in ["regelkreis-hnsw", "regelkreis-hnsw-int8"] {
            let ours = best(engine);
            println!(
                "recall >= {threshold}: {engine} {ours:.0} QPS, hnswlib {theirs:.0} QPS, ratio {:.2}x",
                ours / theirs
            );
        }
    }
    Ok(())
}

/// Passes over the queries per search setting; the fastest counts. The reference script
/// does the same, so a burst of load on the machine costs one pass, not a figure.
const PASSES: usize = 3;

/// The ids each query found and the queries per second of the fastest of [`PASSES`].
fn best_pass(
    queries: &[Vec<f32>],
    search: impl Fn(&[f32]) -> Result<Vec<regelkreis_index::Hit>, regelkreis_index::IndexError>,
) -> anyhow::Result<(Vec<Vec<u64>>, f64)> {
    let mut best = (Vec::new(), 0.0f64);
    for _ in 0..PASSES {
        let started = Instant::now();
        let found = queries
            .iter()
            .map(|q| search(q).map(|h| h.iter().map(|x| x.id).collect::<Vec<_>>()))
            .collect::<Result<Vec<_>, _>>()?;
        let qps = queries.len() as f64 / started.elapsed().as_secs_f64();
        if qps > best.1 {
            best = (found, qps);
        }
    }
    Ok(best)
}

struct FilteredFigures {
    /// `metadata` (`tenant = …` answered from the postings of a `MetadataIndex`),
    /// `predicate` (a function of the id) or `id list` (the matching ids, handed over).
    form: &'static str,
    selectivity: f64,
    recall: f64,
    p50_us: f64,
    p95_us: f64,
    /// The unfiltered p95 measured alongside.
    unfiltered_p95_us: f64,
    p95_ratio: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Recall and latency of filtered searches at several selectivities, beside the
/// unfiltered p95 at the same `ef` measured right alongside: each form and selectivity
/// runs `ROUNDS` times, alternating with an unfiltered run, and both sides keep their
/// best p95 (the same treatment, in the same minute of the machine's load).
fn filtered_search(
    index: &regelkreis_index::HnswIndex,
    flat: &regelkreis_index::FlatIndex,
    queries: &[Vec<f32>],
    k: usize,
) -> anyhow::Result<Vec<FilteredFigures>> {
    use regelkreis_index::{Condition, Hit, IndexError, MetaFilter, MetadataIndex, VectorIndex};
    let ef = 64;
    let qs = &queries[..queries.len().min(300)];
    type Search<'a> = &'a dyn Fn(&[f32]) -> Result<Vec<Hit>, IndexError>;
    let timed = |search: Search<'_>| -> anyhow::Result<(Vec<Vec<u64>>, Vec<f64>)> {
        let mut found = Vec::with_capacity(qs.len());
        let mut micros = Vec::with_capacity(qs.len());
        for q in qs {
            let started = Instant::now();
            let hits = search(q)?;
            micros.push(started.elapsed().as_secs_f64() * 1e6);
            found.push(hits.iter().map(|h| h.id).collect());
        }
        micros.sort_by(f64::total_cmp);
        Ok((found, micros))
    };
    const SELECTIVITIES: [f64; 7] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5];
    // A uniform number per id: the predicate form keeps ids below the selectivity; the
    // metadata form gives each id one tenant, tenant i holding SELECTIVITIES[i] of them
    // (the rest, 8.4 %, a tenant of their own).
    let uniform =
        |id: u64| (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as f64 / (1u64 << 24) as f64;
    let tenant = |id: u64| {
        let u = uniform(id);
        let mut upto = 0.0;
        SELECTIVITIES
            .iter()
            .position(|s| {
                upto += s;
                u < upto
            })
            .unwrap_or(SELECTIVITIES.len())
    };
    let mut meta = MetadataIndex::new();
    for id in 0..index.len() as u64 {
        meta.set(
            id,
            regelkreis_index::Attributes {
                keywords: vec![("tenant".into(), format!("t{}", tenant(id)))],
                numbers: Vec::new(),
            },
        );
    }
    const ROUNDS: usize = 5;
    let mut out = Vec::new();
    for (i, &selectivity) in SELECTIVITIES.iter().enumerate() {
        let pass = move |id: u64| uniform(id) < selectivity;
        let of_tenant = move |id: u64| tenant(id) == i;
        let filter = MetaFilter {
            conditions: vec![Condition::equals("tenant", &format!("t{i}"))],
        };
        // The matching ids, as a caller's own index would hand them over.
        let list: Vec<u64> = (0..index.len() as u64).filter(|&id| pass(id)).collect();
        let truth = |keep: &dyn Fn(u64) -> bool| -> anyhow::Result<Vec<Vec<u64>>> {
            qs.iter()
                .map(|q| {
                    let hits = flat.search(q, k, 0, Some(&|id: u64| keep(id)))?;
                    Ok(hits.iter().map(|h| h.id).collect())
                })
                .collect()
        };
        let (of_tenant_truth, pass_truth) = (truth(&of_tenant)?, truth(&pass)?);
        for form in ["metadata", "predicate", "id list"] {
            let truths = if form == "metadata" {
                &of_tenant_truth
            } else {
                &pass_truth
            };
            let (mut base_p95, mut p50, mut p95) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
            let mut found = Vec::new();
            for _ in 0..ROUNDS {
                let (_, base) = timed(&|q| index.search(q, k, ef, None))?;
                base_p95 = base_p95.min(percentile(&base, 0.95));
                let (hits, micros) = match form {
                    // the filter evaluated from its postings for every query
                    "metadata" => timed(&|q| meta.matching(&filter).search(index, q, k, ef))?,
                    "predicate" => timed(&|q| index.search(q, k, ef, Some(&pass)))?,
                    _ => timed(&|q| index.search_among(q, k, ef, &list))?,
                };
                p50 = p50.min(percentile(&micros, 0.5));
                p95 = p95.min(percentile(&micros, 0.95));
                found = hits;
            }
            let recall: f64 = truths
                .iter()
                .zip(&found)
                .map(|(truth, f)| {
                    f.iter().filter(|id| truth.contains(id)).count() as f64
                        / truth.len().max(1) as f64
                })
                .sum();
            out.push(FilteredFigures {
                form,
                selectivity,
                recall: recall / qs.len() as f64,
                p50_us: p50,
                p95_us: p95,
                unfiltered_p95_us: base_p95,
                p95_ratio: p95 / base_p95,
            });
        }
    }
    Ok(out)
}
