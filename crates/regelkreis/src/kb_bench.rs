//! `bench ingest` and `bench retrieval`: knowledge-base throughput end to end, and
//! retrieval quality on Debian's package descriptions (a known-item set built by
//! `scripts/retrieval_dataset.py`: query = summary, the one relevant document = the
//! long description).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use regelkreis_knowledge::fusion::{fuse, Fusion};
use regelkreis_knowledge::{
    DocMetadata, Filter, Format, KbConfig, Knowledge, KnowledgeBase, NewDocument, SearchMode,
    SearchRequest,
};
use serde::Deserialize;
use serde_json::json;

/// `bench retrieval` arguments.
#[derive(Debug, Args)]
pub struct RetrievalBenchArgs {
    /// Language of the set: en or de.
    #[arg(long, default_value = "en")]
    pub lang: String,
    /// Documents in the collection (at most what the set holds).
    #[arg(long, default_value_t = 10_000)]
    pub docs: usize,
    /// Embedding model (default: minilm for en, e5 for de).
    #[arg(long)]
    pub model: Option<String>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `bench ingest` arguments.
#[derive(Debug, Args)]
pub struct IngestBenchArgs {
    /// Documents to ingest (Debian package descriptions).
    #[arg(long, default_value_t = 2_000)]
    pub docs: usize,
    /// Embedding model.
    #[arg(long, default_value = "minilm")]
    pub model: String,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Deserialize)]
struct Row {
    id: String,
    text: String,
    query: String,
    split: String,
}

