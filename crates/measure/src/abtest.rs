//! A/B test analysis on sufficient statistics, following GrowthBook's stats engine
//! (`gbstats` 0.8.0): Welch t-tests on absolute or relative effects (delta method),
//! always-valid sequential confidence sequences (Waudby-Smith et al. 2023), Gaussian
//! Bayesian effect tests with chance to win and expected loss, CUPED regression
//! adjustment, and the sample-ratio-mismatch check. Degenerate inputs answer the way
//! gbstats answers them: an uninformative result carrying a machine-readable reason.

use crate::special::{chi2_sf, norm_cdf, norm_pdf, norm_ppf, t_cdf, t_ppf};

/// Why a test could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Degenerate {
    /// The control's mean is zero, so a relative effect is undefined.
    ZeroBaseline,
    /// A variance is zero or negative.
    ZeroVariance,
    /// An arm has no units.
    NoUnits,
}

impl Degenerate {
    /// The code gbstats reports.
    pub fn code(self) -> &'static str {
        match self {
            Degenerate::ZeroBaseline => "ZERO_NEGATIVE_BASELINE_VARIATION",
            Degenerate::ZeroVariance => "ZERO_NEGATIVE_VARIANCE",
            Degenerate::NoUnits => "NO_UNITS_IN_VARIATION",
        }
    }
}

/// Sufficient statistics of one arm for one metric.
#[derive(Debug, Clone, PartialEq)]
pub enum Statistic {
    /// A mean metric: units, sum and sum of squares.
    Mean {
        /// Units.
        n: u64,
        /// Σx.
        sum: f64,
        /// Σx².
        sum_squares: f64,
    },
    /// A proportion (binomial) metric: units and conversions.
    Proportion {
        /// Units.
        n: u64,
        /// Conversions.
        sum: f64,
    },
    /// A ratio metric (e.g. revenue per session) by the delta method: numerator and
    /// denominator per unit and their cross sum.
    Ratio {
        /// Units.
        n: u64,
        /// The numerator.
        numerator: Box<Statistic>,
        /// The denominator.
        denominator: Box<Statistic>,
        /// Σ numerator·denominator.
        cross_sum: f64,
    },
    /// A quantile metric (e.g. the 90th percentile of order value), from the sample
    /// quantile and the bounds of its 95 % interval computed over `n_star` units.
    Quantile {
        /// Units (events) observed.
        n: u64,
        /// Sample size the bounds were computed with.
        n_star: u64,
        /// The quantile level in (0, 1).
        nu: f64,
        /// The sample quantile.
        estimate: f64,
        /// Lower bound of its 95 % interval.
        lower: f64,
        /// Upper bound of its 95 % interval.
        upper: f64,
    },
    /// CUPED: the metric regressed on its pre-period value with coefficient `theta`.
    RegressionAdjusted {
        /// Units.
        n: u64,
        /// The metric in the experiment period.
        post: Box<Statistic>,
        /// The same metric before the experiment.
        pre: Box<Statistic>,
        /// Σ post·pre.
        cross_sum: f64,
        /// The adjustment coefficient; set by [`cuped_theta`].
        theta: f64,
    },
}

impl Statistic {
    /// Units.
    pub fn n(&self) -> u64 {
        match self {
            Statistic::Mean { n, .. }
            | Statistic::Proportion { n, .. }
            | Statistic::Ratio { n, .. }
            | Statistic::Quantile { n, .. }
            | Statistic::RegressionAdjusted { n, .. } => *n,
        }
    }

    fn nf(&self) -> f64 {
        self.n() as f64
    }

    fn sum(&self) -> f64 {
        match self {
            Statistic::Mean { sum, .. } | Statistic::Proportion { sum, .. } => *sum,
            Statistic::RegressionAdjusted { post, .. } => post.sum(),
            Statistic::Ratio { numerator, .. } => numerator.sum(),
            Statistic::Quantile { estimate, n, .. } => estimate * *n as f64,
        }
    }

