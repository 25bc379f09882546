//! Geo experiments: difference-in-differences on a panel of regions with robust standard
//! errors, and synthetic control (weights on the simplex) with placebo-based inference.
//!
//! References: the difference-in-differences estimate and its standard errors match
//! statsmodels' OLS with unit and period dummies (`cov_type="cluster"` and `"HC1"`); the
//! synthetic-control weights match pysyncon's for the same predictors and `V`
//! (golden files in `tests/golden/`).

use crate::special::{norm_ppf, norm_sf};

/// Why a geo analysis cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeoError {
    /// The panel's shape is wrong.
    #[error("invalid panel: {0}")]
    Panel(String),
}

/// Outcomes of units (regions) over periods, some units treated from `first_post` on.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Unit names.
    pub units: Vec<String>,
    /// `outcomes[unit][period]`; every unit has every period.
    pub outcomes: Vec<Vec<f64>>,
    /// Which units were treated.
    pub treated: Vec<bool>,
    /// First period of the treatment (periods before it are the pre-period).
    pub first_post: usize,
}

impl Panel {
    fn check(&self) -> Result<usize, GeoError> {
        let units = self.units.len();
        if units < 2 || self.outcomes.len() != units || self.treated.len() != units {
            return Err(GeoError::Panel(format!(
                "{} units, {} outcome rows and {} treatment flags (need at least 2, all equal)",
                units,
                self.outcomes.len(),
                self.treated.len()
            )));
        }
        let periods = self.outcomes[0].len();
        if let Some(u) = self.outcomes.iter().position(|row| row.len() != periods) {
            return Err(GeoError::Panel(format!(
                "unit {} has {} periods, the first unit {periods}",
                self.units[u],
                self.outcomes[u].len()
            )));
        }
        if self.first_post == 0 || self.first_post >= periods {
            return Err(GeoError::Panel(format!(
                "first_post {} must leave at least one period before and after (of {periods})",
                self.first_post
            )));
        }
        if let Some((u, _)) = self
            .outcomes
            .iter()
            .enumerate()
            .find(|(_, row)| row.iter().any(|v| !v.is_finite()))
        {
            return Err(GeoError::Panel(format!(
                "unit {} has an outcome that is not a finite number",
                self.units[u]
            )));
        }
        Ok(periods)
    }
}

/// Which standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Robust {
    /// Clustered by unit (CR1, statsmodels' small-sample correction): allows any
    /// correlation of a unit's errors over time.
    ClusterByUnit,
    /// Heteroskedasticity-robust, observations independent (HC1).
    Hc1,
}

/// A difference-in-differences estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DidResult {
    /// Average effect of the treatment on the treated units' outcome per period.
    pub effect: f64,
    /// Its robust standard error.
    pub se: f64,
    /// Two-sided p-value (normal reference, as statsmodels for robust covariances).
    pub p_value: f64,
    /// 95 % confidence interval.
    pub lo: f64,
    /// 95 % confidence interval.
    pub hi: f64,
}

