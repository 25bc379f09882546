//! Power, minimum detectable effect and sample size of a two-sided test of the relative
//! effect (delta method), the same test [`crate::abtest::ttest`] runs, in its large-sample
//! (normal) form.

use crate::special::{norm_cdf, norm_ppf};

/// The metric being planned for, as it behaves in control.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// A mean metric with unit-level variance; treatment keeps the same variance.
    Mean {
        /// Control mean (non-zero).
        mean: f64,
        /// Unit-level variance.
        variance: f64,
    },
    /// A conversion rate; treatment's variance follows its rate.
    Binomial {
        /// Control rate in (0, 1).
        rate: f64,
    },
}

impl Metric {
    fn moments(self, lift: f64) -> Option<(f64, f64, f64, f64)> {
        match self {
            Metric::Mean { mean, variance } if mean != 0.0 && variance > 0.0 => {
                Some((mean, variance, mean * (1.0 + lift), variance))
            }
            Metric::Binomial { rate } if rate > 0.0 && rate < 1.0 => {
                let rb = rate * (1.0 + lift);
                (rb > 0.0 && rb < 1.0).then_some((rate, rate * (1.0 - rate), rb, rb * (1.0 - rb)))
            }
            _ => None,
        }
    }
}

/// Probability of a significant result at level `alpha` with `n_per_arm` units per arm
/// when the true relative lift is `lift`. `None` for impossible inputs (a rate pushed
/// outside (0, 1), zero mean or variance).
pub fn power(metric: Metric, lift: f64, n_per_arm: f64, alpha: f64) -> Option<f64> {
    let (ma, va, mb, vb) = metric.moments(lift)?;
    if n_per_arm <= 0.0 || !(alpha > 0.0 && alpha < 1.0) {
        return None;
    }
    let se = (vb / (ma * ma * n_per_arm) + va * mb * mb / (ma.powi(4) * n_per_arm)).sqrt();
    let z = norm_ppf(1.0 - alpha / 2.0);
    let shift = lift / se;
    Some(norm_cdf(shift - z) + norm_cdf(-shift - z))
}

/// The smallest positive relative lift detected with probability `target` (e.g. 0.8).
pub fn minimum_detectable_effect(
    metric: Metric,
    n_per_arm: f64,
    alpha: f64,
    target: f64,
) -> Option<f64> {
    if !(target > alpha / 2.0 && target < 1.0) {
        return None;
    }
    let mut hi = 1e-6;
    while power(metric, hi, n_per_arm, alpha)? < target {
        hi *= 2.0;
        if hi > 1e6 {
            return None;
        }
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if power(metric, mid, n_per_arm, alpha)? < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi)
}

/// Units per arm needed to detect `lift` with probability `target`.
pub fn sample_size(metric: Metric, lift: f64, alpha: f64, target: f64) -> Option<f64> {
    if lift == 0.0 || !(target > alpha && target < 1.0) {
        return None;
    }
    let mut hi = 2.0;
    while power(metric, lift, hi, alpha)? < target {
        hi *= 2.0;
        if hi > 1e15 {
            return None;
        }
    }
    let mut lo = 1.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if power(metric, lift, mid, alpha)? < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi.ceil())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mde_and_sample_size_invert_power() {
        let m = Metric::Binomial { rate: 0.1 };
        let mde = minimum_detectable_effect(m, 5_000.0, 0.05, 0.8).unwrap();
        assert!((power(m, mde, 5_000.0, 0.05).unwrap() - 0.8).abs() < 1e-9);
        let n = sample_size(m, mde, 0.05, 0.8).unwrap();
        assert!((n - 5_000.0).abs() <= 1.0, "{n}");
        // textbook check for a mean metric: n = 2 (z_{.975} + z_{.8})² σ² / δ² for the
        // absolute effect δ = lift · mean, up to the delta method's (1 + lift)² term
        let mean = Metric::Mean {
            mean: 100.0,
            variance: 400.0,
        };
        let n = sample_size(mean, 0.01, 0.05, 0.8).unwrap();
        let z = norm_ppf(0.975) + norm_ppf(0.8);
        let textbook = z * z * 400.0 * (1.0 + 1.01f64.powi(2)) / (1.0f64 * 1.0);
        assert!((n - textbook).abs() / textbook < 1e-3, "{n} vs {textbook}");
        assert_eq!(
            power(Metric::Binomial { rate: 0.9 }, 0.5, 100.0, 0.05),
            None
        );
    }
}