    /// The (adjusted) mean.
    pub fn mean(&self) -> f64 {
        match self {
            Statistic::Mean { n, sum, .. } | Statistic::Proportion { n, sum } => {
                if *n == 0 {
                    0.0
                } else {
                    sum / *n as f64
                }
            }
            Statistic::RegressionAdjusted {
                post, pre, theta, ..
            } => post.mean() - theta * pre.mean(),
            Statistic::Ratio {
                numerator,
                denominator,
                ..
            } => {
                if denominator.sum() == 0.0 {
                    0.0
                } else {
                    numerator.sum() / denominator.sum()
                }
            }
            Statistic::Quantile { estimate, .. } => *estimate,
        }
    }

    /// The mean before any regression adjustment.
    pub fn unadjusted_mean(&self) -> f64 {
        match self {
            Statistic::RegressionAdjusted { post, .. } => post.mean(),
            other => other.mean(),
        }
    }

    /// The unit-level variance.
    pub fn variance(&self) -> f64 {
        match self {
            Statistic::Mean {
                n,
                sum,
                sum_squares,
            } => {
                if *n <= 1 {
                    0.0
                } else {
                    let n = *n as f64;
                    (sum_squares - sum * sum / n) / (n - 1.0)
                }
            }
            Statistic::Proportion { .. } => {
                let m = self.mean();
                m * (1.0 - m)
            }
            Statistic::RegressionAdjusted {
                n,
                post,
                pre,
                theta,
                ..
            } => {
                if *n <= 1 {
                    0.0
                } else {
                    post.variance() + theta * theta * pre.variance()
                        - 2.0 * theta * self.covariance()
                }
            }
            Statistic::Ratio {
                n,
                numerator: m,
                denominator: d,
                ..
            } => {
                let dm = d.mean();
                if dm == 0.0 || *n <= 1 {
                    0.0
                } else {
                    m.variance() / (dm * dm) - 2.0 * self.covariance() * m.mean() / dm.powi(3)
                        + m.mean() * m.mean() * d.variance() / dm.powi(4)
                }
            }
            Statistic::Quantile { n, .. } => {
                let v = self.quantile_variance_init();
                if *n < 100 {
                    v
                } else {
                    v.max(1e-5)
                }
            }
        }
    }

    /// The variance implied by the quantile's interval, before the floor gbstats applies.
    fn quantile_variance_init(&self) -> f64 {
        match self {
            Statistic::Quantile {
                n,
                n_star,
                lower,
                upper,
                ..
            } if *n > 1 => {
                let nf = *n as f64;
                let den = 2.0 * norm_ppf(0.975);
                let w = (upper - lower) / den;
                (*n_star as f64 / nf) * (nf - 1.0) * w * w
            }
            _ => 0.0,
        }
    }

    fn covariance(&self) -> f64 {
        match self {
            Statistic::RegressionAdjusted {
                n,
                post: a,
                pre: b,
                cross_sum,
                ..
            }
            | Statistic::Ratio {
                n,
                numerator: a,
                denominator: b,
                cross_sum,
            } if *n > 1 => {
                let nf = *n as f64;
                (cross_sum - a.sum() * b.sum() / nf) / (nf - 1.0)
            }
            _ => 0.0,
        }
    }

    fn has_zero_variance(&self) -> bool {
        if let Statistic::Quantile { n, nu, .. } = self {
            // too few events for the interval to stay inside the data
            let m2 = norm_ppf(0.975).powi(2);
            let nf = *n as f64;
            if nf <= m2 * nu / (1.0 - nu) || nf <= m2 * (1.0 - nu) / nu {
                return true;
            }
            return self.quantile_variance_init() <= 0.0 && *n < 1000;
        }
        self.variance() <= 0.0
    }
}

fn joint(a: &Statistic, b: &Statistic, n: u64) -> Option<Statistic> {
    match (a, b) {
        (Statistic::Proportion { sum: sa, .. }, Statistic::Proportion { sum: sb, .. }) => {
            Some(Statistic::Proportion { n, sum: sa + sb })
        }
        (
            Statistic::Mean {
                sum: sa,
                sum_squares: qa,
                ..
            },
            Statistic::Mean {
                sum: sb,
                sum_squares: qb,
                ..
            },
        ) => Some(Statistic::Mean {
            n,
            sum: sa + sb,
            sum_squares: qa + qb,
        }),
        _ => None,
    }
}

