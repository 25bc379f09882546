//! `regelkreis bench mmm`: the marketing mix model's fit time beside PyMC-Marketing's on
//! the same data and draws, the posterior means side by side, and simulation-based
//! calibration of the 90 % intervals on data simulated from the priors.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use regelkreis_measure::mcmc::SamplerOptions;
use regelkreis_measure::mmm::simulate::simulate;
use regelkreis_measure::mmm::{fit, MmmData, MmmFit, MmmSpec, Prior};
use regelkreis_measure::rng::Rng;
use regelkreis_server::measure_api::MmmArgs;

/// `bench mmm` arguments.
#[derive(Debug, Args)]
pub struct MmmBenchArgs {
    /// The example data (PyMC-Marketing's `mmm_example.csv`).
    #[arg(long, default_value = "../shared/data/mmm/mmm_example.csv")]
    pub data: PathBuf,
    /// Chains, for both.
    #[arg(long, default_value_t = 4)]
    pub chains: usize,
    /// Kept draws per chain, for both.
    #[arg(long, default_value_t = 1000)]
    pub draws: u64,
    /// Warm-up draws per chain, for both.
    #[arg(long, default_value_t = 1000)]
    pub tune: u64,
    /// Our fits to time (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Simulated data sets for the calibration check (0: skip).
    #[arg(long, default_value_t = 200)]
    pub sbc: usize,
    /// Skip PyMC-Marketing (no Python needed).
    #[arg(long)]
    pub no_reference: bool,
}

fn example(path: &std::path::Path) -> anyhow::Result<MmmData> {
    let table = crate::mmm::read_table(path)?;
    MmmArgs {
        date_column: "date_week".into(),
        spend_columns: vec!["x1".into(), "x2".into()],
        target: "y".into(),
        controls: vec!["event_1".into(), "event_2".into(), "t".into()],
        ..MmmArgs::default()
    }
    .data(&table)
    .map_err(anyhow::Error::msg)
}

/// Runs `bench mmm`.
pub fn run(args: &MmmBenchArgs) -> anyhow::Result<()> {
    let data = example(&args.data)?;
    let spec = MmmSpec::default();
    let options = SamplerOptions {
        chains: args.chains,
        tune: args.tune,
        draws: args.draws,
        ..SamplerOptions::default()
    };
    println!(
        "Marketing mix model on {} ({} weeks, channels x1 x2, controls event_1 event_2 t, \
         yearly order 2, geometric adstock l_max 8, logistic saturation, PyMC-Marketing's priors)",
        args.data.display(),
        data.target.len()
    );
    println!(
        "{} chains × {} draws after {} tuning steps, {} threads",
        options.chains, options.draws, options.tune, options.threads
    );
    let mut times = Vec::new();
    let mut last: Option<MmmFit> = None;
    for run in 0..args.runs.max(1) {
        let started = Instant::now();
        let fitted = fit(
            &spec,
            &data,
            &[],
            SamplerOptions {
                seed: 1000 + run as u64,
                ..options
            },
            &|_, _| {},
        )?;
        let _ = fitted.channel_summaries();
        times.push(started.elapsed().as_secs_f64());
        let d = fitted.diagnostics();
        eprintln!(
            "  run {}: {:.3} s, R-hat max {:.4}, ESS min {:.0}, {} divergences",
            run + 1,
            times[run],
            d.rhat_max,
            d.ess_min,
            d.divergences
        );
        last = Some(fitted);
    }
    times.sort_by(f64::total_cmp);
    let ours = times[times.len() / 2];
    let fitted = last.context("no fit")?;
    let reference = if args.no_reference {
        None
    } else {
        let python = crate::bench::python_env("venv-mmm", &["pymc-marketing==0.19.2"])?;
        eprintln!("running PyMC-Marketing 0.19.2 on the same data, model and draws (2 cores)");
        let out = std::process::Command::new(python)
            .arg("scripts/mmm_reference.py")
            .arg(&args.data)
            .args(["--chains", &args.chains.to_string()])
            .args(["--draws", &args.draws.to_string()])
            .args(["--tune", &args.tune.to_string()])
            .args(["--cores", "2"])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "PyMC-Marketing run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(serde_json::from_slice::<serde_json::Value>(&out.stdout)?)
    };
    let d = fitted.diagnostics();
    println!();
    println!(
        "{:<34} {:>12} {:>10} {:>10} {:>12}",
        "", "fit seconds", "R-hat max", "ESS min", "divergences"
    );
    println!(
        "{:<34} {:>12.3} {:>10.4} {:>10.0} {:>12}",
        "regelkreis (median of runs)", ours, d.rhat_max, d.ess_min, d.divergences
    );
    if let Some(r) = &reference {
        let theirs = r["seconds"].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<34} {:>12.3} {:>10.4} {:>10.0} {:>12}",
            "PyMC-Marketing 0.19.2 (pm.sample)",
            theirs,
            r["rhat_max"].as_f64().unwrap_or(f64::NAN),
            r["ess_min"].as_f64().unwrap_or(f64::NAN),
            r["divergences"]
        );
        println!(
            "speed-up {:.0}× (goal ≥ 50×); ESS min ≥ 1,000: {}",
            theirs / ours,
            if d.ess_min >= 1000.0 { "yes" } else { "no" }
        );
        println!();
        println!(
            "{:<26} {:>12} {:>12} {:>12} {:>8}",
            "posterior mean", "regelkreis", "PyMC-Mktg", "their sd", "gap/sd"
        );
        let ours = fitted.parameters();
        for (group, members) in [
            ("intercept", vec!["intercept"]),
            (
                "adstock_alpha",
                vec!["adstock_alpha[x1]", "adstock_alpha[x2]"],
            ),
            (
                "saturation_lam",
                vec!["saturation_lam[x1]", "saturation_lam[x2]"],
            ),
            (
                "saturation_beta",
                vec!["saturation_beta[x1]", "saturation_beta[x2]"],
            ),
            (
                "gamma_control",
                vec![
                    "gamma_control[event_1]",
                    "gamma_control[event_2]",
                    "gamma_control[t]",
                ],
            ),
            ("y_sigma", vec!["y_sigma"]),
        ] {
            for (i, name) in members.iter().enumerate() {
                let mean = r["params"][group]["mean"][i].as_f64().unwrap_or(f64::NAN);
                let sd = r["params"][group]["sd"][i].as_f64().unwrap_or(f64::NAN);
                if let Some(p) = ours.iter().find(|p| p.name == *name) {
                    println!(
                        "{:<26} {:>12.5} {:>12.5} {:>12.5} {:>8.3}",
                        name,
                        p.interval.mean,
                        mean,
                        sd,
                        (p.interval.mean - mean).abs() / sd
                    );
                }
            }
        }
    }
    if args.sbc > 0 {
        sbc(&data, args.sbc, options)?;
    }
    Ok(())
}

