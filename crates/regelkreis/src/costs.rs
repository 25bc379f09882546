//! `regelkreis costs`: the gateway's cost roll-ups of one tenant, from the event log, as a
//! table with a bar per row (or JSON).

use crate::config::Config;
use anyhow::Context;
use regelkreis_core::Money;

/// Arguments of `costs`.
#[derive(Debug, clap::Args)]
pub struct CostsArgs {
    /// The tenant (name).
    #[arg(long)]
    pub tenant: String,
    /// Rows: `feature`, `campaign`, `key` or `model`.
    #[arg(long, default_value = "feature")]
    pub by: String,
    /// Print the whole report as JSON instead.
    #[arg(long)]
    pub json: bool,
}

/// Runs `costs`.
pub fn run(config: &Config, args: &CostsArgs) -> anyhow::Result<()> {
    let store = crate::cli::open_store(config)?;
    let tenant = store
        .tenant_by_name(&args.tenant)?
        .with_context(|| format!("no tenant named {:?}", args.tenant))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let state = regelkreis_server::AppState::new(store, config.server_config()?)?;
        let state2 = state.clone();
        tokio::task::spawn_blocking(move || state2.replay_costs()).await??;
        let report = state.gateway.costs(tenant.id.as_str());
        state.flush().await;
        anyhow::Ok(report)
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let rows = match args.by.as_str() {
        "feature" => &report.by_feature,
        "campaign" => &report.by_campaign,
        "key" => &report.by_key,
        "model" => &report.by_model,
        other => anyhow::bail!("--by takes feature, campaign, key or model, not {other:?}"),
    };
    let mut rows: Vec<_> = rows.iter().collect();
    rows.sort_by(|a, b| b.1.cost_micros.cmp(&a.1.cost_micros).then(a.0.cmp(b.0)));
    let total = report.total.cost_micros.max(1);
    let width = rows
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0)
        .clamp(8, 40);
    println!(
        "{:<width$} {:>9} {:>8} {:>12} {:>12} {:>14}  share",
        args.by, "requests", "cached", "prompt tok", "output tok", "cost"
    );
    for (name, t) in rows {
        let name = if name.is_empty() {
            "(untagged)"
        } else {
            name.as_str()
        };
        let share = t.cost_micros as f64 / total as f64;
        let bar = "█".repeat((share * 30.0).round() as usize);
        println!(
            "{:<width$} {:>9} {:>8} {:>12} {:>12} {:>14}  {bar} {:.1} %",
            name,
            t.requests,
            t.cache_hits,
            t.prompt_tokens,
            t.completion_tokens,
            Money(t.cost_micros).to_string(),
            share * 100.0
        );
    }
    println!(
        "{:<width$} {:>9} {:>8} {:>12} {:>12} {:>14}",
        "total",
        report.total.requests,
        report.total.cache_hits,
        report.total.prompt_tokens,
        report.total.completion_tokens,
        Money(report.total.cost_micros).to_string()
    );
    for b in &report.budgets {
        println!(
            "budget {} {}: {} of {} spent",
            b.scope.as_str(),
            b.name,
            Money(b.spent_micros),
            Money(b.limit_micros)
        );
    }
    Ok(())
}