/// The CUPED coefficient pooled over both arms: cov(post, pre) / var(pre); zero when
/// either pooled variance is zero (then the test runs unadjusted).
pub fn cuped_theta(a: &Statistic, b: &Statistic) -> f64 {
    let (
        Statistic::RegressionAdjusted {
            n: na,
            post: post_a,
            pre: pre_a,
            cross_sum: ca,
            ..
        },
        Statistic::RegressionAdjusted {
            n: nb,
            post: post_b,
            pre: pre_b,
            cross_sum: cb,
            ..
        },
    ) = (a, b)
    else {
        return 0.0;
    };
    let n = na + nb;
    let (Some(jpost), Some(jpre)) = (joint(post_a, post_b, n), joint(pre_a, pre_b, n)) else {
        return 0.0;
    };
    if jpre.variance() == 0.0 || jpost.variance() == 0.0 {
        return 0.0;
    }
    let pre_var = jpre.variance();
    let j = Statistic::RegressionAdjusted {
        n,
        post: Box::new(jpost),
        pre: Box::new(jpre),
        cross_sum: ca + cb,
        theta: 0.0,
    };
    j.covariance() / pre_var
}

/// Prepares a pair for testing: CUPED pairs get their pooled theta, or fall back to the
/// unadjusted metric when theta is zero. Returns the pair and theta.
pub fn prepare(a: &Statistic, b: &Statistic) -> (Statistic, Statistic, Option<f64>) {
    match (a, b) {
        (
            Statistic::RegressionAdjusted { post: pa, .. },
            Statistic::RegressionAdjusted { post: pb, .. },
        ) => {
            let theta = cuped_theta(a, b);
            if theta == 0.0 {
                ((**pa).clone(), (**pb).clone(), Some(0.0))
            } else {
                let set = |s: &Statistic| match s.clone() {
                    Statistic::RegressionAdjusted {
                        n,
                        post,
                        pre,
                        cross_sum,
                        ..
                    } => Statistic::RegressionAdjusted {
                        n,
                        post,
                        pre,
                        cross_sum,
                        theta,
                    },
                    other => other,
                };
                (set(a), set(b), Some(theta))
            }
        }
        _ => (a.clone(), b.clone(), None),
    }
}

/// Absolute (`B − A`) or relative (`(B − A) / A`) effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// B − A.
    Absolute,
    /// (B − A) / A, by the delta method.
    Relative,
}

/// A frequentist result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrequentistResult {
    /// Point estimate of the effect.
    pub estimate: f64,
    /// Lower end of the confidence interval.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// Standard error of the estimate.
    pub se: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Set when the inputs were degenerate.
    pub error: Option<Degenerate>,
}

impl FrequentistResult {
    fn degenerate(reason: Degenerate) -> Self {
        FrequentistResult {
            estimate: 0.0,
            ci_low: 0.0,
            ci_high: 0.0,
            se: 0.0,
            p_value: 1.0,
            error: Some(reason),
        }
    }
}

fn diff(mean_a: f64, mean_b: f64, relative: bool, unadjusted_a: f64) -> f64 {
    let base = if unadjusted_a == 0.0 {
        mean_a
    } else {
        unadjusted_a
    };
    if relative {
        (mean_b - mean_a) / base
    } else {
        mean_b - mean_a
    }
}

#[allow(clippy::too_many_arguments)]
fn effect_variance(
    var_a: f64,
    mean_a: f64,
    n_a: f64,
    var_b: f64,
    mean_b: f64,
    n_b: f64,
    relative: bool,
) -> f64 {
    if relative {
        var_b / (mean_a * mean_a * n_b) + var_a * mean_b * mean_b / (mean_a.powi(4) * n_a)
    } else {
        var_b / n_b + var_a / n_a
    }
}

struct Effect {
    estimate: f64,
    variance: f64,
}