/// The model used for calibration: PyMC-Marketing's structure with priors narrow enough
/// that simulated targets stay in [0, 1] (so the fit's target scaling is the identity).
fn calibration_spec() -> MmmSpec {
    let defaults = MmmSpec::default();
    let mut saturation_priors = defaults.saturation_priors.clone();
    saturation_priors[1] = Prior::HalfNormal { sigma: 0.2 };
    MmmSpec {
        yearly_order: 1,
        intercept: Prior::Normal {
            mu: 0.3,
            sigma: 0.05,
        },
        saturation_priors,
        fourier: Prior::Laplace { mu: 0.0, b: 0.02 },
        sigma: Prior::HalfNormal { sigma: 0.03 },
        ..defaults
    }
}

fn sbc(example: &MmmData, sets: usize, options: SamplerOptions) -> anyhow::Result<()> {
    let spec = calibration_spec();
    let template = MmmData {
        control_names: Vec::new(),
        controls: Vec::new(),
        ..example.clone()
    };
    println!();
    println!(
        "Simulation-based calibration: {sets} data sets drawn from the priors (the example's \
         spend and dates), each fitted with {} chains × {} draws",
        options.chains, options.draws
    );
    let bar = ProgressBar::new(sets as u64);
    bar.set_style(
        ProgressStyle::with_template("fitting {bar:40} {pos}/{len} ({elapsed}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let channels = template.channels.len();
    let mut covered_contribution = vec![0usize; channels];
    let mut covered_roas = vec![0usize; channels];
    let mut ranks = vec![0usize; 10];
    let mut rng = Rng::seeded(2026);
    let started = Instant::now();
    let mut fitted_sets = 0usize;
    let mut bad_fits = 0usize;
    for set in 0..sets {
        let simulated = simulate(&spec, &template, &mut rng)?;
        let fitted = fit(
            &spec,
            &simulated.data,
            &[],
            SamplerOptions {
                seed: 7 + set as u64,
                ..options
            },
            &|_, _| {},
        )?;
        if fitted.diagnostics().rhat_max > 1.05 {
            bad_fits += 1;
        }
        for (c, summary) in fitted.channel_summaries().iter().enumerate() {
            covered_contribution[c] +=
                usize::from(summary.contribution.covers(simulated.contribution[c]));
            covered_roas[c] += usize::from(summary.roas.covers(simulated.roas[c]));
        }
        // Rank of the true saturation beta of the first channel among its draws.
        let name = format!("saturation_beta[{}]", template.channels[0]);
        let at = fitted.parameter_names().iter().position(|n| *n == name);
        if let (Some(draws), Some(at)) = (fitted.parameter_draws(&name), at) {
            let truth = simulated.parameters[at];
            let below = draws.iter().filter(|d| **d < truth).count();
            ranks[(below * 10 / draws.len().max(1)).min(9)] += 1;
        }
        fitted_sets += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "{fitted_sets} fits in {:.1} s ({} with R-hat > 1.05)",
        started.elapsed().as_secs_f64(),
        bad_fits
    );
    println!(
        "{:<10} {:>26} {:>20}",
        "channel", "contribution covered", "ROAS covered"
    );
    for c in 0..channels {
        println!(
            "{:<10} {:>25.1} % {:>19.1} %",
            template.channels[c],
            100.0 * covered_contribution[c] as f64 / fitted_sets as f64,
            100.0 * covered_roas[c] as f64 / fitted_sets as f64
        );
    }
    let all: usize = covered_contribution.iter().sum();
    let share = all as f64 / (fitted_sets * channels) as f64;
    println!(
        "all channels: {:.1} % of 90 % intervals cover the truth (goal 87–93 %: {})",
        100.0 * share,
        if (0.87..=0.93).contains(&share) {
            "met"
        } else {
            "not met"
        }
    );
    println!(
        "rank of the true saturation_beta[{}] among its draws, by decile: {:?} (uniform when calibrated)",
        template.channels[0], ranks
    );
    Ok(())
}
