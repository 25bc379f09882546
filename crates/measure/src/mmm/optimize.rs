//! Budget allocation: split a total budget over channels for the coming weeks so that
//! the posterior mean of the media-driven target is largest, within per-channel bounds.
//!
//! Each channel's budget is spent evenly over the weeks; its effect is counted in those
//! weeks and in the carry-over weeks after them. The objective is separable and (for
//! logistic saturation) concave in each channel's budget, so handing out the budget in
//! small increments to the channel with the best marginal return finds the optimum up to
//! the increment; pairwise transfers with halving steps then refine it.

use super::{Interval, MmmError, MmmFit};

/// Lower and upper bounds of one channel's budget over the whole period.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    /// Channel name.
    pub channel: String,
    /// Least budget.
    pub lo: f64,
    /// Most budget.
    pub hi: f64,
}

/// The optimizer's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    /// Budget per channel over the period, in the order of the fit's channels.
    pub allocation: Vec<(String, f64)>,
    /// Target the media spend is expected to bring over the period and its carry-over
    /// weeks (sum over channels).
    pub expected: Interval,
    /// The same for the budget split as historical spend was split, for comparison.
    pub expected_at_historical_split: Interval,
}

/// Draws used for the objective (the answer's interval uses all of them).
const OBJECTIVE_DRAWS: usize = 400;
/// Increments the budget is handed out in before refinement.
const INCREMENTS: usize = 1000;

struct Objective<'a> {
    fit: &'a MmmFit,
    weeks: usize,
    carry: usize,
}

impl Objective<'_> {
    fn series(&self, budget: f64) -> Vec<f64> {
        let weekly = budget / self.weeks as f64;
        (0..self.weeks + self.carry)
            .map(|t| if t < self.weeks { weekly } else { 0.0 })
            .collect()
    }

    fn draws(&self, channel: usize, budget: f64, max_draws: usize) -> Vec<f64> {
        self.fit
            .response_draws(channel, &self.series(budget), max_draws)
    }

    fn mean(&self, channel: usize, budget: f64) -> f64 {
        let d = self.draws(channel, budget, OBJECTIVE_DRAWS);
        d.iter().sum::<f64>() / d.len().max(1) as f64
    }

    fn total(&self, budgets: &[f64]) -> Interval {
        let mut sum: Vec<f64> = Vec::new();
        for (c, &b) in budgets.iter().enumerate() {
            let d = self.draws(c, b, usize::MAX);
            if sum.is_empty() {
                sum = d;
            } else {
                sum.iter_mut().zip(d).for_each(|(s, v)| *s += v);
            }
        }
        Interval::of(&sum)
    }
}

/// Splits `budget` over the fit's channels for `weeks` weeks. Channels without bounds
/// may get anything from 0 to the whole budget.
pub fn optimize_budget(
    fit: &MmmFit,
    budget: f64,
    weeks: usize,
    bounds: &[Bounds],
) -> Result<Allocation, MmmError> {
    let channels = fit.channels();
    if !(budget.is_finite() && budget > 0.0) {
        return Err(MmmError::Spec(format!(
            "budget {budget} must be a positive number"
        )));
    }
    if weeks == 0 {
        return Err(MmmError::Spec("weeks must be at least 1".into()));
    }
    let mut lo = vec![0.0; channels.len()];
    let mut hi = vec![budget; channels.len()];
    for b in bounds {
        let c = channels
            .iter()
            .position(|n| *n == b.channel)
            .ok_or_else(|| MmmError::Spec(format!("bounds name no channel {}", b.channel)))?;
        if !(b.lo.is_finite() && b.hi.is_finite() && 0.0 <= b.lo && b.lo <= b.hi) {
            return Err(MmmError::Spec(format!(
                "bounds of {}: need 0 ≤ lo ≤ hi, got {}:{}",
                b.channel, b.lo, b.hi
            )));
        }
        lo[c] = b.lo;
        hi[c] = b.hi.min(budget);
    }
    let (lo_sum, hi_sum): (f64, f64) = (lo.iter().sum(), hi.iter().sum());
    if lo_sum > budget * (1.0 + 1e-12) || hi_sum < budget * (1.0 - 1e-12) {
        return Err(MmmError::Spec(format!(
            "the bounds allow {lo_sum}..{hi_sum} in all, the budget is {budget}"
        )));
    }
    let objective = Objective {
        fit,
        weeks,
        carry: fit.spec().adstock.l_max().saturating_sub(1),
    };
    let mut x = lo.clone();
    let mut value: Vec<f64> = (0..x.len()).map(|c| objective.mean(c, x[c])).collect();
    let step = budget / INCREMENTS as f64;
    let mut remaining = budget - lo_sum;
    // Marginal gain per unit of the next increment of each channel.
    let next = |c: usize, x: &[f64], value: &[f64], remaining: f64| -> Option<(f64, f64, f64)> {
        let delta = step.min(hi[c] - x[c]).min(remaining);
        if delta <= 0.0 {
            return None;
        }
        let v = objective.mean(c, x[c] + delta);
        Some(((v - value[c]) / delta, delta, v))
    };
    let mut gains: Vec<Option<(f64, f64, f64)>> = (0..x.len())
        .map(|c| next(c, &x, &value, remaining))
        .collect();
    while remaining > budget * 1e-12 {
        let Some((best, _)) = gains
            .iter()
            .enumerate()
            .filter_map(|(c, g)| g.map(|g| (c, g.0)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
        else {
            break;
        };
        let Some((_, delta, v)) = gains[best] else {
            break;
        };
        x[best] += delta;
        value[best] = v;
        remaining -= delta;
        // The last increment may be smaller than the others: recompute all then.
        if remaining < step {
            gains = (0..x.len())
                .map(|c| next(c, &x, &value, remaining))
                .collect();
        } else {
            gains[best] = next(best, &x, &value, remaining);
        }
    }
    // Pairwise transfers with halving steps.
    let mut delta = step;
    for _ in 0..8 {
        let mut improved = true;
        while improved {
            improved = false;
            for from in 0..x.len() {
                for to in 0..x.len() {
                    let d = delta.min(x[from] - lo[from]).min(hi[to] - x[to]);
                    if from == to || d <= 0.0 {
                        continue;
                    }
                    let (vf, vt) = (
                        objective.mean(from, x[from] - d),
                        objective.mean(to, x[to] + d),
                    );
                    if vf + vt > value[from] + value[to] + 1e-12 * (value[from] + value[to]).abs() {
                        x[from] -= d;
                        x[to] += d;
                        value[from] = vf;
                        value[to] = vt;
                        improved = true;
                    }
                }
            }
        }
        delta /= 2.0;
    }
    let historical: Vec<f64> = fit.spend().iter().map(|c| c.iter().sum()).collect();
    let historical_total: f64 = historical.iter().sum();
    let split: Vec<f64> = historical
        .iter()
        .map(|h| {
            if historical_total > 0.0 {
                budget * h / historical_total
            } else {
                budget / channels.len() as f64
            }
        })
        .collect();
    Ok(Allocation {
        allocation: channels.iter().cloned().zip(x.iter().copied()).collect(),
        expected: objective.total(&x),
        expected_at_historical_split: objective.total(&split),
    })
}