fn effect(a: &Statistic, b: &Statistic, relative: bool) -> Effect {
    Effect {
        estimate: diff(a.mean(), b.mean(), relative, a.unadjusted_mean()),
        variance: effect_variance(
            a.variance(),
            a.unadjusted_mean(),
            a.nf(),
            b.variance(),
            b.unadjusted_mean(),
            b.nf(),
            relative,
        ),
    }
}

fn frequentist_checks(a: &Statistic, b: &Statistic) -> Option<Degenerate> {
    if a.mean() == 0.0 || a.unadjusted_mean() == 0.0 {
        return Some(Degenerate::ZeroBaseline);
    }
    if a.has_zero_variance() || b.has_zero_variance() {
        return Some(Degenerate::ZeroVariance);
    }
    None
}

/// Welch's two-sided t-test. `a` is control, `b` treatment (already [`prepare`]d).
pub fn ttest(
    a: &Statistic,
    b: &Statistic,
    difference: Difference,
    alpha: f64,
) -> FrequentistResult {
    if let Some(reason) = frequentist_checks(a, b) {
        return FrequentistResult::degenerate(reason);
    }
    let e = effect(a, b, difference == Difference::Relative);
    let (va, vb, na, nb) = (a.variance(), b.variance(), a.nf(), b.nf());
    let dof = (vb / nb + va / na).powi(2)
        / (vb * vb / (nb * nb * (nb - 1.0)) + va * va / (na * na * (na - 1.0)));
    let se = e.variance.sqrt();
    let critical = e.estimate / se;
    let p_value = 2.0 * (1.0 - t_cdf(critical.abs(), dof));
    let width = t_ppf(1.0 - alpha / 2.0, dof) * se;
    FrequentistResult {
        estimate: e.estimate,
        ci_low: e.estimate - width,
        ci_high: e.estimate + width,
        se,
        p_value,
        error: None,
    }
}

/// The two-sided always-valid test: a normal-mixture confidence sequence whose mixing
/// variance is tuned for `tuning` total units. Valid under continuous peeking.
pub fn sequential_ttest(
    a: &Statistic,
    b: &Statistic,
    difference: Difference,
    alpha: f64,
    tuning: f64,
) -> FrequentistResult {
    if let Some(reason) = frequentist_checks(a, b) {
        return FrequentistResult::degenerate(reason);
    }
    let e = effect(a, b, difference == Difference::Relative);
    let n = a.nf() + b.nf();
    let rho = ((-2.0 * alpha.ln() + (-2.0 * alpha.ln() + 1.0).ln()) / tuning).sqrt();
    let s2 = e.variance * n;
    let nr2p1 = n * rho * rho + 1.0;
    let width =
        s2.sqrt() * ((2.0 * nr2p1) * (nr2p1.sqrt() / alpha).ln() / (n * rho).powi(2)).sqrt();
    let st2 = e.estimate * e.estimate * n / e.variance;
    let evalue = (rho * rho * st2 / (2.0 * nr2p1)).exp() / nr2p1.sqrt();
    FrequentistResult {
        estimate: e.estimate,
        ci_low: e.estimate - width,
        ci_high: e.estimate + width,
        se: e.variance.sqrt(),
        p_value: (1.0 / evalue).min(1.0),
        error: None,
    }
}

/// A Gaussian prior on the effect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianPrior {
    /// Prior mean.
    pub mean: f64,
    /// Prior variance.
    pub variance: f64,
    /// Whether the prior is used; an improper (flat) prior leaves the data alone.
    pub proper: bool,
}

impl Default for GaussianPrior {
    /// The flat prior gbstats uses by default.
    fn default() -> Self {
        GaussianPrior {
            mean: 0.0,
            variance: 1.0,
            proper: false,
        }
    }
}

/// Whether the prior is stated on the relative or the absolute scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PriorScale {
    /// Relative effect (the gbstats default).
    #[default]
    Relative,
    /// Absolute effect.
    Absolute,
}