fn dataset(lang: &str) -> anyhow::Result<Vec<Row>> {
    let path = PathBuf::from(format!("target/retrieval/debian-{lang}.jsonl"));
    if !path.exists() {
        eprintln!("building the Debian retrieval sets (scripts/retrieval_dataset.py)…");
        let ok = std::process::Command::new("python3")
            .arg("scripts/retrieval_dataset.py")
            .status()
            .context("python3 is needed to build the retrieval set")?
            .success();
        if !ok {
            bail!("scripts/retrieval_dataset.py failed");
        }
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .map(|l| serde_json::from_str(l).context("bad line in the retrieval set"))
        .collect()
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let b = ProgressBar::new(len as u64);
    b.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{bar:40}}] {{pos}}/{{len}} {what} ({{elapsed}}, eta {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    b
}

/// Ingests `rows` in batches with a progress bar; returns the summed report.
fn ingest_all(
    kb: &KnowledgeBase,
    rows: &[Row],
    guard: Option<&regelkreis_guard::Guard>,
) -> anyhow::Result<regelkreis_knowledge::IngestReport> {
    let b = bar(rows.len(), "documents");
    let mut total = regelkreis_knowledge::IngestReport::default();
    for batch in rows.chunks(128) {
        let docs = batch
            .iter()
            .map(|r| NewDocument {
                id: r.id.clone(),
                title: None,
                body: r.text.clone().into_bytes(),
                format: Format::Text,
                metadata: DocMetadata::default(),
            })
            .collect();
        let r = kb.ingest(docs, guard, b"bench")?;
        total.absorb(r);
        b.inc(batch.len() as u64);
    }
    b.finish_and_clear();
    kb.save_vectors()?;
    Ok(total)
}

/// Runs `bench ingest`.
pub fn ingest(args: &IngestBenchArgs) -> anyhow::Result<()> {
    let rows: Vec<Row> = dataset("en")?.into_iter().take(args.docs).collect();
    let dir = tempfile::tempdir()?;
    let knowledge = Knowledge::open(dir.path(), regelkreis_knowledge::embed::models_dir())?;
    let config = KbConfig {
        model: args.model.clone(),
        ..KbConfig::default()
    };
    let kb = knowledge.get_or_create("bench", "ingest", Some(config))?;
    let guard = regelkreis_guard::Guard::builtin()?;
    let started = Instant::now();
    let r = ingest_all(&kb, &rows, Some(&guard))?;
    let secs = started.elapsed().as_secs_f64();
    let chunks: usize = r.documents.iter().map(|d| d.chunks).sum();
    let tokens_per_s = r.tokens_embedded as f64 / r.model_s.max(1e-9);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.json {
        println!(
            "{}",
            json!({
                "documents": rows.len(), "chunks": chunks, "seconds": secs,
                "documents_per_s": rows.len() as f64 / secs, "chunks_per_s": chunks as f64 / secs,
                "tokens_embedded": r.tokens_embedded, "embed_tokens_per_s": tokens_per_s,
                "embed_share": r.embed_s / secs, "prepare_s": r.prepare_s, "embed_s": r.embed_s, "index_s": r.index_s,
                "model": args.model, "threads": threads,
            })
        );
        return Ok(());
    }
    println!(
        "ingest: {} Debian descriptions, model {}, {threads} threads, PII redaction on",
        rows.len(),
        args.model
    );
    println!(
        "  {:<34} {:>12}",
        "documents/s",
        format!("{:.1}", rows.len() as f64 / secs)
    );
    println!(
        "  {:<34} {:>12}",
        "chunks/s",
        format!("{:.1}", chunks as f64 / secs)
    );
    println!("  {:<34} {:>12}", "total", format!("{secs:.1} s"));
    println!(
        "  {:<34} {:>12}",
        "  extract + redact + chunk",
        format!("{:.1} s ({:.0}%)", r.prepare_s, 100.0 * r.prepare_s / secs)
    );
    println!(
        "  {:<34} {:>12}",
        "  embedding",
        format!("{:.1} s ({:.0}%)", r.embed_s, 100.0 * r.embed_s / secs)
    );
    println!(
        "  {:<34} {:>12}",
        "  database + indexes",
        format!("{:.1} s ({:.0}%)", r.index_s, 100.0 * r.index_s / secs)
    );
    println!();
    println!("  embedding throughput              tokens/s   vs target 5,000   vs candle stock BERT (2,100, issue)");
    println!(
        "  {:<32} {:>10.0}   {:>14.2}×   {:>10.2}×",
        format!("regelkreis ({})", args.model),
        tokens_per_s,
        tokens_per_s / 5000.0,
        tokens_per_s / 2100.0
    );
    Ok(())
}

/// Rank (1-based) of `relevant` among the first ten distinct documents of `hits`.
fn rank_of(docs: &[String], relevant: &str) -> Option<usize> {
    let mut seen = HashSet::new();
    let mut rank = 0;
    for d in docs {
        if seen.insert(d.as_str()) {
            rank += 1;
            if rank > 10 {
                return None;
            }
            if d == relevant {
                return Some(rank);
            }
        }
    }
    None
}

#[derive(Default, Clone, Copy)]
struct Score {
    ndcg: f64,
    recall: f64,
    mrr: f64,
    n: usize,
}

impl Score {
    fn add(&mut self, rank: Option<usize>) {
        self.n += 1;
        if let Some(r) = rank {
            self.ndcg += 1.0 / ((r + 1) as f64).log2();
            self.recall += 1.0;
            self.mrr += 1.0 / r as f64;
        }
    }
    fn mean(self) -> (f64, f64, f64) {
        let n = self.n.max(1) as f64;
        (self.ndcg / n, self.recall / n, self.mrr / n)
    }
}

struct Lists {
    relevant: String,
    dev: bool,
    keyword: Vec<(u64, f32)>,
    vector: Vec<(u64, f32)>,
}

/// Runs `bench retrieval`.
pub fn retrieval(args: &RetrievalBenchArgs) -> anyhow::Result<()> {
    if !matches!(args.lang.as_str(), "en" | "de") {
        bail!("--lang must be en or de");
    }
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| if args.lang == "de" { "e5" } else { "minilm" }.to_owned());
    let rows: Vec<Row> = dataset(&args.lang)?.into_iter().take(args.docs).collect();
    // Kept between runs: the embedding cache and the base make a re-run quick.
    let dir = Path::new("target/bench-retrieval");
    let knowledge = Knowledge::open(dir, regelkreis_knowledge::embed::models_dir())?;
    let name = format!(
        "debian-{}-{}-{}",
        args.lang,
        model.replace(['/', '.'], "_"),
        rows.len()
    );
    let kb = knowledge.get_or_create(
        "bench",
        &name,
        Some(KbConfig {
            model: model.clone(),
            ..KbConfig::default()
        }),
    )?;
    let started = Instant::now();
    let report = ingest_all(&kb, &rows, None)?;
    eprintln!(
        "{} documents, {} chunks ready in {:.1} s ({} embedded)",
        rows.len(),
        kb.chunk_count(),
        started.elapsed().as_secs_f64(),
        report.chunks_embedded
    );
    // The document of every chunk, to score chunk rankings per document.
    let queries: Vec<&Row> = rows.iter().filter(|r| !r.split.is_empty()).collect();
    let b = bar(queries.len(), "queries");
    let mut lists = Vec::with_capacity(queries.len());
    let mut chunk_doc = std::collections::HashMap::new();
    for q in &queries {
        let mut get = |mode| -> anyhow::Result<Vec<(u64, f32)>> {
            let hits = kb.search(&SearchRequest {
                query: q.query.clone(),
                k: 50,
                mode,
                rerank: false,
                filter: Filter::default(),
                fusion: None,
            })?;
            Ok(hits
                .into_iter()
                .map(|h| {
                    chunk_doc.insert(h.chunk_id, h.document_id);
                    (h.chunk_id, h.score)
                })
                .collect())
        };
        let keyword = get(SearchMode::Bm25)?;
        let vector = get(SearchMode::Vector)?;
        lists.push(Lists {
            relevant: q.id.clone(),
            dev: q.split == "dev",
            keyword,
            vector,
        });
        b.inc(1);
    }
    b.finish_and_clear();
    let docs_of = |ranked: &[(u64, f32)]| -> Vec<String> {
        ranked
            .iter()
            .filter_map(|(c, _)| chunk_doc.get(c).cloned())
            .collect()
    };
    let evaluate = |f: &dyn Fn(&Lists) -> Vec<(u64, f32)>| -> (Score, Score) {
        let (mut dev, mut test) = (Score::default(), Score::default());
        for l in &lists {
            let rank = rank_of(&docs_of(&f(l)), &l.relevant);
            if l.dev {
                dev.add(rank)
            } else {
                test.add(rank)
            }
        }
        (dev, test)
    };
    let mut rows_out: Vec<(String, String, Score, Score)> = Vec::new();
    let (d, t) = evaluate(&|l| l.keyword.clone());
    rows_out.push(("bm25".into(), "tantivy, EN/DE stemming".into(), d, t));
    let (d, t) = evaluate(&|l| l.vector.clone());
    rows_out.push(("vector".into(), format!("{model}, HNSW ef 96"), d, t));
    // Fusion parameters chosen on the dev split only.
    let mut best: Vec<(Fusion, Score, Score)> = Vec::new();
    let mut rrf = (Fusion::default(), Score::default(), Score::default());
    for k in [5.0, 10.0, 20.0, 40.0, 60.0, 100.0] {
        for w in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8] {
            let f = Fusion::Rrf {
                k,
                vector_weight: w,
            };
            let (d, t) = evaluate(&|l| fuse(&l.keyword, &l.vector, f));
            if d.ndcg > rrf.1.ndcg {
                rrf = (f, d, t);
            }
        }
    }
    best.push(rrf);
    let mut weighted = (
        Fusion::Weighted { vector_weight: 0.5 },
        Score::default(),
        Score::default(),
    );
    for w in [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] {
        let f = Fusion::Weighted { vector_weight: w };
        let (d, t) = evaluate(&|l| fuse(&l.keyword, &l.vector, f));
        if d.ndcg > weighted.1.ndcg {
            weighted = (f, d, t);
        }
    }
    best.push(weighted);
    for (f, d, t) in &best {
        let (name, params) = match f {
            Fusion::Rrf { k, vector_weight } => (
                "hybrid rrf",
                format!("k {k}, vector weight {vector_weight}"),
            ),
            Fusion::Weighted { vector_weight } => {
                ("hybrid weighted", format!("vector weight {vector_weight}"))
            }
        };
        rows_out.push((name.into(), params, *d, *t));
    }
    // Hybrid (best fusion on dev) + MMR re-ranking, through the knowledge base's search.
    let chosen = if best[0].1.ndcg >= best[1].1.ndcg {
        best[0].0
    } else {
        best[1].0
    };
    let (mut dev, mut test) = (Score::default(), Score::default());
    let b = bar(queries.len(), "re-ranked queries");
    for q in &queries {
        let hits = kb.search(&SearchRequest {
            query: q.query.clone(),
            k: 10,
            mode: SearchMode::Hybrid,
            rerank: true,
            filter: Filter::default(),
            fusion: Some(chosen),
        })?;
        let docs: Vec<String> = hits.into_iter().map(|h| h.document_id).collect();
        let rank = rank_of(&docs, &q.id);
        if q.split == "dev" {
            dev.add(rank)
        } else {
            test.add(rank)
        }
        b.inc(1);
    }
    b.finish_and_clear();
    rows_out.push((
        "hybrid + mmr".into(),
        "best fusion, λ 0.7".into(),
        dev,
        test,
    ));

    if args.json {
        let results: Vec<_> = rows_out
            .iter()
            .map(|(m, p, d, t)| {
                let (dn, dr, _) = d.mean();
                let (tn, tr, tm) = t.mean();
                json!({"method": m, "params": p, "dev_ndcg_at_10": dn, "dev_recall_at_10": dr,
                       "ndcg_at_10": tn, "recall_at_10": tr, "mrr_at_10": tm})
            })
            .collect();
        println!(
            "{}",
            json!({"lang": args.lang, "model": model, "documents": rows.len(), "results": results})
        );
        return Ok(());
    }
    println!(
        "retrieval: Debian {} descriptions, {} documents, {} dev + {} test queries (known item: summary → description)",
        args.lang,
        rows.len(),
        lists.iter().filter(|l| l.dev).count(),
        lists.iter().filter(|l| !l.dev).count()
    );
    println!(
        "  {:<16} {:<28} {:>10} {:>10} {:>10} {:>10}",
        "method", "params (chosen on dev)", "dev nDCG", "nDCG@10", "recall@10", "MRR@10"
    );
    for (m, p, d, t) in &rows_out {
        let (dn, _, _) = d.mean();
        let (tn, tr, tm) = t.mean();
        println!("  {m:<16} {p:<28} {dn:>10.3} {tn:>10.3} {tr:>10.3} {tm:>10.3}");
    }
    Ok(())
}
