//! Argument parsing and one function per mode.

use crate::config::{Config, Overrides};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use regelkreis_core::{KeyId, Scope, Scopes, Timestamp};
use regelkreis_store::audit::verify_all;
use regelkreis_store::{keys, AuditEntry, Store};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// regelkreis: the self-hosted closed loop for applied AI in marketing.
#[derive(Debug, Parser)]
#[command(name = "regelkreis", version, about)]
pub struct Cli {
    /// Data directory (also `REGELKREIS_DATA`).
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The modes.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server until SIGTERM or Ctrl-C.
    Serve {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR")]
        addr: Option<SocketAddr>,
    },
    /// Show configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Show what regelkreis does, end to end, in a temporary data dir.
    Demo,
    /// Benchmarks that print figures side by side with their reference.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Statistics from the shell.
    #[command(subcommand)]
    Stats(StatsCommand),
    /// Guardrails from the shell: PII, prompt injection, brand rules.
    #[command(subcommand)]
    Guard(crate::guard::GuardCommand),
    /// Embedding models: fetch them, see where they are.
    #[command(subcommand)]
    Models(crate::models::ModelsCommand),
    /// Ingest files into a knowledge base (redacted, chunked, embedded, indexed).
    Ingest(crate::knowledge::IngestArgs),
    /// Search a knowledge base.
    Search(crate::knowledge::SearchArgs),
    /// Answer a question from a knowledge base, with citations, or abstain.
    Ask(crate::knowledge::AskArgs),
    /// Evals: run a dataset through the answer path, score it, gate on it.
    #[command(subcommand)]
    Eval(crate::eval::EvalCommand),
    /// Gateway costs of a tenant from the event log, per feature, campaign, key or model.
    Costs(crate::costs::CostsArgs),
    /// Marketing mix models: fit one from a CSV file, split a budget.
    #[command(subcommand)]
    Mmm(crate::mmm::MmmCommand),
}

/// `stats …`
#[derive(Debug, Subcommand)]
pub enum StatsCommand {
    /// A/B analyses: JSON lines in on stdin, one JSON line out per input, in order.
    Ab,
}

/// `config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML.
    Show,
}

/// `keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints it once, alone on its line on stdout.
    Create(CreateKey),
    /// List keys of every tenant.
    List,
    /// Revoke a key; takes effect at once, also in a running server.
    Revoke {
        /// The key id (`key_…`).
        id: String,
    },
}

/// `keys create` arguments.
#[derive(Debug, Args)]
pub struct CreateKey {
    /// Tenant name; created when missing.
    #[arg(long)]
    pub tenant: String,
    /// Scopes: admin, kb:read, kb:write, chat, stats, events:write.
    #[arg(long = "scope", num_args = 1.., required = true)]
    pub scopes: Vec<String>,
    /// A label for people.
    #[arg(long, default_value = "cli")]
    pub name: String,
}

/// `audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk every tenant's hash chain; exit non-zero naming the first bad record.
    Verify,
}

/// `bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Event appends per second for SQLite and PostgreSQL, and audit verification speed.
    Store(crate::bench::StoreBenchArgs),
    /// Bandit regret and decisions/s beside MABWiser; assignments/s.
    Stats(crate::bench::StatsBenchArgs),
    /// Vector search: recall@10 against QPS beside hnswlib and faiss-cpu.
    Ann(crate::bench::AnnBenchArgs),
    /// PII precision/recall beside Microsoft Presidio, MB/s, injection TPR at 1 % FPR.
    Guard(crate::guard_bench::GuardBenchArgs),
    /// Knowledge-base ingestion: documents/s, chunks/s, embedding share and tokens/s.
    Ingest(crate::kb_bench::IngestBenchArgs),
    /// Retrieval quality (nDCG@10, recall@10) of BM25, vector, hybrid and re-ranking on
    /// Debian's package descriptions.
    Retrieval(crate::kb_bench::RetrievalBenchArgs),
    /// LLM gateway: added latency and throughput beside LiteLLM's proxy, same mock.
    Gateway(crate::gateway_bench::GatewayBenchArgs),
    /// Evals: ≥ 500 cases of the shipped eval set through the answer path, timed.
    Eval(crate::eval::EvalBenchArgs),
    /// Marketing mix model: fit time beside PyMC-Marketing, simulation-based calibration.
    Mmm(crate::mmm_bench::MmmBenchArgs),
}

