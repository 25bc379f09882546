//! `regelkreis mmm fit` and `regelkreis mmm optimize`: a Bayesian marketing mix model
//! from a CSV file, with a progress bar while sampling, tables (or one JSON object) after.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use regelkreis_measure::mmm::{fit, optimize_budget, ChannelSummary, MmmFit};
use regelkreis_server::measure_api::{
    allocation_json, fit_json, parse_bounds, LiftTestArgs, MmmArgs, Table,
};

/// `mmm …`
#[derive(Debug, Subcommand)]
pub enum MmmCommand {
    /// Fit the model and print contributions, ROAS and diagnostics.
    Fit(FitArgs),
    /// Fit the model, then split a budget over the channels.
    Optimize(OptimizeArgs),
}

/// The data and model of `mmm fit` and `mmm optimize`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// CSV file with a header row.
    #[arg(value_name = "DATA.csv")]
    pub file: PathBuf,
    /// Column of dates (YYYY-MM-DD).
    #[arg(long, default_value = "date")]
    pub date_column: String,
    /// Spend columns, one per channel, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub spend_columns: Vec<String>,
    /// Target column (revenue, sales).
    #[arg(long)]
    pub target: String,
    /// Control columns, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub controls: Vec<String>,
    /// Carry-over: geometric or weibull.
    #[arg(long, default_value = "geometric")]
    pub adstock: String,
    /// Diminishing returns: logistic or hill.
    #[arg(long, default_value = "logistic")]
    pub saturation: String,
    /// Longest carry-over, in rows.
    #[arg(long, default_value_t = 8)]
    pub l_max: usize,
    /// Order of the yearly seasonality (0: none).
    #[arg(long, default_value_t = 2)]
    pub yearly_order: usize,
    /// Chains.
    #[arg(long, default_value_t = 4)]
    pub chains: usize,
    /// Kept draws per chain.
    #[arg(long, default_value_t = 1000)]
    pub draws: u64,
    /// Warm-up draws per chain.
    #[arg(long, default_value_t = 1000)]
    pub tune: u64,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// CSV of lift tests: channel,spend,delta_spend,delta_target,sigma.
    #[arg(long)]
    pub lift_tests: Option<PathBuf>,
    /// One JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `mmm optimize` arguments.
#[derive(Debug, Args)]
pub struct OptimizeArgs {
    /// The data and the model, as for `mmm fit`.
    #[command(flatten)]
    pub fit: FitArgs,
    /// Budget to split, in the spend columns' unit, over all the weeks.
    #[arg(long)]
    pub budget: f64,
    /// Weeks (rows) the budget is spent over.
    #[arg(long)]
    pub weeks: usize,
    /// Per-channel bounds on the budget: a=lo:hi,b=lo:hi.
    #[arg(long)]
    pub bounds: Option<String>,
}

/// Runs an `mmm` command.
pub fn run(command: &MmmCommand) -> anyhow::Result<()> {
    match command {
        MmmCommand::Fit(args) => {
            let (fitted, channels) = fit_from(args)?;
            if args.json {
                println!("{}", fit_json(&fitted, &channels));
            } else {
                print_fit(&fitted, &channels);
            }
            Ok(())
        }
        MmmCommand::Optimize(args) => {
            let bounds = match &args.bounds {
                Some(text) => parse_bounds(text).map_err(anyhow::Error::msg)?,
                None => Vec::new(),
            };
            let (fitted, channels) = fit_from(&args.fit)?;
            let allocation = optimize_budget(&fitted, args.budget, args.weeks, &bounds)?;
            if args.fit.json {
                println!("{}", allocation_json(&allocation));
            } else {
                print_fit(&fitted, &channels);
                println!();
                println!(
                    "Budget {:.2} over {} weeks (media-driven target, 90 % interval):",
                    args.budget, args.weeks
                );
                let widest = allocation
                    .allocation
                    .iter()
                    .map(|(_, v)| *v)
                    .fold(0.0_f64, f64::max)
                    .max(f64::MIN_POSITIVE);
                for (name, amount) in &allocation.allocation {
                    println!(
                        "  {name:<16} {amount:>14.2}  {:5.1} %  {}",
                        100.0 * amount / args.budget,
                        "█".repeat((amount / widest * 30.0).round() as usize)
                    );
                }
                let e = allocation.expected;
                let h = allocation.expected_at_historical_split;
                println!(
                    "  expected            {:>14.2}  [{:.2}, {:.2}]",
                    e.mean, e.lo, e.hi
                );
                println!(
                    "  at historical split {:>14.2}  [{:.2}, {:.2}]  (+{:.1} % from the optimizer)",
                    h.mean,
                    h.lo,
                    h.hi,
                    100.0 * (e.mean / h.mean - 1.0)
                );
            }
            Ok(())
        }
    }
}