/// Two-way fixed-effects difference-in-differences: `y_it = a_i + b_t + δ·D_it + e_it`
/// with `D_it` = unit treated and period ≥ `first_post`. On a balanced panel δ is the
/// difference of the treated and control units' mean change, computed here by removing
/// both sets of fixed effects (Frisch–Waugh–Lovell), with the full model's residuals.
pub fn difference_in_differences(panel: &Panel, robust: Robust) -> Result<DidResult, GeoError> {
    let periods = panel.check()?;
    let units = panel.units.len();
    let treated_count = panel.treated.iter().filter(|t| **t).count();
    if treated_count == 0 || treated_count == units {
        return Err(GeoError::Panel("need treated and untreated units".into()));
    }
    let d = |i: usize, t: usize| f64::from(u8::from(panel.treated[i] && t >= panel.first_post));
    let demean = |value: &dyn Fn(usize, usize) -> f64| -> Vec<Vec<f64>> {
        let unit_mean: Vec<f64> = (0..units)
            .map(|i| (0..periods).map(|t| value(i, t)).sum::<f64>() / periods as f64)
            .collect();
        let period_mean: Vec<f64> = (0..periods)
            .map(|t| (0..units).map(|i| value(i, t)).sum::<f64>() / units as f64)
            .collect();
        let grand = unit_mean.iter().sum::<f64>() / units as f64;
        (0..units)
            .map(|i| {
                (0..periods)
                    .map(|t| value(i, t) - unit_mean[i] - period_mean[t] + grand)
                    .collect()
            })
            .collect()
    };
    let dd = demean(&d);
    let yy = demean(&|i, t| panel.outcomes[i][t]);
    let sxx: f64 = dd.iter().flatten().map(|v| v * v).sum();
    let sxy: f64 = dd
        .iter()
        .flatten()
        .zip(yy.iter().flatten())
        .map(|(a, b)| a * b)
        .sum();
    let effect = sxy / sxx;
    let n = (units * periods) as f64;
    let k = (units + periods) as f64; // intercept, unit and period dummies, D
    let variance = match robust {
        Robust::ClusterByUnit => {
            let g = units as f64;
            let meat: f64 = (0..units)
                .map(|i| {
                    let score: f64 = (0..periods)
                        .map(|t| dd[i][t] * (yy[i][t] - effect * dd[i][t]))
                        .sum();
                    score * score
                })
                .sum();
            meat / (sxx * sxx) * g / (g - 1.0) * (n - 1.0) / (n - k)
        }
        Robust::Hc1 => {
            let meat: f64 = dd
                .iter()
                .flatten()
                .zip(yy.iter().flatten())
                .map(|(x, y)| {
                    let e = y - effect * x;
                    x * x * e * e
                })
                .sum();
            meat / (sxx * sxx) * n / (n - k)
        }
    };
    let se = variance.sqrt();
    let z = norm_ppf(0.975);
    Ok(DidResult {
        effect,
        se,
        p_value: 2.0 * norm_sf((effect / se).abs()),
        lo: effect - z * se,
        hi: effect + z * se,
    })
}

/// Weights `w ≥ 0`, `Σ w = 1` minimising `Σ_k v_k (x1_k − Σ_j x0[j][k] w_j)²`: the
/// synthetic control's inner problem for predictor weights `v` (`None`: all 1).
/// `x0[j]` are the predictors of donor `j`. A primal active-set method on the simplex:
/// the equality-constrained optimum over the donors in use, donors added while one
/// would lower the loss, removed when the step to the optimum would make one negative.
/// Exact up to rounding (no tolerance-driven early stop).
pub fn simplex_weights(x1: &[f64], x0: &[Vec<f64>], v: Option<&[f64]>) -> Vec<f64> {
    let donors = x0.len();
    let k = x1.len();
    let weight = |i: usize| v.map_or(1.0, |v| v[i].max(0.0));
    // P = X0ᵀ V X0, q = X0ᵀ V x1: loss = wᵀPw − 2qᵀw + const.
    let mut p = vec![0.0; donors * donors];
    let mut q = vec![0.0; donors];
    for a in 0..donors {
        q[a] = (0..k).map(|i| weight(i) * x0[a][i] * x1[i]).sum();
        for b in 0..=a {
            let value: f64 = (0..k).map(|i| weight(i) * x0[a][i] * x0[b][i]).sum();
            p[a * donors + b] = value;
            p[b * donors + a] = value;
        }
    }
    let scale = (0..donors)
        .map(|a| p[a * donors + a])
        .fold(0.0_f64, f64::max)
        .max(q.iter().fold(0.0_f64, |m, x| m.max(x.abs())))
        .max(f64::MIN_POSITIVE);
    let tolerance = 1e-13 * scale;
    // Start from the single best donor.
    let single_loss = |a: usize| p[a * donors + a] - 2.0 * q[a];
    let first = (0..donors)
        .min_by(|a, b| single_loss(*a).total_cmp(&single_loss(*b)))
        .unwrap_or(0);
    let mut w = vec![0.0; donors];
    w[first] = 1.0;
    let mut active = vec![false; donors];
    active[first] = true;
    for _ in 0..10 * donors + 10 {
        // Multiplier of the sum constraint and the dual of every unused donor.
        let gradient: Vec<f64> = (0..donors)
            .map(|a| q[a] - (0..donors).map(|b| p[a * donors + b] * w[b]).sum::<f64>())
            .collect();
        let used: Vec<usize> = (0..donors).filter(|a| active[*a]).collect();
        let lambda = used.iter().map(|a| gradient[*a]).sum::<f64>() / used.len() as f64;
        let Some((enter, dual)) = (0..donors)
            .filter(|a| !active[*a])
            .map(|a| (a, gradient[a] - lambda))
            .max_by(|x, y| x.1.total_cmp(&y.1))
        else {
            break;
        };
        if dual <= tolerance {
            break;
        }
        active[enter] = true;
        loop {
            let set: Vec<usize> = (0..donors).filter(|a| active[*a]).collect();
            let z = equality_optimum(&p, &q, donors, &set);
            if z.iter().all(|x| *x > 0.0) {
                w.iter_mut().for_each(|x| *x = 0.0);
                for (&a, &value) in set.iter().zip(&z) {
                    w[a] = value;
                }
                break;
            }
            // Move towards z until the first weight reaches zero; drop it.
            let mut step = 1.0_f64;
            for (&a, &value) in set.iter().zip(&z) {
                if value <= 0.0 && w[a] > value {
                    step = step.min(w[a] / (w[a] - value));
                }
            }
            for (&a, &value) in set.iter().zip(&z) {
                w[a] += step * (value - w[a]);
                if w[a] <= 1e-15 {
                    w[a] = 0.0;
                    active[a] = false;
                }
            }
            if active.iter().all(|x| !x) {
                w[enter] = 1.0;
                active[enter] = true;
                break;
            }
        }
    }
    let total: f64 = w.iter().sum();
    w.iter_mut().for_each(|x| *x /= total);
    w
}