impl Cli {
    fn overrides(&self) -> Overrides {
        Overrides {
            data: self.data.clone(),
            addr: match &self.command {
                Command::Serve { addr } => *addr,
                _ => None,
            },
        }
    }

    /// Loads the configuration these arguments point at.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        Config::load(self.config.as_deref(), &self.overrides())
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Demo => return crate::demo::run(),
        Command::Bench(BenchCommand::Store(args)) => return crate::bench::store(args),
        Command::Bench(BenchCommand::Stats(args)) => return crate::bench::stats(args),
        Command::Bench(BenchCommand::Ann(args)) => return crate::bench::ann(args),
        Command::Bench(BenchCommand::Guard(args)) => return crate::guard_bench::run(args),
        Command::Bench(BenchCommand::Ingest(args)) => return crate::kb_bench::ingest(args),
        Command::Bench(BenchCommand::Retrieval(args)) => return crate::kb_bench::retrieval(args),
        Command::Bench(BenchCommand::Gateway(args)) => return crate::gateway_bench::run(args),
        Command::Bench(BenchCommand::Eval(args)) => return crate::eval::bench(args),
        Command::Bench(BenchCommand::Mmm(args)) => return crate::mmm_bench::run(args),
        Command::Guard(cmd) => return crate::guard::run(cmd),
        Command::Models(cmd) => return crate::models::run(cmd),
        Command::Mmm(cmd) => return crate::mmm::run(cmd),
        Command::Stats(StatsCommand::Ab) => {
            return crate::stats::run_ab(std::io::stdin().lock(), std::io::stdout().lock())
        }
        _ => {}
    }
    let config = cli.load_config()?;
    match cli.command {
        Command::Serve { .. } => serve(config),
        Command::Config(ConfigCommand::Show) => {
            print!("{}", config.to_toml()?);
            Ok(())
        }
        Command::Keys(KeysCommand::Create(args)) => {
            let store = open_store(&config)?;
            let secret = create_key(store.as_ref(), &args.tenant, &args.scopes, &args.name)?;
            eprintln!(
                "created a key for tenant {}; it is shown once:",
                args.tenant
            );
            println!("{secret}");
            Ok(())
        }
        Command::Keys(KeysCommand::List) => list_keys(open_store(&config)?.as_ref()),
        Command::Keys(KeysCommand::Revoke { id }) => revoke_key(open_store(&config)?.as_ref(), &id),
        Command::Audit(AuditCommand::Verify) => audit_verify(open_store(&config)?.as_ref()),
        Command::Ingest(args) => crate::knowledge::ingest(&config, &args),
        Command::Search(args) => crate::knowledge::search(&config, &args),
        Command::Ask(args) => crate::knowledge::ask(&config, &args),
        Command::Eval(crate::eval::EvalCommand::Run(args)) => crate::eval::run(&config, &args),
        Command::Eval(crate::eval::EvalCommand::Calibrate(args)) => {
            crate::eval::calibrate(&config, &args)
        }
        Command::Costs(args) => crate::costs::run(&config, &args),
        Command::Demo
        | Command::Bench(_)
        | Command::Stats(_)
        | Command::Guard(_)
        | Command::Mmm(_)
        | Command::Models(_) => Ok(()),
    }
}

/// The CLI acting for a tenant in process, as a key with `chat` and `kb:read` would
/// (`ask`, `eval run`, `bench eval`, the demo's eval).
pub fn answering_principal(tenant: regelkreis_core::TenantId) -> regelkreis_server::Principal {
    regelkreis_server::Principal {
        tenant,
        key_id: regelkreis_core::KeyId::from_random([0; 8]),
        scopes: regelkreis_core::Scopes::new([
            regelkreis_core::Scope::Chat,
            regelkreis_core::Scope::KbRead,
        ]),
    }
}

/// Opens the configured store.
pub fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let spec = config.store_spec()?;
    regelkreis_store::open(&spec, &config.data).with_context(|| match spec {
        regelkreis_store::StoreSpec::Sqlite => {
            format!("cannot open the SQLite store in {}", config.data.display())
        }
        regelkreis_store::StoreSpec::Postgres(_) => "cannot open the PostgreSQL store".to_owned(),
    })
}

