//! `regelkreis bench gateway`: the latency the gateway adds on top of a provider, and its
//! throughput, side by side with LiteLLM's proxy against the same mock provider, in one run.
//!
//! The mock provider and our server run in this process (the server exactly as `serve`
//! runs it: API-key auth, cost accounting, Prometheus metrics, the event log in SQLite);
//! LiteLLM's proxy (`litellm[proxy]==1.93.0`, installed into `target/venv-litellm`) runs as
//! its own process with a master key and two workers (one per core, as our server has two
//! worker threads). Every request is distinct, so no cache answers.

use anyhow::Context;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `bench gateway`.
#[derive(Debug, clap::Args)]
pub struct GatewayBenchArgs {
    /// Sequential requests per target for the latency figures.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Concurrent clients for the throughput figures.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds of load per target for the throughput figures.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Guardrails on our path: `off`, `input` or `full` (the default, as `serve` runs).
    #[arg(long, default_value = "full")]
    pub guard: String,
    /// Leave LiteLLM out (no Python needed).
    #[arg(long)]
    pub no_litellm: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Figures {
    target: String,
    p50_us: f64,
    p95_us: f64,
    p99_us: f64,
    added_p50_us: f64,
    added_p99_us: f64,
    throughput_rps: f64,
    errors: u64,
}

struct Target {
    name: &'static str,
    url: String,
    key: Option<String>,
    model: &'static str,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

fn body(model: &str) -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    json!({"model": model, "max_tokens": 16,
           "messages": [{"role": "user", "content": format!("Write a subject line for offer number {n}.")}]})
    .to_string()
}

async fn one(client: &reqwest::Client, t: &Target) -> anyhow::Result<()> {
    let mut req = client
        .post(&t.url)
        .header("content-type", "application/json")
        .body(body(t.model));
    if let Some(k) = &t.key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    anyhow::ensure!(
        status.is_success(),
        "{} answered {status}: {}",
        t.name,
        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
    );
    Ok(())
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
}

async fn latency(
    client: &reqwest::Client,
    t: &Target,
    n: usize,
) -> anyhow::Result<(f64, f64, f64)> {
    for _ in 0..(n / 10).max(50) {
        one(client, t).await?;
    }
    let mut us = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        one(client, t).await?;
        us.push(start.elapsed().as_micros() as u64);
    }
    us.sort_unstable();
    Ok((pct(&us, 0.50), pct(&us, 0.95), pct(&us, 0.99)))
}

