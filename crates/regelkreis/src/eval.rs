//! `regelkreis eval run`: runs an eval dataset through the answer path (in process, as
//! `POST /api/kb/{kb}/answer` runs it), scores every case independently of the path
//! (citations resolved against the knowledge base, sentences checked against the quotes
//! they cite), prints the metrics, and with `--gate` fails on a floor or a significant
//! drop from a baseline report. Every run is a `custom` event named `eval_run`.

use crate::config::Config;
use anyhow::Context;
use regelkreis_eval::dataset::Case;
use regelkreis_eval::gate::{check, Floor};
use regelkreis_eval::grounding::strip_markers;
use regelkreis_eval::metrics::supported;
use regelkreis_eval::text::sentences;
use regelkreis_eval::{CaseResult, Report};
use regelkreis_server::answer::{AnswerRequest, AnswerResponse};
use std::path::PathBuf;
use std::sync::Arc;

/// `eval …`
#[derive(Debug, clap::Subcommand)]
pub enum EvalCommand {
    /// Run a dataset against a knowledge base.
    Run(EvalRunArgs),
    /// Fit the answer path's confidence model on a dataset's outcomes.
    Calibrate(EvalCalibrateArgs),
}

/// What an eval runs: a dataset against a knowledge base of a tenant, through a model.
#[derive(Debug, clap::Args)]
pub struct EvalTarget {
    /// The dataset (JSON lines).
    pub dataset: PathBuf,
    /// Knowledge base name.
    #[arg(long)]
    pub kb: String,
    /// Tenant name.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Model, alias or tier.
    #[arg(long, default_value = "cheap")]
    pub model: String,
}