fn serve(config: Config) -> anyhow::Result<()> {
    crate::logging::init(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = open_store(&config)?;
        let state = regelkreis_server::AppState::new(store, config.server_config()?)?;
        let replayed = {
            let state = state.clone();
            tokio::task::spawn_blocking(move || state.replay_costs()).await??
        };
        tracing::info!(calls = replayed, "gateway costs and budgets restored from the event log");
        // The guard trains its injection classifier on first use: do it before the first
        // request instead of during it.
        state.guard().await?;
        let listener = tokio::net::TcpListener::bind(config.server.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.addr))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, store = config.store_spec()?.engine_name(), data = %config.data.display(), "regelkreis listening");
        regelkreis_server::serve(listener, state, shutdown_signal()).await?;
        tracing::info!("regelkreis stopped");
        Ok(())
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Creates a tenant (when missing) and a key for it; returns the key text.
pub fn create_key(
    store: &dyn Store,
    tenant: &str,
    scopes: &[String],
    name: &str,
) -> anyhow::Result<String> {
    let scopes = scopes
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()?;
    if scopes.is_empty() {
        bail!("give at least one --scope");
    }
    let tenant = store.ensure_tenant(tenant)?;
    let issued = keys::issue(&tenant.id, name, Scopes::new(scopes), Timestamp::now())?;
    store.insert_key(&issued.record)?;
    store.append_audit(&AuditEntry {
        tenant: tenant.id.clone(),
        at: issued.record.created_at,
        actor: "cli".into(),
        action: "key.create".into(),
        subject: issued.record.id.to_string(),
        details: serde_json::json!({ "name": name, "scopes": issued.record.scopes.to_string() })
            .to_string(),
    })?;
    Ok(issued.secret)
}

fn list_keys(store: &dyn Store) -> anyhow::Result<()> {
    let tenants: std::collections::HashMap<_, _> = store
        .tenants()?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let keys = store.keys(None)?;
    let rows: Vec<[String; 6]> = keys
        .iter()
        .map(|k| {
            [
                k.id.to_string(),
                tenants.get(&k.tenant).cloned().unwrap_or_default(),
                k.name.clone(),
                k.scopes.to_string(),
                k.created_at.to_string(),
                k.revoked_at
                    .map_or_else(|| "active".to_owned(), |t| format!("revoked {t}")),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &["ID", "TENANT", "NAME", "SCOPES", "CREATED", "STATUS"],
            &rows
        )
    );
    Ok(())
}

fn revoke_key(store: &dyn Store, id: &str) -> anyhow::Result<()> {
    let key_id = KeyId::parse(id)?;
    let Some(key) = store.key(&key_id)? else {
        bail!("no key {id}");
    };
    let now = Timestamp::now();
    if !store.revoke_key(&key_id, None, now)? {
        bail!("key {id} was already revoked");
    }
    store.append_audit(&AuditEntry {
        tenant: key.tenant,
        at: now,
        actor: "cli".into(),
        action: "key.revoke".into(),
        subject: key_id.to_string(),
        details: "{}".into(),
    })?;
    eprintln!("revoked key {id}");
    Ok(())
}

fn audit_verify(store: &dyn Store) -> anyhow::Result<()> {
    let tenants = store.tenants()?.len();
    match verify_all(store)? {
        Ok(report) => {
            println!(
                "audit trail intact: {} records in {} tenant chains",
                report.records, tenants
            );
            Ok(())
        }
        Err(b) => bail!("audit trail broken: first bad record: {b}"),
    }
}

/// The shell contract of `stats ab` and `guard scan|redact`: one JSON answer line
/// per non-empty input line, in order, flushed at the end.
pub fn answer_lines(
    input: impl std::io::BufRead,
    mut output: impl std::io::Write,
    mut answer: impl FnMut(&str) -> serde_json::Value,
) -> anyhow::Result<()> {
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        serde_json::to_writer(&mut output, &answer(&line))?;
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(())
}

/// A plain text table with aligned columns.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    out.push_str(&line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    ));
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}
