//! Bayesian marketing mix models: adstock (geometric, Weibull) and saturation (logistic,
//! Hill) per channel, control variables, yearly Fourier seasonality, sampled with NUTS on
//! an analytic gradient; contributions, ROAS and marginal ROAS with credible intervals,
//! response curves, a budget optimizer, and lift tests as extra likelihood terms.
//!
//! The model and its default priors are PyMC-Marketing's `MMM` (0.19), so a fit here can
//! be compared with one there parameter by parameter (`scripts/mmm_reference.py`).

mod model;
pub mod optimize;
pub mod prior;
pub mod simulate;
pub mod transform;

use std::time::Instant;

use crate::mcmc::diagnostics::{ess_bulk, ess_tail, quantile_sorted, rhat};
use crate::mcmc::{sample, SampleError, SamplerOptions, Samples};
use model::{Density, Layout, ScaledLift};
pub use optimize::{optimize_budget, Allocation, Bounds};
pub use prior::Prior;
pub use transform::{Adstock, Saturation};

/// Days in a year for the yearly Fourier terms (PyMC-Marketing's `DAYS_IN_YEAR`).
pub const DAYS_IN_YEAR: f64 = 365.25;

/// Weekly (or daily) observations: spend per channel, controls, the target.
#[derive(Debug, Clone, PartialEq)]
pub struct MmmData {
    /// Day of the year (1–366) of every row, for the seasonality terms.
    pub day_of_year: Vec<f64>,
    /// Channel names, one per row of `spend`.
    pub channels: Vec<String>,
    /// Spend (or impressions) per channel and row; not negative.
    pub spend: Vec<Vec<f64>>,
    /// Control names, one per row of `controls`.
    pub control_names: Vec<String>,
    /// Control values per control and row (used as given).
    pub controls: Vec<Vec<f64>>,
    /// The target (revenue, sales) per row.
    pub target: Vec<f64>,
}

/// The model: transforms, seasonality and priors.
#[derive(Debug, Clone, PartialEq)]
pub struct MmmSpec {
    /// Carry-over of spend.
    pub adstock: Adstock,
    /// Diminishing returns.
    pub saturation: Saturation,
    /// Order of the yearly Fourier seasonality (0: none).
    pub yearly_order: usize,
    /// Prior of the intercept.
    pub intercept: Prior,
    /// Priors of the adstock parameters (one per parameter, shared by channels).
    pub adstock_priors: Vec<Prior>,
    /// Priors of the saturation parameters.
    pub saturation_priors: Vec<Prior>,
    /// Prior of every control coefficient.
    pub control: Prior,
    /// Prior of every Fourier coefficient.
    pub fourier: Prior,
    /// Prior of the noise's standard deviation.
    pub sigma: Prior,
}

impl MmmSpec {
    /// A model with PyMC-Marketing's default priors.
    pub fn new(adstock: Adstock, saturation: Saturation, yearly_order: usize) -> Self {
        MmmSpec {
            adstock,
            saturation,
            yearly_order,
            intercept: Prior::Normal {
                mu: 0.0,
                sigma: 2.0,
            },
            adstock_priors: adstock.default_priors(),
            saturation_priors: saturation.default_priors(),
            control: Prior::Normal {
                mu: 0.0,
                sigma: 2.0,
            },
            fourier: Prior::Laplace { mu: 0.0, b: 1.0 },
            sigma: Prior::HalfNormal { sigma: 2.0 },
        }
    }
}

impl Default for MmmSpec {
    /// Geometric adstock over 8 weeks, logistic saturation, yearly order 2.
    fn default() -> Self {
        MmmSpec::new(Adstock::Geometric { l_max: 8 }, Saturation::Logistic, 2)
    }
}

/// An experiment that measured a channel's lift: raising weekly spend from `spend` by
/// `delta_spend` raised the target by `delta_target` (standard error `sigma`).
#[derive(Debug, Clone, PartialEq)]
pub struct LiftTest {
    /// Channel name.
    pub channel: String,
    /// Weekly spend before the test.
    pub spend: f64,
    /// Change of weekly spend during the test.
    pub delta_spend: f64,
    /// Measured change of the weekly target.
    pub delta_target: f64,
    /// Standard error of `delta_target` (> 0).
    pub sigma: f64,
}