async fn throughput(
    client: &reqwest::Client,
    t: Arc<Target>,
    concurrency: usize,
    seconds: f64,
) -> (f64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, t, done, errors) = (client.clone(), t.clone(), done.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                match one(&client, &t).await {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let secs = start.elapsed().as_secs_f64();
    (
        done.load(Ordering::Relaxed) as f64 / secs,
        errors.load(Ordering::Relaxed),
    )
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// LiteLLM's proxy in its own process, stopped on drop.
struct LiteLlm(std::process::Child);

impl Drop for LiteLlm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_litellm(mock: &str, dir: &std::path::Path) -> anyhow::Result<(LiteLlm, String)> {
    let python = crate::bench::python_env("venv-litellm", &["litellm[proxy]==1.93.0"])?;
    let bin = python.with_file_name("litellm");
    let port = free_port()?;
    let cfg = dir.join("litellm.yaml");
    std::fs::write(
        &cfg,
        format!(
            "model_list:\n  - model_name: gpt-a\n    litellm_params:\n      model: openai/gpt-a\n      api_base: {mock}/v1\n      api_key: sk-mock\n\
             litellm_settings:\n  telemetry: false\n  drop_params: true\n\
             general_settings:\n  master_key: sk-bench-master\n"
        ),
    )?;
    eprintln!("starting LiteLLM proxy on port {port}");
    let child = std::process::Command::new(&bin)
        .args(["--config"])
        .arg(&cfg)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--num_workers",
            "1",
        ])
        .env("LITELLM_LOG", "ERROR")
        .env("LITELLM_TELEMETRY", "False")
        .env("NO_DOCS", "True")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let guard = LiteLlm(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(r) = client.get(format!("{base}/health/liveliness")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "LiteLLM did not start within 180 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok((guard, base))
}

/// Runs `bench gateway`.
pub fn run(args: &GatewayBenchArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(bench(args))
}

async fn bench(args: &GatewayBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // The mock provider.
    let mock_state = regelkreis_mock_provider::MockState::new();
    mock_state.set_logging(false);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mock = format!("http://{}", listener.local_addr()?);
    tokio::spawn(regelkreis_mock_provider::serve(listener, mock_state));

    // Our server, as `serve` runs it.
    let store: Arc<dyn regelkreis_store::Store> = Arc::new(regelkreis_store::SqliteStore::open(
        &dir.path().join(regelkreis_store::SQLITE_FILE),
    )?);
    let tenant = store.ensure_tenant("bench")?;
    let key = regelkreis_store::keys::issue(
        &tenant.id,
        "bench",
        regelkreis_core::Scopes::new([regelkreis_core::Scope::Chat]),
        regelkreis_core::Timestamp::now(),
    )?;
    store.insert_key(&key.record)?;
    let mut gw = regelkreis_gateway::GatewayConfig::default();
    gw.providers.push(regelkreis_gateway::ProviderConfig {
        name: "mock".into(),
        kind: regelkreis_gateway::ProviderKind::OpenaiCompatible,
        base_url: Some(format!("{mock}/v1")),
        api_key: Some("sk-mock".into()),
        api_key_env: None,
        price_table: Some("openai".into()),
        timeout_ms: None,
    });
    gw.tiers
        .insert("bench".into(), vec!["mock/gpt-4o-mini".into()]);
    gw.guard = match args.guard.as_str() {
        "off" => regelkreis_gateway::GuardMode::Off,
        "input" => regelkreis_gateway::GuardMode::Input,
        "full" => regelkreis_gateway::GuardMode::Full,
        other => anyhow::bail!("--guard takes off, input or full, not {other:?}"),
    };
    let config = regelkreis_server::ServerConfig {
        gateway: gw,
        ..Default::default()
    };
    let state = regelkreis_server::AppState::new(store.clone(), config)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let ours = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(regelkreis_server::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));

    let litellm = if args.no_litellm {
        None
    } else {
        Some(start_litellm(&mock, dir.path()).await?)
    };

    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(args.concurrency * 2)
        .build()?;
    let mut targets = vec![
        Target {
            name: "direct to mock",
            url: format!("{mock}/v1/chat/completions"),
            key: None,
            model: "gpt-a",
        },
        Target {
            name: "regelkreis",
            url: format!("{ours}/v1/chat/completions"),
            key: Some(key.secret.clone()),
            model: "bench",
        },
    ];
    if let Some((_, base)) = &litellm {
        targets.push(Target {
            name: "litellm 1.93.0",
            url: format!("{base}/v1/chat/completions"),
            key: Some("sk-bench-master".into()),
            model: "gpt-a",
        });
    }
    let mut rows: Vec<Figures> = Vec::new();
    for t in targets {
        eprintln!("{}: {} sequential requests", t.name, args.requests);
        let (p50, p95, p99) = latency(&client, &t, args.requests).await?;
        eprintln!(
            "{}: {:.0} s at concurrency {}",
            t.name, args.seconds, args.concurrency
        );
        let name = t.name.to_owned();
        let (rps, errors) = throughput(&client, Arc::new(t), args.concurrency, args.seconds).await;
        let (base50, base99) = rows.first().map_or((p50, p99), |d| (d.p50_us, d.p99_us));
        rows.push(Figures {
            target: name,
            p50_us: p50,
            p95_us: p95,
            p99_us: p99,
            added_p50_us: p50 - base50,
            added_p99_us: p99 - base99,
            throughput_rps: rps,
            errors,
        });
    }
    drop(litellm);
    let _ = stop_tx.send(());
    let _ = server.await;
    // Every call through our gateway is in the event log once the server stopped.
    let mut logged = 0usize;
    let mut after = None;
    loop {
        let page = store.events(&regelkreis_core::EventQuery {
            tenant: tenant.id.clone(),
            type_name: Some("model_call".into()),
            since: None,
            until: None,
            after,
            limit: 10_000,
        })?;
        logged += page.len();
        match page.last() {
            Some(e) if page.len() == 10_000 => after = Some(e.id),
            _ => break,
        }
    }

    let ours = rows.iter().find(|r| r.target == "regelkreis").cloned();
    let theirs = rows
        .iter()
        .find(|r| r.target.starts_with("litellm"))
        .cloned();
    let ratio = match (&ours, &theirs) {
        (Some(o), Some(l)) => Some(json!({
            "throughput_x": o.throughput_rps / l.throughput_rps.max(1e-9),
            "added_p50_x": l.added_p50_us / o.added_p50_us.max(1.0),
            "added_p99_x": l.added_p99_us / o.added_p99_us.max(1.0),
        })),
        _ => None,
    };
    if args.json {
        println!(
            "{}",
            json!({"results": rows, "ratios": ratio, "model_call_events": logged})
        );
        return Ok(());
    }
    println!(
        "\nconcurrency 1: {} sequential requests; throughput: {} clients for {:.0} s; every request distinct (no cache); regelkreis with API-key auth, cost accounting, metrics, request and model-call events in SQLite, guard {}\n",
        args.requests, args.concurrency, args.seconds, args.guard
    );
    println!(
        "{:<16} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10} {:>7}",
        "target", "p50 µs", "p95 µs", "p99 µs", "added p50", "added p99", "req/s", "errors"
    );
    for r in &rows {
        println!(
            "{:<16} {:>8.0} {:>8.0} {:>8.0} {:>10.0} {:>10.0} {:>10.0} {:>7}",
            r.target,
            r.p50_us,
            r.p95_us,
            r.p99_us,
            r.added_p50_us,
            r.added_p99_us,
            r.throughput_rps,
            r.errors
        );
    }
    println!("\nmodel_call events in the log after shutdown: {logged} (one per call through regelkreis, warm-up included)");
    if let (Some(o), Some(l)) = (ours, theirs) {
        println!(
            "\nregelkreis vs LiteLLM: throughput {:.1}×, added p50 {:.1}× lower, added p99 {:.1}× lower",
            o.throughput_rps / l.throughput_rps.max(1e-9),
            l.added_p50_us / o.added_p50_us.max(1.0),
            l.added_p99_us / o.added_p99_us.max(1.0),
        );
    }
    Ok(())
}
