//! `regelkreis ingest` and `regelkreis search`: knowledge bases from the shell, on the
//! same folders the server uses (`<data>/knowledge`). Do not run them against a base a
//! running server is writing to.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use regelkreis_knowledge::{
    DocMetadata, DocStatus, Filter, Format, KbConfig, Knowledge, NewDocument, SearchMode,
    SearchRequest,
};

use crate::config::Config;

/// `ingest` arguments.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files or folders (searched recursively for .md, .html, .txt, .pdf).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Knowledge base name; created when missing.
    #[arg(long)]
    pub kb: String,
    /// Tenant name.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Embedding model of a new knowledge base: auto, minilm, e5 or a model path.
    #[arg(long, default_value = "auto")]
    pub model: String,
    /// Vector engine of a new knowledge base: hnsw or flat.
    #[arg(long, default_value = "hnsw")]
    pub engine: String,
    /// Documents per batch (one commit each).
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Store text as given, without PII redaction.
    #[arg(long)]
    pub no_redact: bool,
}

impl IngestArgs {
    /// Defaults for a benchmark or the demo: one folder into one base of tenant `default`.
    pub fn for_bench(path: PathBuf, kb: &str) -> Self {
        IngestArgs {
            paths: vec![path],
            kb: kb.to_owned(),
            tenant: "default".into(),
            model: "auto".into(),
            engine: "hnsw".into(),
            batch: 32,
            no_redact: false,
        }
    }
}

/// `search` arguments.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The query.
    #[arg(required = true)]
    pub query: Vec<String>,
    /// Knowledge base name.
    #[arg(long)]
    pub kb: String,
    /// Tenant name.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Results.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// hybrid, vector or bm25.
    #[arg(long, default_value = "hybrid")]
    pub mode: String,
    /// Diversify with maximal marginal relevance.
    #[arg(long)]
    pub rerank: bool,
    /// Print `{"results": [...]}` as JSON.
    #[arg(long)]
    pub json: bool,
}

fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, String, Format)>> {
    let mut out = Vec::new();
    for root in paths {
        let meta =
            std::fs::metadata(root).with_context(|| format!("cannot read {}", root.display()))?;
        if meta.is_file() {
            let format = Format::from_path(root).with_context(|| {
                format!(
                    "{}: unknown format (use .md, .html, .txt or .pdf)",
                    root.display()
                )
            })?;
            out.push((root.clone(), root.display().to_string(), format));
            continue;
        }
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    stack.push(p);
                } else if let Some(format) = Format::from_path(&p) {
                    let id = p.strip_prefix(root).unwrap_or(&p).display().to_string();
                    out.push((p, id, format));
                }
            }
        }
    }
    Ok(out)
}

fn open(config: &Config) -> anyhow::Result<Knowledge> {
    Knowledge::open(&config.knowledge_dir(), config.models_dir())
        .context("cannot open the knowledge bases")
}

fn tenant_id(config: &Config, name: &str, create: bool) -> anyhow::Result<String> {
    let store = crate::cli::open_store(config)?;
    let tenant = if create {
        store.ensure_tenant(name)?
    } else {
        store
            .tenant_by_name(name)?
            .with_context(|| format!("tenant {name} does not exist"))?
    };
    Ok(tenant.id.to_string())
}

/// Runs `ingest`.
pub fn ingest(config: &Config, args: &IngestArgs) -> anyhow::Result<()> {
    let files = files(&args.paths)?;
    if files.is_empty() {
        bail!("no .md, .html, .txt or .pdf files under the given paths");
    }
    let tenant = tenant_id(config, &args.tenant, true)?;
    let knowledge = open(config)?;
    let kb = knowledge.get_or_create(
        &tenant,
        &args.kb,
        Some(KbConfig {
            model: args.model.clone(),
            engine: args.engine.clone(),
            ..KbConfig::default()
        }),
    )?;
    let guard = if args.no_redact {
        None
    } else {
        Some(match &config.guard.policy_file {
            Some(p) => regelkreis_guard::Guard::new(regelkreis_guard::Policy::from_toml(
                &std::fs::read_to_string(p)?,
            )?)?,
            None => regelkreis_guard::Guard::builtin()?,
        })
    };
    let key = regelkreis_guard::pseudonym_key(&tenant);
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{bar:40}] {pos}/{len} documents {msg} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let (mut created, mut updated, mut unchanged, mut chunks, mut tokens, mut pii) =
        (0, 0, 0, 0, 0, 0);
    let (mut embed_s, mut model_s, mut total_embedded, mut cached) = (0.0, 0.0, 0, 0);
    let mut failed = Vec::new();
    for batch in files.chunks(args.batch.max(1)) {
        let mut docs = Vec::with_capacity(batch.len());
        for (path, id, format) in batch {
            match std::fs::read(path) {
                Ok(body) => docs.push(NewDocument {
                    id: id.clone(),
                    title: None,
                    body,
                    format: *format,
                    metadata: DocMetadata {
                        source: Some(path.display().to_string()),
                        ..DocMetadata::default()
                    },
                }),
                Err(e) => failed.push(format!("{}: {e}", path.display())),
            }
        }
        let report = match kb.ingest(docs.clone(), guard.as_ref(), &key) {
            Ok(r) => r,
            Err(batch_error) => {
                // One bad file must not sink its batch: retry one by one to name it.
                let mut merged = regelkreis_knowledge::IngestReport::default();
                for d in docs {
                    let id = d.id.clone();
                    match kb.ingest(vec![d], guard.as_ref(), &key) {
                        Ok(r) => merged.absorb(r),
                        Err(e) => failed.push(format!("{id}: {e}")),
                    }
                }
                tracing::debug!(error = %batch_error, "batch failed; ingested one by one");
                merged
            }
        };
        for d in &report.documents {
            match d.status {
                DocStatus::Created => created += 1,
                DocStatus::Updated => updated += 1,
                DocStatus::Unchanged => unchanged += 1,
            }
            chunks += d.chunks;
            pii += d.pii_redacted;
        }
        tokens += report.tokens_embedded;
        embed_s += report.embed_s;
        model_s += report.model_s;
        total_embedded += report.chunks_embedded;
        cached += report.chunks_cached;
        bar.inc(batch.len() as u64);
        bar.set_message(format!(
            "· {chunks} chunks · {:.0} tokens/s",
            tokens as f64 / model_s.max(1e-9)
        ));
    }
    kb.save_vectors()?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "knowledge base {} (tenant {}, model {})",
        args.kb,
        args.tenant,
        kb.model().unwrap_or_default()
    );
    println!(
        "  documents   {created} created, {updated} updated, {unchanged} unchanged, {} failed",
        failed.len()
    );
    println!("  chunks      {chunks} ({total_embedded} embedded, {cached} from the cache)");
    println!("  PII         {pii} values redacted before embedding");
    println!(
        "  time        {secs:.1} s: {:.1} documents/s, {:.1} chunks/s; embedding {:.0}% at {:.0} tokens/s",
        files.len() as f64 / secs,
        chunks as f64 / secs,
        100.0 * embed_s / secs,
        tokens as f64 / model_s.max(1e-9)
    );
    for f in &failed {
        eprintln!("  failed: {f}");
    }
    if !failed.is_empty() {
        bail!("{} of {} documents failed", failed.len(), files.len());
    }
    Ok(())
}

