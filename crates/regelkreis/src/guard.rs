//! `regelkreis guard scan|redact|train`: the guard from the shell. `scan` and
//! `redact` read JSON lines `{"text": …}` on stdin and write one JSON line per
//! input, in order; a malformed line gets an error line and the rest go on.

use anyhow::Context;
use clap::{Args, Subcommand};
use regelkreis_guard::injection::{self, Model, TrainConfig};
use regelkreis_guard::{Guard, Policy, Source};
use serde_json::{json, Value};
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// `guard …`
#[derive(Debug, Subcommand)]
pub enum GuardCommand {
    /// PII, injection and brand verdict per input line.
    Scan(GuardArgs),
    /// Redacted text per input line.
    Redact(GuardArgs),
    /// Train the prompt-injection classifier; prints held-out figures.
    Train(TrainArgs),
}

/// Options shared by `scan` and `redact`.
#[derive(Debug, Args)]
pub struct GuardArgs {
    /// Policy file (TOML); the built-in default policy without it.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Injection model written by `guard train`; the shipped model without it.
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Key for pseudonyms (policy mode `pseudonym`).
    #[arg(long, default_value = "")]
    pub key: String,
}

/// `guard train` options.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Labelled JSON lines (`text`, `label`, `split`); the shipped data without it.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Where to write the model.
    #[arg(long, value_name = "FILE", default_value = "injection.model")]
    pub out: PathBuf,
    /// Passes over the training split.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    pub epochs: usize,
    /// Shuffle seed.
    #[arg(long, default_value_t = TrainConfig::default().seed)]
    pub seed: u64,
}

/// Builds the guard the arguments describe.
pub fn load_guard(
    policy: Option<&std::path::Path>,
    model: Option<&std::path::Path>,
) -> anyhow::Result<Guard> {
    let policy = match policy {
        Some(p) => Policy::from_toml(
            &std::fs::read_to_string(p)
                .with_context(|| format!("reading policy {}", p.display()))?,
        )?,
        None => Policy::builtin()?,
    };
    Ok(match model {
        Some(m) => Guard::with_model(
            policy,
            Model::from_bytes(
                &std::fs::read(m).with_context(|| format!("reading model {}", m.display()))?,
            )?,
        )?,
        None => Guard::new(policy)?,
    })
}

/// Runs a `guard` subcommand on stdin/stdout.
pub fn run(cmd: &GuardCommand) -> anyhow::Result<()> {
    match cmd {
        GuardCommand::Scan(a) => {
            let g = load_guard(a.policy.as_deref(), a.model.as_deref())?;
            lines(
                std::io::stdin().lock(),
                std::io::stdout().lock(),
                |text, source| scan_line(&g, text, source),
            )
        }
        GuardCommand::Redact(a) => {
            let g = load_guard(a.policy.as_deref(), a.model.as_deref())?;
            let key = a.key.clone();
            lines(
                std::io::stdin().lock(),
                std::io::stdout().lock(),
                move |text, _| {
                    let (r, pii) = g.redact(text, key.as_bytes());
                    json!({ "text": r.text, "pii": pii })
                },
            )
        }
        GuardCommand::Train(a) => train(a),
    }
}

/// One `scan` answer: exactly the documented shape.
pub fn scan_line(g: &Guard, text: &str, source: Source) -> Value {
    let v = g.check(text, source);
    json!({ "pii": v.pii, "injection": v.injection, "violations": v.violations })
}

/// Reads `{"text": …, "source"?: …}` lines and writes one answer per line.
pub fn lines(
    input: impl BufRead,
    output: impl Write,
    answer: impl Fn(&str, Source) -> Value,
) -> anyhow::Result<()> {
    crate::cli::answer_lines(input, output, |line| {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => match (v.get("text").and_then(Value::as_str), source_of(&v)) {
                (Some(t), Ok(s)) => answer(t, s),
                (None, _) => json!({ "error": "each line needs a string field \"text\"" }),
                (_, Err(e)) => json!({ "error": e }),
            },
            Err(e) => json!({ "error": format!("invalid JSON: {e}") }),
        }
    })
}

fn source_of(v: &Value) -> Result<Source, String> {
    match v.get("source") {
        None | Some(Value::Null) => Ok(Source::User),
        Some(s) => serde_json::from_value(s.clone())
            .map_err(|_| "source must be user, retrieved or tool".to_string()),
    }
}

fn train(a: &TrainArgs) -> anyhow::Result<()> {
    let text = match &a.data {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => injection::SHIPPED_DATA.to_string(),
    };
    let examples = injection::parse_examples(&text)?;
    let cfg = TrainConfig {
        epochs: a.epochs,
        seed: a.seed,
        ..TrainConfig::default()
    };
    let started = std::time::Instant::now();
    let model = Model::train(&examples, cfg)?;
    let seconds = started.elapsed().as_secs_f64();
    let detector = injection::InjectionDetector::new(model.clone())?;
    let (train_n, test_n) = examples.iter().fold((0, 0), |(tr, te), e| {
        if e.split == "test" {
            (tr, te + 1)
        } else {
            (tr + 1, te)
        }
    });
    std::fs::write(&a.out, model.to_bytes())
        .with_context(|| format!("writing {}", a.out.display()))?;
    let held = injection_report(&detector, &examples);
    eprintln!(
        "trained on {train_n} examples in {seconds:.2} s; {test_n} held out; model written to {}",
        a.out.display()
    );
    println!("{}", serde_json::to_string_pretty(&held)?);
    Ok(())
}

/// Held-out figures: TPR at 1 % FPR (with its threshold), per language, and at the policy's 0.5.
pub fn injection_report(
    d: &injection::InjectionDetector,
    examples: &[injection::Example],
) -> Value {
    let test: Vec<&injection::Example> = examples.iter().filter(|e| e.split == "test").collect();
    let scores: Vec<(f32, &injection::Example)> = test
        .iter()
        .map(|e| (d.scan(&e.text, Source::User, 0.5).score, *e))
        .collect();
    let pos: Vec<f32> = scores
        .iter()
        .filter(|(_, e)| e.label == 1)
        .map(|(s, _)| *s)
        .collect();
    let neg: Vec<f32> = scores
        .iter()
        .filter(|(_, e)| e.label == 0)
        .map(|(s, _)| *s)
        .collect();
    let (tpr, threshold) = injection::tpr_at_fpr(&pos, &neg, 0.01);
    let fpr_at_half = neg.iter().filter(|&&s| s >= 0.5).count() as f64 / neg.len().max(1) as f64;
    let tpr_at_half = pos.iter().filter(|&&s| s >= 0.5).count() as f64 / pos.len().max(1) as f64;
    let mut langs: Vec<&str> = test.iter().map(|e| e.lang.as_str()).collect();
    langs.sort_unstable();
    langs.dedup();
    let per_lang: serde_json::Map<String, Value> = langs
        .iter()
        .map(|l| {
            let p: Vec<f32> = scores.iter().filter(|(_, e)| e.label == 1 && e.lang == *l).map(|(s, _)| *s).collect();
            let hit = p.iter().filter(|&&s| s >= threshold).count();
            (l.to_string(), json!({ "attacks": p.len(), "tpr_at_1pct_fpr": hit as f64 / p.len().max(1) as f64 }))
        })
        .collect();
    json!({
        "held_out": { "attacks": pos.len(), "benign": neg.len() },
        "tpr_at_1pct_fpr": tpr,
        "threshold_at_1pct_fpr": threshold,
        "at_policy_threshold_0_5": { "tpr": tpr_at_half, "fpr": fpr_at_half },
        "per_language": per_lang,
    })
}