/// Reads a CSV file into a table of text columns.
pub fn read_table(path: &Path) -> anyhow::Result<Table> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}: no header row", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut columns: Vec<(String, Vec<String>)> =
        headers.into_iter().map(|h| (h, Vec::new())).collect();
    for (row, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", path.display(), row + 1))?;
        for (i, (_, values)) in columns.iter_mut().enumerate() {
            values.push(record.get(i).unwrap_or("").to_string());
        }
    }
    Ok(Table { columns })
}

fn read_lift_tests(path: &Path) -> anyhow::Result<Vec<LiftTestArgs>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(row, r)| {
            r.with_context(|| {
                format!(
                    "{} row {}: want channel,spend,delta_spend,delta_target,sigma",
                    path.display(),
                    row + 1
                )
            })
        })
        .collect()
}

fn fit_from(args: &FitArgs) -> anyhow::Result<(MmmFit, Vec<ChannelSummary>)> {
    let table = read_table(&args.file)?;
    let model = MmmArgs {
        date_column: args.date_column.clone(),
        spend_columns: args.spend_columns.clone(),
        target: args.target.clone(),
        controls: args.controls.clone(),
        adstock: args.adstock.clone(),
        saturation: args.saturation.clone(),
        l_max: args.l_max,
        yearly_order: args.yearly_order,
        chains: args.chains,
        tune: args.tune,
        draws: args.draws,
        seed: args.seed,
        lift_tests: match &args.lift_tests {
            Some(path) => read_lift_tests(path)?,
            None => Vec::new(),
        },
    };
    let data = model.data(&table).map_err(anyhow::Error::msg)?;
    let spec = model.spec().map_err(anyhow::Error::msg)?;
    let sampler = model.sampler().map_err(anyhow::Error::msg)?;
    let bar = ProgressBar::new(sampler.chains as u64 * (sampler.tune + sampler.draws));
    bar.set_style(
        ProgressStyle::with_template(
            "sampling {bar:40} {pos}/{len} draws, {per_sec} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let fitted = fit(&spec, &data, &model.lift_tests(), sampler, &|done, _| {
        bar.set_position(done)
    })?;
    bar.finish_and_clear();
    let channels = fitted.channel_summaries();
    Ok((fitted, channels))
}

fn print_fit(fitted: &MmmFit, channels: &[ChannelSummary]) {
    let d = fitted.diagnostics();
    println!(
        "Sampled in {:.2} s: R-hat max {:.4}, bulk ESS min {:.0}, {} divergences{}",
        d.seconds,
        d.rhat_max,
        d.ess_min,
        d.divergences,
        if d.rhat_max < 1.01 && d.divergences == 0 {
            ""
        } else {
            "  ⚠ do not trust this fit yet (more draws, tune or a narrower model)"
        }
    );
    println!();
    println!("Channels (posterior mean [90 % interval]):");
    let most = channels
        .iter()
        .map(|c| c.contribution.mean)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    println!(
        "  {:<14} {:>34}  {:>26}  {:>10}  ",
        "channel", "contribution", "ROAS", "mROAS"
    );
    for c in channels {
        println!(
            "  {:<14} {:>12.1} [{:>9.1}, {:>9.1}]  {:>8.3} [{:>6.3}, {:>6.3}]  {:>10.3}  {}",
            c.name,
            c.contribution.mean,
            c.contribution.lo,
            c.contribution.hi,
            c.roas.mean,
            c.roas.lo,
            c.roas.hi,
            c.marginal_roas.mean,
            "█".repeat((c.contribution.mean / most * 24.0).round().max(0.0) as usize)
        );
    }
    println!();
    println!("Parameters:");
    println!(
        "  {:<28} {:>11} {:>10} {:>11} {:>11} {:>7} {:>7}",
        "name", "mean", "sd", "5 %", "95 %", "R-hat", "ESS"
    );
    for p in fitted.parameters() {
        println!(
            "  {:<28} {:>11.5} {:>10.5} {:>11.5} {:>11.5} {:>7.4} {:>7.0}",
            p.name, p.interval.mean, p.sd, p.interval.lo, p.interval.hi, p.rhat, p.ess_bulk
        );
    }
    for c in channels {
        if let Some(curve) = fitted.response_curve(&c.name, &[0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0])
        {
            println!();
            println!(
                "Response curve of {} (spend × multiplier → contribution):",
                c.name
            );
            let top = curve
                .iter()
                .map(|p| p.contribution.hi)
                .fold(0.0_f64, f64::max)
                .max(f64::MIN_POSITIVE);
            for p in curve {
                println!(
                    "  ×{:<4} {:>12.1} → {:>12.1}  {}",
                    p.multiplier,
                    p.spend,
                    p.contribution.mean,
                    "█".repeat((p.contribution.mean / top * 40.0).round().max(0.0) as usize)
                );
            }
        }
    }
}