/// Why a model cannot be fitted.
#[derive(Debug, thiserror::Error)]
pub enum MmmError {
    /// The data cannot be used as given.
    #[error("invalid data: {0}")]
    Data(String),
    /// The model specification cannot be used.
    #[error("invalid model: {0}")]
    Spec(String),
    /// A lift test names an unknown channel or carries impossible numbers.
    #[error("invalid lift test: {0}")]
    Lift(String),
    /// Sampling failed.
    #[error(transparent)]
    Sample(#[from] SampleError),
}

/// A posterior mean with its 90 % equal-tailed credible interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Posterior mean.
    pub mean: f64,
    /// 5 % quantile.
    pub lo: f64,
    /// 95 % quantile.
    pub hi: f64,
}

impl Interval {
    /// Mean and 90 % interval of draws.
    pub fn of(draws: &[f64]) -> Interval {
        let mut sorted = draws.to_vec();
        sorted.sort_by(f64::total_cmp);
        Interval {
            mean: draws.iter().sum::<f64>() / draws.len().max(1) as f64,
            lo: quantile_sorted(&sorted, 0.05),
            hi: quantile_sorted(&sorted, 0.95),
        }
    }

    /// Whether `value` lies in the interval.
    pub fn covers(&self, value: f64) -> bool {
        (self.lo..=self.hi).contains(&value)
    }
}

/// One parameter's posterior.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterSummary {
    /// PyMC-Marketing's name, e.g. `saturation_lam[x1]`.
    pub name: String,
    /// Posterior mean and 90 % interval.
    pub interval: Interval,
    /// Posterior standard deviation.
    pub sd: f64,
    /// Rank-normalised split R-hat.
    pub rhat: f64,
    /// Bulk effective sample size.
    pub ess_bulk: f64,
    /// Tail effective sample size.
    pub ess_tail: f64,
}

/// Whether the chains can be trusted, and how long they took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diagnostics {
    /// Largest R-hat over parameters (want < 1.01).
    pub rhat_max: f64,
    /// Smallest bulk ESS over parameters.
    pub ess_min: f64,
    /// Divergent transitions after warm-up (want 0).
    pub divergences: usize,
    /// Wall-clock seconds of sampling.
    pub seconds: f64,
    /// Gradient evaluations, warm-up included.
    pub gradient_evaluations: u64,
}

/// What a channel brought, in the data's units.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSummary {
    /// Channel name.
    pub name: String,
    /// Spend over the data.
    pub spend: f64,
    /// Target attributed to the channel over the data.
    pub contribution: Interval,
    /// Contribution per unit of spend.
    pub roas: Interval,
    /// Extra target per extra unit of spend, at 1 % more spend in every week.
    pub marginal_roas: Interval,
    /// Adstock parameters by name.
    pub adstock: Vec<(String, Interval)>,
    /// Saturation parameters by name.
    pub saturation: Vec<(String, Interval)>,
}

/// A point of a response curve: contribution over the data had every week's spend been
/// multiplied by `multiplier`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    /// Spend multiplier.
    pub multiplier: f64,
    /// Total spend at that multiplier.
    pub spend: f64,
    /// Contribution at that spend.
    pub contribution: Interval,
}

/// A fitted model: posterior draws and what follows from them.
#[derive(Debug, Clone)]
pub struct MmmFit {
    spec: MmmSpec,
    density: Density,
    channels: Vec<String>,
    names: Vec<String>,
    /// Parameter values per chain, draw after draw.
    draws: Vec<Vec<f64>>,
    channel_scale: Vec<f64>,
    target_scale: f64,
    raw_spend: Vec<Vec<f64>>,
    diagnostics: Diagnostics,
}