/// Minimiser of `wᵀPw − 2qᵀw` over the donors in `set` with `Σ w = 1` (signs free):
/// the KKT system `[2P 1; 1ᵀ 0] [w; μ] = [2q; 1]`, by Gaussian elimination with partial
/// pivoting (a tiny ridge keeps collinear donors solvable).
fn equality_optimum(p: &[f64], q: &[f64], donors: usize, set: &[usize]) -> Vec<f64> {
    let m = set.len();
    let size = m + 1;
    let mut a = vec![0.0; size * (size + 1)];
    let trace: f64 = set.iter().map(|&i| p[i * donors + i]).sum::<f64>() / m as f64;
    for (r, &i) in set.iter().enumerate() {
        for (c, &j) in set.iter().enumerate() {
            a[r * (size + 1) + c] = 2.0 * p[i * donors + j];
        }
        a[r * (size + 1) + r] += 1e-12 * trace;
        a[r * (size + 1) + m] = 1.0;
        a[r * (size + 1) + size] = 2.0 * q[i];
    }
    for c in 0..m {
        a[m * (size + 1) + c] = 1.0;
    }
    a[m * (size + 1) + size] = 1.0;
    for col in 0..size {
        let pivot = (col..size)
            .max_by(|x, y| {
                a[x * (size + 1) + col]
                    .abs()
                    .total_cmp(&a[y * (size + 1) + col].abs())
            })
            .unwrap_or(col);
        if pivot != col {
            for c in 0..=size {
                a.swap(col * (size + 1) + c, pivot * (size + 1) + c);
            }
        }
        let diagonal = a[col * (size + 1) + col];
        if diagonal == 0.0 {
            continue;
        }
        for r in 0..size {
            if r == col {
                continue;
            }
            let factor = a[r * (size + 1) + col] / diagonal;
            if factor != 0.0 {
                for c in col..=size {
                    a[r * (size + 1) + c] -= factor * a[col * (size + 1) + c];
                }
            }
        }
    }
    (0..m)
        .map(|r| a[r * (size + 1) + size] / a[r * (size + 1) + r])
        .collect()
}