/// Runs `search`.
pub fn search(config: &Config, args: &SearchArgs) -> anyhow::Result<()> {
    let mode: SearchMode = serde_json::from_value(serde_json::Value::String(args.mode.clone()))
        .map_err(|_| anyhow::anyhow!("--mode must be hybrid, vector or bm25"))?;
    let tenant = tenant_id(config, &args.tenant, false)?;
    let knowledge = open(config)?;
    let kb = knowledge.get(&tenant, &args.kb)?;
    let hits = kb.search(&SearchRequest {
        query: args.query.join(" "),
        k: args.k,
        mode,
        rerank: args.rerank,
        filter: Filter::default(),
        fusion: None,
    })?;
    if args.json {
        println!("{}", serde_json::json!({ "results": hits }));
        return Ok(());
    }
    if hits.is_empty() {
        println!("no results");
    }
    println!("{:>3}  {:>7}  {:<32}  text", "#", "score", "document");
    for (i, h) in hits.iter().enumerate() {
        let text: String = h.text.split_whitespace().collect::<Vec<_>>().join(" ");
        let short: String = text.chars().take(90).collect();
        let ell = if text.chars().count() > 90 { "…" } else { "" };
        println!(
            "{:>3}  {:>7.4}  {:<32}  {short}{ell}",
            i + 1,
            h.score,
            truncate(&h.document_id, 32)
        );
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// `regelkreis ask`.
#[derive(Debug, clap::Args)]
pub struct AskArgs {
    /// The question.
    #[arg(required = true)]
    pub question: Vec<String>,
    /// Knowledge base name.
    #[arg(long)]
    pub kb: String,
    /// Tenant name.
    #[arg(long, default_value = "default")]
    pub tenant: String,
    /// Model, alias or tier (routed by the gateway configuration).
    #[arg(long, default_value = "cheap")]
    pub model: String,
    /// Chunks retrieved as sources.
    #[arg(long, default_value_t = 6)]
    pub k: usize,
    /// Also answer from documents marked `superseded_by` (outdated pages).
    #[arg(long)]
    pub include_superseded: bool,
    /// Print the whole answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ask`: the same answer path as `POST /api/kb/{kb}/answer`, in process.
pub fn ask(config: &Config, args: &AskArgs) -> anyhow::Result<()> {
    let tenant = tenant_id(config, &args.tenant, false)?;
    let store = crate::cli::open_store(config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let answer = rt.block_on(async {
        let state = regelkreis_server::AppState::new(store, config.server_config()?)?;
        let principal = crate::cli::answering_principal(regelkreis_core::TenantId::parse(&tenant)?);
        let req = regelkreis_server::answer::AnswerRequest {
            question: args.question.join(" "),
            k: args.k,
            model: args.model.clone(),
            filter: Default::default(),
            min_support: 0.8,
            include_superseded: args.include_superseded,
        };
        let a = regelkreis_server::answer::answer(&state, &principal, &args.kb, req)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"));
        state.flush().await;
        a
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&answer)?);
        return Ok(());
    }
    println!("{}\n", answer.answer);
    if let Some(r) = &answer.reason {
        println!("(abstained: {r})");
    }
    for c in &answer.citations {
        println!(
            "[{}] {} (chunk {}, characters {}–{}): \"{}\"",
            c.n,
            c.title.as_deref().unwrap_or(&c.document_id),
            c.chunk_id,
            c.start,
            c.end,
            c.quote
        );
    }
    println!(
        "\nconfidence {:.2} · model {} · cost {} · {:.0} ms{}",
        answer.confidence,
        answer.model,
        regelkreis_core::Money(answer.cost_micros),
        answer.latency_ms,
        if answer.flagged_sources.is_empty() {
            String::new()
        } else {
            format!(
                " · {} source(s) left out by the injection check",
                answer.flagged_sources.len()
            )
        }
    );
    Ok(())
}