/// Arguments of `eval calibrate`.
#[derive(Debug, clap::Args)]
pub struct EvalCalibrateArgs {
    /// Dataset, knowledge base, tenant and model.
    #[command(flatten)]
    pub target: EvalTarget,
    /// Folds of the cross-validation that judges the fit.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Where to write the fitted model (JSON; `[knowledge] confidence_model` reads it).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `eval run`.
#[derive(Debug, clap::Args)]
pub struct EvalRunArgs {
    /// Dataset, knowledge base, tenant and model.
    #[command(flatten)]
    pub target: EvalTarget,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// A previous report (`--json` output) to compare with.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Exit non-zero when a floor or the baseline is missed.
    #[arg(long)]
    pub gate: bool,
    /// Run every case this many times (distinct ids), for timing.
    #[arg(long, default_value_t = 1, hide = true)]
    pub repeat: usize,
    /// Cases answered at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

/// The outcome of a run.
pub struct EvalOutcome {
    /// The metrics.
    pub report: Report,
    /// Per case, in dataset order.
    pub results: Vec<CaseResult>,
    /// Ids of the cases that did not succeed.
    pub failures: Vec<String>,
    /// Seconds the run took.
    pub seconds: f64,
}

/// Scores one answer against its case and the knowledge base.
fn score(
    case: &Case,
    a: &AnswerResponse,
    kb: &regelkreis_knowledge::KnowledgeBase,
    guard: &regelkreis_guard::Guard,
) -> anyhow::Result<CaseResult> {
    let mut valid = 0;
    for c in &a.citations {
        if let Some((doc, text, start)) = kb.chunk(c.chunk_id)? {
            let quote_ok = text.find(&c.quote).is_some_and(|at| {
                start + text[..at].chars().count() == c.start
                    && c.end == c.start + c.quote.chars().count()
            });
            if doc == c.document_id && quote_ok {
                valid += 1;
            }
        }
    }
    let (mut total, mut ok) = (0, 0);
    if !a.abstained {
        for s in sentences(&a.answer) {
            let (clean, cited) = strip_markers(s);
            if clean.is_empty() {
                continue;
            }
            let quotes: Vec<&str> = a
                .citations
                .iter()
                .filter(|c| cited.contains(&c.n))
                .map(|c| c.quote.as_str())
                .collect();
            total += 1;
            if supported(&clean, &quotes, None, 0.8, 1.0) {
                ok += 1;
            }
        }
    }
    let cited_docs: Vec<String> = a.citations.iter().map(|c| c.document_id.clone()).collect();
    let assertions_passed = case
        .all_assertions()
        .iter()
        .all(|x| x.holds(&a.answer, a.abstained, &cited_docs));
    Ok(CaseResult {
        id: case.id.clone(),
        retrieved: a.retrieved.clone(),
        relevant: case.relevant_documents.clone(),
        answerable: case.answerable,
        abstained: a.abstained,
        answer: a.answer.clone(),
        reference: case.reference.clone(),
        citations: a.citations.len(),
        citations_valid: valid,
        sentences: total,
        sentences_supported: ok,
        assertions_passed,
        style_ok: a.abstained || guard.violations(&a.answer).is_empty(),
        latency_ms: a.latency_ms,
        cost_micros: a.cost_micros,
        confidence: Some(a.confidence),
        signals: a.signals.clone(),
    })
}

/// Runs the cases against a knowledge base of a server state, with a progress bar.
pub async fn run_cases(
    state: &regelkreis_server::AppState,
    principal: &regelkreis_server::Principal,
    kb_name: &str,
    model: &str,
    cases: &[Case],
    concurrency: usize,
    progress: bool,
) -> anyhow::Result<EvalOutcome> {
    let started = std::time::Instant::now();
    let kb = {
        let knowledge = state.knowledge().map_err(|e| anyhow::anyhow!("{e}"))?;
        knowledge
            .get(principal.tenant.as_str(), kb_name)
            .with_context(|| format!("knowledge base {kb_name}"))?
    };
    let guard = state.guard().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let bar = if progress {
        indicatif::ProgressBar::new(cases.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} eval {bar:30} {pos}/{len} cases · {per_sec} · eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, case) in cases.iter().cloned().enumerate() {
        let (state, principal, sem) = (state.clone(), principal.clone(), sem.clone());
        let (kb_name, model) = (kb_name.to_owned(), model.to_owned());
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let req = AnswerRequest {
                question: case.question.clone(),
                k: 6,
                model,
                filter: Default::default(),
                min_support: 0.8,
                include_superseded: false,
            };
            let a = regelkreis_server::answer::answer(&state, &principal, &kb_name, req).await;
            (i, case, a)
        });
    }
    let mut results: Vec<Option<CaseResult>> = vec![None; cases.len()];
    while let Some(joined) = tasks.join_next().await {
        let (i, case, a) = joined?;
        let a = a.map_err(|e| anyhow::anyhow!("case {}: {e}", case.id))?;
        results[i] = Some(score(&case, &a, &kb, &guard)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let results: Vec<CaseResult> = results.into_iter().flatten().collect();
    let failures = results
        .iter()
        .filter(|r| !r.success())
        .map(|r| r.id.clone())
        .collect();
    Ok(EvalOutcome {
        report: Report::from_results(&results),
        results,
        failures,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Reads a dataset, optionally repeated `repeat` times with distinct ids.
fn read_dataset(path: &std::path::Path, repeat: usize) -> anyhow::Result<Vec<Case>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut cases = regelkreis_eval::dataset::parse(&text)
        .with_context(|| format!("dataset {}", path.display()))?;
    if repeat > 1 {
        let base = cases.clone();
        for r in 1..repeat {
            cases.extend(base.iter().cloned().map(|mut c| {
                c.id = format!("{}#{r}", c.id);
                c
            }));
        }
    }
    Ok(cases)
}

/// Runs cases against the target's knowledge base in the configured data dir.
fn execute(
    config: &Config,
    target: &EvalTarget,
    cases: &[Case],
    concurrency: usize,
    progress: bool,
) -> anyhow::Result<(
    Arc<dyn regelkreis_store::Store>,
    regelkreis_core::TenantId,
    EvalOutcome,
)> {
    let store = crate::cli::open_store(config)?;
    let tenant = store
        .tenant_by_name(&target.tenant)?
        .with_context(|| format!("tenant {} does not exist", target.tenant))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        let state = regelkreis_server::AppState::new(store.clone(), config.server_config()?)?;
        let principal = crate::cli::answering_principal(tenant.id.clone());
        let (kb, model) = (&target.kb, &target.model);
        let o = run_cases(&state, &principal, kb, model, cases, concurrency, progress).await;
        state.flush().await;
        o
    })?;
    Ok((store, tenant.id, outcome))
}

/// Runs `eval run`.
pub fn run(config: &Config, args: &EvalRunArgs) -> anyhow::Result<()> {
    let cases = read_dataset(&args.target.dataset, args.repeat)?;
    let baseline: Option<Report> = match &args.baseline {
        Some(p) => Some(
            serde_json::from_str(
                &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("baseline {} is not an eval report", p.display()))?,
        ),
        None => None,
    };
    let (store, tenant, outcome) =
        execute(config, &args.target, &cases, args.concurrency, !args.json)?;
    let violations = check(&outcome.report, baseline.as_ref(), &Floor::defaults());
    store.append_events(&[regelkreis_core::NewEvent {
        tenant: tenant.clone(),
        at: regelkreis_core::Timestamp::now(),
        tags: regelkreis_core::Tags::default(),
        kind: regelkreis_core::EventKind::Custom {
            name: "eval_run".into(),
            data: serde_json::json!({
                "dataset": args.target.dataset.display().to_string(), "kb": args.target.kb, "model": args.target.model,
                "cases": outcome.report.cases, "metrics": outcome.report.metrics,
                "seconds": outcome.seconds, "gate_passed": violations.is_empty(),
            }),
        },
    }])?;
    if args.json {
        let mut v = serde_json::to_value(&outcome.report)?;
        v["failures"] = serde_json::json!(outcome.failures);
        v["seconds"] = serde_json::json!(outcome.seconds);
        v["gate"] = serde_json::json!({"passed": violations.is_empty(), "violations": violations});
        println!("{v}");
    } else {
        println!(
            "{} cases in {:.1} s ({:.0} cases/s), knowledge base {}, model {}\n",
            outcome.report.cases,
            outcome.seconds,
            outcome.report.cases as f64 / outcome.seconds.max(1e-9),
            args.target.kb,
            args.target.model
        );
        println!(
            "{:<22} {:>10} {:>10} {:>10}",
            "metric", "value", "floor", "baseline"
        );
        let floors = Floor::defaults();
        for (name, value) in &outcome.report.metrics {
            let floor = floors
                .iter()
                .find(|f| &f.metric == name)
                .map_or(String::new(), |f| format!("{:.2}", f.limit));
            let base = baseline
                .as_ref()
                .and_then(|b| b.get(name))
                .map_or(String::new(), |b| format!("{b:.4}"));
            println!("{name:<22} {value:>10.4} {floor:>10} {base:>10}");
        }
        if !outcome.failures.is_empty() {
            let shown: Vec<&str> = outcome
                .failures
                .iter()
                .take(12)
                .map(String::as_str)
                .collect();
            println!(
                "\n{} cases did not succeed: {}{}",
                outcome.failures.len(),
                shown.join(", "),
                if outcome.failures.len() > 12 {
                    ", …"
                } else {
                    ""
                }
            );
        }
        for v in &violations {
            println!("GATE: {}", v.reason);
        }
    }
    if args.gate && !violations.is_empty() {
        anyhow::bail!("the eval gate failed on {} metric(s)", violations.len());
    }
    Ok(())
}

/// Runs `eval calibrate`: the dataset through the answer path, then the confidence model
/// refitted on the outcomes (right = the case succeeded). Prints the current model's
/// calibration beside the refit's, judged out of fold, and writes the refit fitted on
/// all cases.
pub fn calibrate(config: &Config, args: &EvalCalibrateArgs) -> anyhow::Result<()> {
    use regelkreis_eval::calibration::{
        brier_score, expected_calibration_error, reliability, ConfidenceModel, Sample, DEFAULT_L2,
    };
    use regelkreis_server::answer::{ABSTENTION_SIGNALS, ANSWER_SIGNALS};
    let cases = read_dataset(&args.target.dataset, 1)?;
    let (_, _, outcome) = execute(config, &args.target, &cases, 4, !args.json)?;
    let samples: Vec<Sample> = outcome
        .results
        .iter()
        .map(|r| Sample {
            abstained: r.abstained,
            signals: r.signals.clone(),
            right: r.success(),
        })
        .collect();
    let current = regelkreis_eval::report::scored(&outcome.results);
    let folds = args.folds.clamp(2, samples.len().max(2));
    let out_of_fold = ConfidenceModel::cross_validate(
        &ANSWER_SIGNALS,
        &ABSTENTION_SIGNALS,
        &samples,
        folds,
        DEFAULT_L2,
    )?;
    let refit: Vec<(f64, bool)> = out_of_fold
        .iter()
        .zip(&samples)
        .map(|(c, s)| (*c, s.right))
        .collect();
    let model = ConfidenceModel::fit(&ANSWER_SIGNALS, &ABSTENTION_SIGNALS, &samples, DEFAULT_L2)?;
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&model)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let figures = |s: &[(f64, bool)]| {
        serde_json::json!({
            "ece": expected_calibration_error(s), "brier": brier_score(s),
            "reliability": reliability(s),
        })
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "cases": samples.len(), "folds": folds,
                "current": figures(&current), "refit_out_of_fold": figures(&refit),
                "model": model,
            })
        );
        return Ok(());
    }
    let right = samples.iter().filter(|s| s.right).count();
    println!(
        "{} cases ({} right, {} abstentions), {folds}-fold cross-validation\n",
        samples.len(),
        right,
        samples.iter().filter(|s| s.abstained).count()
    );
    println!("{:<28} {:>8} {:>8}", "confidence model", "ECE", "Brier");
    for (name, s) in [("current", &current), ("refit (out of fold)", &refit)] {
        println!(
            "{name:<28} {:>8.4} {:>8.4}",
            expected_calibration_error(s).unwrap_or(f64::NAN),
            brier_score(s).unwrap_or(f64::NAN)
        );
    }
    println!("\nreliability of the refit, out of fold");
    println!(
        "{:<11} {:>6} {:>11} {:>9}  ",
        "confidence", "cases", "mean conf.", "right"
    );
    for b in reliability(&refit) {
        let bar = "█".repeat((b.accuracy * 20.0).round() as usize);
        println!(
            "{:.1}–{:.1}    {:>6} {:>11.2} {:>9.2}  {bar}",
            b.low, b.high, b.count, b.confidence, b.accuracy
        );
    }
    if let Some(path) = &args.out {
        println!(
            "\nwrote {} (fitted on all {} cases)",
            path.display(),
            samples.len()
        );
    }
    Ok(())
}