/// A Bayesian result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BayesianResult {
    /// Posterior mean of the effect.
    pub estimate: f64,
    /// Lower end of the credible interval.
    pub ci_low: f64,
    /// Upper end.
    pub ci_high: f64,
    /// Posterior standard deviation.
    pub se: f64,
    /// Probability that treatment beats control (for an inverse metric: is lower).
    pub chance_to_win: f64,
    /// Expected loss of choosing control.
    pub risk_control: f64,
    /// Expected loss of choosing treatment.
    pub risk_treatment: f64,
    /// Set when the inputs were degenerate.
    pub error: Option<Degenerate>,
}

/// Settings of a Bayesian test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BayesianConfig {
    /// 1 − credibility of the interval.
    pub alpha: f64,
    /// Lower values are better (e.g. cost, bounce rate).
    pub inverse: bool,
    /// Prior on the effect.
    pub prior: GaussianPrior,
    /// Scale the prior is given on.
    pub prior_scale: PriorScale,
}

impl Default for BayesianConfig {
    fn default() -> Self {
        BayesianConfig {
            alpha: 0.05,
            inverse: false,
            prior: GaussianPrior::default(),
            prior_scale: PriorScale::Relative,
        }
    }
}

/// The mean of N(mu, sigma²) truncated to (lo, hi), in standardized bounds.
fn truncated_normal_mean(mu: f64, sigma: f64, lo: f64, hi: f64) -> f64 {
    let (a, b) = ((lo - mu) / sigma, (hi - mu) / sigma);
    let pdf = |z: f64| if z.is_infinite() { 0.0 } else { norm_pdf(z) };
    // mass in the tail that keeps precision
    let mass = if a.is_infinite() {
        norm_cdf(b)
    } else if b.is_infinite() {
        norm_cdf(-a)
    } else {
        norm_cdf(b) - norm_cdf(a)
    };
    mu + sigma * (pdf(a) - pdf(b)) / mass
}

/// The Gaussian Bayesian effect test.
pub fn bayesian_test(
    a: &Statistic,
    b: &Statistic,
    difference: Difference,
    config: &BayesianConfig,
) -> BayesianResult {
    let relative = difference == Difference::Relative;
    let degenerate = |reason| BayesianResult {
        estimate: 0.0,
        ci_low: 0.0,
        ci_high: 0.0,
        se: 0.0,
        chance_to_win: 0.5,
        risk_control: 0.0,
        risk_treatment: 0.0,
        error: Some(reason),
    };
    let base = a.unadjusted_mean();
    let prior = match (relative, config.prior_scale) {
        (true, PriorScale::Absolute) => GaussianPrior {
            mean: config.prior.mean / base.abs(),
            variance: config.prior.variance / (base * base),
            proper: config.prior.proper,
        },
        (false, PriorScale::Relative) => GaussianPrior {
            mean: config.prior.mean * base.abs(),
            variance: config.prior.variance * base * base,
            proper: config.prior.proper,
        },
        _ => config.prior,
    };
    if relative && (a.mean() == 0.0 || base == 0.0) {
        return degenerate(Degenerate::ZeroBaseline);
    }
    if a.n() == 0 || b.n() == 0 {
        return degenerate(Degenerate::NoUnits);
    }
    if a.has_zero_variance() || b.has_zero_variance() {
        return degenerate(Degenerate::ZeroVariance);
    }
    let e = effect(a, b, relative);
    let (mean, precision) = if prior.proper {
        let precision = 1.0 / e.variance + 1.0 / prior.variance;
        (
            (e.estimate / e.variance + prior.mean / prior.variance) / precision,
            precision,
        )
    } else {
        (e.estimate, 1.0 / e.variance)
    };
    let sd = (1.0 / precision).sqrt();
    let win = norm_cdf(mean / sd);
    let chance_to_win = if config.inverse { 1.0 - win } else { win };
    let ci_low = mean + sd * norm_ppf(config.alpha / 2.0);
    let ci_high = mean + sd * norm_ppf(1.0 - config.alpha / 2.0);
    let p_control_better = norm_cdf(-mean / sd);
    let mean_neg = truncated_normal_mean(mean, sd, f64::NEG_INFINITY, 0.0);
    let mean_pos = truncated_normal_mean(mean, sd, 0.0, f64::INFINITY);
    // A zero weight makes the risk zero even where the truncated mean has no mass left
    // to be computed from (gbstats gets 0 there too).
    let weighted = |w: f64, m: f64| if w == 0.0 { 0.0 } else { w * m };
    let risk_ctrl = weighted(1.0 - p_control_better, mean_pos);
    let risk_trt = -weighted(p_control_better, mean_neg);
    let (risk_control, risk_treatment) = if config.inverse {
        (risk_trt, risk_ctrl)
    } else {
        (risk_ctrl, risk_trt)
    };
    BayesianResult {
        estimate: mean,
        ci_low,
        ci_high,
        se: sd,
        chance_to_win,
        risk_control,
        risk_treatment,
        error: None,
    }
}