/// Fits the model to the data by NUTS. `progress(done, total)` reports draws over all
/// chains.
pub fn fit(
    spec: &MmmSpec,
    data: &MmmData,
    lift_tests: &[LiftTest],
    options: SamplerOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<MmmFit, MmmError> {
    let (density, channel_scale, target_scale) = build(spec, data, lift_tests)?;
    let started = Instant::now();
    let dim = density.layout.dim();
    let start = |rng: &mut crate::rng::Rng| -> Vec<f64> {
        // PyMC's jitter+adapt_diag: the unconstrained origin jittered by U(−1, 1).
        (0..dim).map(|_| 2.0 * rng.uniform() - 1.0).collect()
    };
    let samples = sample(&density, &start, options, progress)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(MmmFit::new(
        spec.clone(),
        density,
        data,
        samples,
        channel_scale,
        target_scale,
        seconds,
    ))
}

fn check_series(name: &str, values: &[f64], rows: usize) -> Result<(), MmmError> {
    if values.len() != rows {
        return Err(MmmError::Data(format!(
            "column {name} has {} rows, the target {rows}",
            values.len()
        )));
    }
    if let Some(row) = values.iter().position(|v| !v.is_finite()) {
        return Err(MmmError::Data(format!(
            "column {name} row {} is not a finite number",
            row + 1
        )));
    }
    Ok(())
}

fn scale_of(values: &[f64]) -> f64 {
    values.iter().fold(0.0_f64, |m, v| m.max(v.abs())).max(1.0)
}

fn build(
    spec: &MmmSpec,
    data: &MmmData,
    lift_tests: &[LiftTest],
) -> Result<(Density, Vec<f64>, f64), MmmError> {
    let rows = data.target.len();
    if rows < 3 {
        return Err(MmmError::Data(format!(
            "{rows} rows; at least 3 are needed"
        )));
    }
    if data.channels.is_empty() || data.channels.len() != data.spend.len() {
        return Err(MmmError::Data(format!(
            "{} channel names for {} spend columns (at least one channel)",
            data.channels.len(),
            data.spend.len()
        )));
    }
    if data.control_names.len() != data.controls.len() {
        return Err(MmmError::Data(format!(
            "{} control names for {} control columns",
            data.control_names.len(),
            data.controls.len()
        )));
    }
    check_series("target", &data.target, rows)?;
    if spec.yearly_order > 0 {
        check_series("day of year", &data.day_of_year, rows)?;
    }
    for (name, column) in data.channels.iter().zip(&data.spend) {
        check_series(name, column, rows)?;
        if let Some(row) = column.iter().position(|v| *v < 0.0) {
            return Err(MmmError::Data(format!(
                "channel {name} row {} has negative spend",
                row + 1
            )));
        }
    }
    for (name, column) in data.control_names.iter().zip(&data.controls) {
        check_series(name, column, rows)?;
    }
    let l_max = spec.adstock.l_max();
    if l_max == 0 {
        return Err(MmmError::Spec("adstock l_max must be at least 1".into()));
    }
    if spec.adstock_priors.len() != spec.adstock.parameter_names().len()
        || spec.saturation_priors.len() != spec.saturation.parameter_names().len()
    {
        return Err(MmmError::Spec(
            "one prior per adstock and per saturation parameter".into(),
        ));
    }
    let layout = Layout {
        channels: data.channels.len(),
        adstock: spec.adstock_priors.len(),
        saturation: spec.saturation_priors.len(),
        controls: data.controls.len(),
        fourier: 2 * spec.yearly_order,
    };
    let mut priors = vec![spec.intercept];
    for _ in 0..layout.channels {
        priors.extend_from_slice(&spec.adstock_priors);
    }
    for _ in 0..layout.channels {
        priors.extend_from_slice(&spec.saturation_priors);
    }
    priors.extend(std::iter::repeat_n(spec.control, layout.controls));
    priors.extend(std::iter::repeat_n(spec.fourier, layout.fourier));
    priors.push(spec.sigma);
    let channel_scale: Vec<f64> = data.spend.iter().map(|c| scale_of(c)).collect();
    let target_scale = scale_of(&data.target);
    let fourier = fourier_terms(&data.day_of_year, spec.yearly_order);
    let mut lifts = Vec::with_capacity(lift_tests.len());
    for lift in lift_tests {
        let channel = data
            .channels
            .iter()
            .position(|c| *c == lift.channel)
            .ok_or_else(|| MmmError::Lift(format!("no channel named {}", lift.channel)))?;
        if lift.sigma.is_nan() || lift.sigma <= 0.0 || !lift.spend.is_finite() || lift.spend < 0.0 {
            return Err(MmmError::Lift(format!(
                "{}: spend must be ≥ 0 and sigma > 0",
                lift.channel
            )));
        }
        if !lift.delta_spend.is_finite() || lift.spend + lift.delta_spend < 0.0 {
            return Err(MmmError::Lift(format!(
                "{}: spend + delta_spend must be ≥ 0",
                lift.channel
            )));
        }
        lifts.push(ScaledLift {
            channel,
            x: lift.spend / channel_scale[channel],
            delta_x: lift.delta_spend / channel_scale[channel],
            delta_y: lift.delta_target / target_scale,
            sigma: lift.sigma / target_scale,
        });
    }
    let density = Density {
        adstock: spec.adstock,
        saturation: spec.saturation,
        layout,
        priors,
        spend: data
            .spend
            .iter()
            .zip(&channel_scale)
            .map(|(c, s)| c.iter().map(|v| v / s).collect())
            .collect(),
        controls: data.controls.clone(),
        fourier,
        target: data.target.iter().map(|v| v / target_scale).collect(),
        lifts,
        typical_spend: data
            .spend
            .iter()
            .zip(&channel_scale)
            .map(|(c, s)| {
                let active: Vec<f64> = c.iter().filter(|v| **v > 0.0).map(|v| v / s).collect();
                if active.is_empty() {
                    1.0
                } else {
                    active.iter().sum::<f64>() / active.len() as f64
                }
            })
            .collect(),
    };
    Ok((density, channel_scale, target_scale))
}

/// `sin(2π k d / 365.25)` for k = 1..=order, then the cosines.
pub fn fourier_terms(day_of_year: &[f64], order: usize) -> Vec<Vec<f64>> {
    let mut terms = Vec::with_capacity(2 * order);
    for f in [f64::sin, f64::cos] {
        for k in 1..=order {
            terms.push(
                day_of_year
                    .iter()
                    .map(|d| f(2.0 * std::f64::consts::PI * k as f64 * d / DAYS_IN_YEAR))
                    .collect(),
            );
        }
    }
    terms
}

fn parameter_names(spec: &MmmSpec, data: &MmmData) -> Vec<String> {
    let mut names = vec!["intercept".to_string()];
    for channel in &data.channels {
        for p in spec.adstock.parameter_names() {
            names.push(format!("adstock_{p}[{channel}]"));
        }
    }
    for channel in &data.channels {
        for p in spec.saturation.parameter_names() {
            names.push(format!("saturation_{p}[{channel}]"));
        }
    }
    for control in &data.control_names {
        names.push(format!("gamma_control[{control}]"));
    }
    for f in ["sin", "cos"] {
        for k in 1..=spec.yearly_order {
            names.push(format!("gamma_fourier[{f}_{k}]"));
        }
    }
    names.push("y_sigma".into());
    names
}

impl MmmFit {
    fn new(
        spec: MmmSpec,
        density: Density,
        data: &MmmData,
        samples: Samples,
        channel_scale: Vec<f64>,
        target_scale: f64,
        seconds: f64,
    ) -> MmmFit {
        let draws: Vec<Vec<f64>> = samples
            .draws
            .iter()
            .map(|chain| {
                chain
                    .chunks_exact(samples.dim)
                    .flat_map(|u| density.constrain(u))
                    .collect()
            })
            .collect();
        let mut fit = MmmFit {
            names: parameter_names(&spec, data),
            spec,
            density,
            channels: data.channels.clone(),
            draws,
            channel_scale,
            target_scale,
            raw_spend: data.spend.clone(),
            diagnostics: Diagnostics {
                rhat_max: 0.0,
                ess_min: f64::INFINITY,
                divergences: samples.divergences,
                seconds,
                gradient_evaluations: samples.gradient_evaluations,
            },
        };
        for i in 0..fit.names.len() {
            let chains = fit.parameter_chains(i);
            fit.diagnostics.rhat_max = fit.diagnostics.rhat_max.max(rhat(&chains));
            fit.diagnostics.ess_min = fit.diagnostics.ess_min.min(ess_bulk(&chains));
        }
        fit
    }

    /// The model that was fitted.
    pub fn spec(&self) -> &MmmSpec {
        &self.spec
    }

    /// Channel names.
    pub fn channels(&self) -> &[String] {
        &self.channels
    }

    /// Convergence diagnostics and time.
    pub fn diagnostics(&self) -> Diagnostics {
        self.diagnostics
    }

    /// The target's scale (its largest absolute value, at least 1).
    pub fn target_scale(&self) -> f64 {
        self.target_scale
    }

    fn dim(&self) -> usize {
        self.names.len()
    }

    /// Every draw's parameter values, chain after chain.
    fn all_draws(&self) -> impl Iterator<Item = &[f64]> {
        let dim = self.dim();
        self.draws.iter().flat_map(move |c| c.chunks_exact(dim))
    }

    fn parameter_chains(&self, index: usize) -> Vec<Vec<f64>> {
        let dim = self.dim();
        self.draws
            .iter()
            .map(|c| c.iter().skip(index).step_by(dim).copied().collect())
            .collect()
    }

    /// Parameter names in PyMC-Marketing's naming, in the order of
    /// [`simulate::Simulated::parameters`].
    pub fn parameter_names(&self) -> &[String] {
        &self.names
    }

    /// Draws of a parameter by name (all chains), if it exists.
    pub fn parameter_draws(&self, name: &str) -> Option<Vec<f64>> {
        let index = self.names.iter().position(|n| n == name)?;
        Some(self.parameter_chains(index).concat())
    }

    /// Posterior summary of every parameter, in PyMC-Marketing's naming.
    pub fn parameters(&self) -> Vec<ParameterSummary> {
        (0..self.dim())
            .map(|i| {
                let chains = self.parameter_chains(i);
                let all = chains.concat();
                let interval = Interval::of(&all);
                let sd = (all.iter().map(|x| (x - interval.mean).powi(2)).sum::<f64>()
                    / (all.len() as f64 - 1.0).max(1.0))
                .sqrt();
                ParameterSummary {
                    name: self.names[i].clone(),
                    interval,
                    sd,
                    rhat: rhat(&chains),
                    ess_bulk: ess_bulk(&chains),
                    ess_tail: ess_tail(&chains),
                }
            })
            .collect()
    }

    /// Contribution, ROAS, marginal ROAS and transform parameters of every channel.
    pub fn channel_summaries(&self) -> Vec<ChannelSummary> {
        let layout = self.density.layout;
        (0..self.channels.len())
            .map(|c| {
                let spend = &self.raw_spend[c];
                let total: f64 = spend.iter().sum();
                let base = self.response_draws(c, spend, usize::MAX);
                let more: Vec<f64> = spend.iter().map(|v| v * 1.01).collect();
                let raised = self.response_draws(c, &more, usize::MAX);
                let per_spend = |v: f64| if total > 0.0 { v / total } else { f64::NAN };
                let roas: Vec<f64> = base.iter().map(|&v| per_spend(v)).collect();
                let marginal: Vec<f64> = raised
                    .iter()
                    .zip(&base)
                    .map(|(r, b)| per_spend((r - b) / 0.01))
                    .collect();
                let named = |at: usize, names: &[&str]| -> Vec<(String, Interval)> {
                    names
                        .iter()
                        .enumerate()
                        .map(|(j, n)| {
                            (
                                n.to_string(),
                                Interval::of(&self.parameter_chains(at + j).concat()),
                            )
                        })
                        .collect()
                };
                ChannelSummary {
                    name: self.channels[c].clone(),
                    spend: total,
                    contribution: Interval::of(&base),
                    roas: Interval::of(&roas),
                    marginal_roas: Interval::of(&marginal),
                    adstock: named(layout.adstock_at(c), self.spec.adstock.parameter_names()),
                    saturation: named(
                        layout.saturation_at(c),
                        self.spec.saturation.parameter_names(),
                    ),
                }
            })
            .collect()
    }

    /// Contribution of `channel` over the data had every week's spend been scaled by
    /// each multiplier. `None` for an unknown channel.
    pub fn response_curve(&self, channel: &str, multipliers: &[f64]) -> Option<Vec<CurvePoint>> {
        let c = self.channels.iter().position(|n| n == channel)?;
        let spend = &self.raw_spend[c];
        let total: f64 = spend.iter().sum();
        Some(
            multipliers
                .iter()
                .map(|&m| {
                    let scaled: Vec<f64> = spend.iter().map(|v| v * m).collect();
                    CurvePoint {
                        multiplier: m,
                        spend: total * m,
                        contribution: Interval::of(&self.response_draws(c, &scaled, usize::MAX)),
                    }
                })
                .collect(),
        )
    }

    /// Contribution of `channel` (data units) per draw for weekly raw spend `spend`,
    /// with up to `max_draws` draws spread evenly over the posterior.
    pub(crate) fn response_draws(
        &self,
        channel: usize,
        spend: &[f64],
        max_draws: usize,
    ) -> Vec<f64> {
        let all: Vec<&[f64]> = self.all_draws().collect();
        let step = all.len().div_ceil(max_draws.max(1)).max(1);
        let scaled: Vec<f64> = spend
            .iter()
            .map(|v| v / self.channel_scale[channel])
            .collect();
        let mut out = vec![0.0; scaled.len()];
        all.iter()
            .step_by(step)
            .map(|x| {
                self.density.channel_response(x, channel, &scaled, &mut out);
                out.iter().sum::<f64>() * self.target_scale
            })
            .collect()
    }

    /// Historical spend of each channel, per row.
    pub fn spend(&self) -> &[Vec<f64>] {
        &self.raw_spend
    }
}

/// Day of the year (1–366) of a calendar date, `None` for a date that does not exist.
pub fn day_of_year(year: i32, month: u32, day: u32) -> Option<u32> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let lengths = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let month_index = usize::try_from(month).ok()?.checked_sub(1)?;
    let length = *lengths.get(month_index)?;
    if day == 0 || day > length {
        return None;
    }
    Some(lengths[..month_index].iter().sum::<u32>() + day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_of_year_counts_leap_days() {
        assert_eq!(day_of_year(2018, 4, 2), Some(92));
        assert_eq!(day_of_year(2020, 3, 1), Some(61));
        assert_eq!(day_of_year(2021, 12, 31), Some(365));
        assert_eq!(day_of_year(2021, 2, 29), None);
        assert_eq!(day_of_year(2021, 13, 1), None);
    }
}