/// Arguments of `bench eval`.
#[derive(Debug, clap::Args)]
pub struct EvalBenchArgs {
    /// Cases at least (the shipped set is repeated with distinct ids until there are).
    #[arg(long, default_value_t = 500)]
    pub cases: usize,
    /// Cases answered at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

/// Runs `bench eval`: the shipped sample knowledge base ingested into a temporary data
/// dir, then the shipped eval set repeated to at least `--cases` cases, timed, with a
/// progress bar.
pub fn bench(args: &EvalBenchArgs) -> anyhow::Result<()> {
    let root = std::path::Path::new("examples/brand");
    anyhow::ensure!(
        root.join("eval.jsonl").exists(),
        "run from the repository root: examples/brand/eval.jsonl is needed"
    );
    let text = std::fs::read_to_string(root.join("eval.jsonl"))?;
    let base = regelkreis_eval::dataset::parse(&text)?;
    let mut cases = Vec::new();
    let mut r = 0;
    while cases.len() < args.cases {
        cases.extend(base.iter().cloned().map(|mut c| {
            c.id = format!("{}#{r}", c.id);
            c
        }));
        r += 1;
    }
    let dir = tempfile::tempdir()?;
    let config = Config {
        data: dir.path().to_owned(),
        ..Config::default()
    };
    let ingest = crate::knowledge::IngestArgs::for_bench(root.join("docs"), "brand");
    crate::knowledge::ingest(&config, &ingest)?;
    let store = crate::cli::open_store(&config)?;
    let tenant = store
        .tenant_by_name("default")?
        .context("the ingest made tenant default")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = rt.block_on(async {
        let state = regelkreis_server::AppState::new(store.clone(), config.server_config()?)?;
        let principal = crate::cli::answering_principal(tenant.id.clone());
        // Warm the guard and the encoder, as a running server has them warm.
        let _ = run_cases(&state, &principal, "brand", "cheap", &base[..1], 1, false).await?;
        let o = run_cases(
            &state,
            &principal,
            "brand",
            "cheap",
            &cases,
            args.concurrency,
            true,
        )
        .await;
        state.flush().await;
        o
    })?;
    println!(
        "\neval bench: {} cases in {:.1} s = {:.0} cases/s on this machine (goal: 500 cases in ≤ 60 s); latency p50 {:.1} ms, p95 {:.1} ms; success rate {:.3}",
        outcome.report.cases,
        outcome.seconds,
        outcome.report.cases as f64 / outcome.seconds.max(1e-9),
        outcome.report.get("latency_p50_ms").unwrap_or(0.0),
        outcome.report.get("latency_p95_ms").unwrap_or(0.0),
        outcome.report.get("success_rate").unwrap_or(0.0),
    );
    Ok(())
}