/// Sample-ratio mismatch: the chi-square p-value of observed unit counts against the
/// intended weights. Arms with zero weight are skipped; no units gives 1.
pub fn srm_p_value(counts: &[f64], weights: &[f64]) -> f64 {
    let total: f64 = counts.iter().sum();
    if total == 0.0 {
        return 1.0;
    }
    let total_weight: f64 = weights.iter().sum();
    let mut x = 0.0;
    for (o, w) in counts.iter().zip(weights) {
        if *w <= 0.0 {
            continue;
        }
        let e = w / total_weight * total;
        x += (o - e) * (o - e) / e;
    }
    chi2_sf(x, counts.len() as f64 - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean(n: u64, sum: f64, ss: f64) -> Statistic {
        Statistic::Mean {
            n,
            sum,
            sum_squares: ss,
        }
    }

    #[test]
    fn degenerate_inputs_answer_like_gbstats() {
        let zero = Statistic::Proportion { n: 100, sum: 0.0 };
        let some = Statistic::Proportion { n: 100, sum: 10.0 };
        let r = ttest(&zero, &some, Difference::Relative, 0.05);
        assert_eq!(r.error, Some(Degenerate::ZeroBaseline));
        assert_eq!((r.p_value, r.estimate), (1.0, 0.0));
        let flat = mean(10, 10.0, 10.0);
        let r = ttest(&flat, &some, Difference::Absolute, 0.05);
        assert_eq!(r.error, Some(Degenerate::ZeroVariance));
        let empty = Statistic::Proportion { n: 0, sum: 0.0 };
        let r = bayesian_test(
            &some,
            &empty,
            Difference::Absolute,
            &BayesianConfig::default(),
        );
        assert_eq!(r.error, Some(Degenerate::NoUnits));
        assert_eq!(r.chance_to_win, 0.5);
    }

    #[test]
    fn a_clear_winner_has_a_small_p_value_and_high_chance_to_win() {
        let a = Statistic::Proportion {
            n: 10_000,
            sum: 500.0,
        };
        let b = Statistic::Proportion {
            n: 10_000,
            sum: 650.0,
        };
        let t = ttest(&a, &b, Difference::Relative, 0.05);
        assert!((t.estimate - 0.3).abs() < 1e-12);
        assert!(t.p_value < 1e-4 && t.ci_low > 0.0);
        let s = sequential_ttest(&a, &b, Difference::Relative, 0.05, 5000.0);
        assert!(
            s.ci_high - s.ci_low > t.ci_high - t.ci_low,
            "sequential intervals are wider"
        );
        let bayes = bayesian_test(&a, &b, Difference::Relative, &BayesianConfig::default());
        assert!(bayes.chance_to_win > 0.999);
        assert!(bayes.risk_treatment < bayes.risk_control);
    }

    #[test]
    fn srm_detects_a_skewed_split() {
        assert!(srm_p_value(&[5000.0, 5050.0], &[0.5, 0.5]) > 0.5);
        assert!(srm_p_value(&[5000.0, 5600.0], &[0.5, 0.5]) < 1e-6);
        assert_eq!(srm_p_value(&[0.0, 0.0], &[0.5, 0.5]), 1.0);
    }
}