/// A synthetic control and what it says about the treatment.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticControl {
    /// Weight of every donor (untreated unit), in the panel's order of untreated units.
    pub donors: Vec<(String, f64)>,
    /// Treated minus synthetic outcome, every period.
    pub gaps: Vec<f64>,
    /// Root mean squared gap before the treatment.
    pub pre_rmspe: f64,
    /// Root mean squared gap after it.
    pub post_rmspe: f64,
    /// Mean gap after the treatment: the estimated effect per period.
    pub effect: f64,
    /// Share of units (placebos and the treated one) whose post/pre RMSPE ratio is at
    /// least the treated unit's: Abadie et al.'s permutation p-value.
    pub p_value: f64,
    /// 90 % interval of the effect from the placebos' mean post-period gaps (placebos
    /// whose pre-period MSPE is more than 5 times the treated unit's left out, as Abadie
    /// et al. do; all of them when none is left).
    pub lo: f64,
    /// Upper end of that interval.
    pub hi: f64,
    /// Placebos used for the interval.
    pub placebos: usize,
}

/// Synthetic control for the one treated unit of `panel`, with the pre-period outcomes
/// as predictors (each period weighted by `v`, `None`: equally), and placebo runs of
/// every untreated unit against the others.
pub fn synthetic_control(panel: &Panel, v: Option<&[f64]>) -> Result<SyntheticControl, GeoError> {
    let periods = panel.check()?;
    let treated: Vec<usize> = (0..panel.units.len())
        .filter(|i| panel.treated[*i])
        .collect();
    let [unit] = treated[..] else {
        return Err(GeoError::Panel(format!(
            "synthetic control needs exactly one treated unit, got {}",
            treated.len()
        )));
    };
    if let Some(v) = v {
        if v.len() != panel.first_post {
            return Err(GeoError::Panel(format!(
                "{} predictor weights for {} pre-periods",
                v.len(),
                panel.first_post
            )));
        }
    }
    let donors: Vec<usize> = (0..panel.units.len()).filter(|i| *i != unit).collect();
    if donors.len() < 2 {
        return Err(GeoError::Panel("need at least two untreated units".into()));
    }
    // Each predictor (a pre-period outcome) divided by its standard deviation across
    // all units, as Synth and pysyncon do, so that V weighs comparable numbers.
    let pre = panel.first_post;
    let scale: Vec<f64> = (0..pre)
        .map(|t| {
            let column: Vec<f64> = panel.outcomes.iter().map(|row| row[t]).collect();
            let m = column.iter().sum::<f64>() / column.len() as f64;
            let var =
                column.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (column.len() as f64 - 1.0);
            if var > 0.0 {
                var.sqrt()
            } else {
                1.0
            }
        })
        .collect();
    let scaled = |unit: usize| -> Vec<f64> {
        panel.outcomes[unit][..pre]
            .iter()
            .zip(&scale)
            .map(|(x, s)| x / s)
            .collect()
    };
    let fit = |target: usize, pool: &[usize]| -> (Vec<f64>, Vec<f64>) {
        let x1 = scaled(target);
        let x0: Vec<Vec<f64>> = pool.iter().map(|&j| scaled(j)).collect();
        let w = simplex_weights(&x1, &x0, v);
        let gaps = (0..periods)
            .map(|t| {
                panel.outcomes[target][t]
                    - pool
                        .iter()
                        .zip(&w)
                        .map(|(&j, w)| w * panel.outcomes[j][t])
                        .sum::<f64>()
            })
            .collect();
        (w, gaps)
    };
    let rmspe = |gaps: &[f64]| (gaps.iter().map(|g| g * g).sum::<f64>() / gaps.len() as f64).sqrt();
    let mean = |gaps: &[f64]| gaps.iter().sum::<f64>() / gaps.len() as f64;
    let (weights, gaps) = fit(unit, &donors);
    let (pre_rmspe, post_rmspe) = (rmspe(&gaps[..pre]), rmspe(&gaps[pre..]));
    let effect = mean(&gaps[pre..]);
    let ratio = post_rmspe / pre_rmspe.max(f64::MIN_POSITIVE);
    let mut at_least = 1usize;
    let mut placebo_effects = Vec::new();
    let mut all_placebo_effects = Vec::new();
    for &placebo in &donors {
        let pool: Vec<usize> = donors.iter().copied().filter(|j| *j != placebo).collect();
        let (_, g) = fit(placebo, &pool);
        let (p_pre, p_post) = (rmspe(&g[..pre]), rmspe(&g[pre..]));
        if p_post / p_pre.max(f64::MIN_POSITIVE) >= ratio {
            at_least += 1;
        }
        all_placebo_effects.push(mean(&g[pre..]));
        if p_pre * p_pre <= 5.0 * pre_rmspe * pre_rmspe {
            placebo_effects.push(mean(&g[pre..]));
        }
    }
    if placebo_effects.is_empty() {
        // The treated unit fits better than every placebo could: use them all.
        placebo_effects = all_placebo_effects;
    }
    placebo_effects.sort_by(f64::total_cmp);
    let q = |p: f64| crate::mcmc::diagnostics::quantile_sorted(&placebo_effects, p);
    Ok(SyntheticControl {
        donors: donors
            .iter()
            .zip(weights)
            .map(|(&j, w)| (panel.units[j].clone(), w))
            .collect(),
        pre_rmspe,
        post_rmspe,
        effect,
        p_value: at_least as f64 / (donors.len() + 1) as f64,
        lo: effect - q(0.95),
        hi: effect - q(0.05),
        placebos: placebo_effects.len(),
        gaps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_control_finds_the_mixture_that_made_the_treated_unit() {
        let periods = 30;
        let base: Vec<Vec<f64>> = (0..5)
            .map(|u| {
                (0..periods)
                    .map(|t| (t as f64 * (0.3 + u as f64 * 0.2)).sin() * 10.0 + u as f64 * 3.0)
                    .collect()
            })
            .collect();
        let mut treated: Vec<f64> = (0..periods)
            .map(|t| 0.6 * base[1][t] + 0.4 * base[3][t])
            .collect();
        for v in treated.iter_mut().skip(20) {
            *v += 5.0;
        }
        let mut outcomes = vec![treated];
        outcomes.extend(base);
        let panel = Panel {
            units: (0..6).map(|i| format!("u{i}")).collect(),
            outcomes,
            treated: vec![true, false, false, false, false, false],
            first_post: 20,
        };
        let sc = synthetic_control(&panel, None).unwrap();
        let w: Vec<f64> = sc.donors.iter().map(|d| d.1).collect();
        assert!(
            (w[1] - 0.6).abs() < 1e-6 && (w[3] - 0.4).abs() < 1e-6,
            "{w:?}"
        );
        assert!((sc.effect - 5.0).abs() < 1e-5 && sc.pre_rmspe < 1e-5);
        assert!(sc.placebos >= 1 && sc.lo <= sc.hi);
    }

    #[test]
    fn did_of_a_known_shift_is_the_shift() {
        let outcomes: Vec<Vec<f64>> = (0..6)
            .map(|u| {
                (0..8)
                    .map(|t| {
                        u as f64
                            + t as f64 * 0.5
                            + if u < 3 && t >= 4 { 2.0 } else { 0.0 }
                            + ((u * 7 + t * 3) % 5) as f64 * 0.01
                    })
                    .collect()
            })
            .collect();
        let panel = Panel {
            units: (0..6).map(|i| i.to_string()).collect(),
            outcomes,
            treated: vec![true, true, true, false, false, false],
            first_post: 4,
        };
        let r = difference_in_differences(&panel, Robust::ClusterByUnit).unwrap();
        assert!(
            (r.effect - 2.0).abs() < 0.02 && r.lo < 2.0 && r.hi > 2.0,
            "{r:?}"
        );
        assert!(matches!(
            difference_in_differences(
                &Panel {
                    first_post: 0,
                    ..panel
                },
                Robust::Hc1
            ),
            Err(GeoError::Panel(_))
        ));
    }
}
