//! Media transformations: carry-over (adstock) and diminishing returns (saturation), as
//! PyMC-Marketing defines them, with derivatives in their parameters for the sampler.

use super::prior::Prior;

/// How spend carries over into later weeks. Weights are normalised to sum to one, so the
/// adstocked series keeps the spend's scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adstock {
    /// `w_l ∝ alpha^l`, l = 0..l_max (PyMC-Marketing's `GeometricAdstock`).
    Geometric {
        /// Longest lag in weeks (weights for lags 0..l_max).
        l_max: usize,
    },
    /// `w_l ∝` the Weibull density at `l + 1` with scale `lam` and shape `k`, min–max
    /// scaled (PyMC-Marketing's `WeibullPDFAdstock`).
    WeibullPdf {
        /// Longest lag in weeks.
        l_max: usize,
    },
}

impl Adstock {
    /// Longest lag in weeks.
    pub fn l_max(&self) -> usize {
        match *self {
            Adstock::Geometric { l_max } | Adstock::WeibullPdf { l_max } => l_max,
        }
    }

    /// Parameter names, in the order of every parameter slice.
    pub fn parameter_names(&self) -> &'static [&'static str] {
        match self {
            Adstock::Geometric { .. } => &["alpha"],
            Adstock::WeibullPdf { .. } => &["lam", "k"],
        }
    }

    /// PyMC-Marketing's default priors of the parameters.
    pub fn default_priors(&self) -> Vec<Prior> {
        match self {
            Adstock::Geometric { .. } => vec![Prior::Beta {
                alpha: 1.0,
                beta: 3.0,
            }],
            Adstock::WeibullPdf { .. } => vec![
                Prior::gamma_from_moments(2.0, 1.0),
                Prior::gamma_from_moments(3.0, 1.0),
            ],
        }
    }

    /// Writes the lag weights into `w` (`l_max` values) and their derivative in
    /// parameter `j` into `dw[j * l_max..][..l_max]`.
    pub fn weights(&self, params: &[f64], w: &mut [f64], dw: &mut [f64]) {
        let l_max = self.l_max();
        match self {
            Adstock::Geometric { .. } => {
                let alpha = params[0];
                let mut power = 1.0;
                let (mut sum, mut dsum) = (0.0, 0.0);
                for l in 0..l_max {
                    w[l] = power;
                    // d(alpha^l)/d(alpha) = l alpha^(l-1)
                    dw[l] = if l == 0 {
                        0.0
                    } else {
                        l as f64 * alpha.powi(l as i32 - 1)
                    };
                    sum += w[l];
                    dsum += dw[l];
                    power *= alpha;
                }
                for l in 0..l_max {
                    dw[l] = (dw[l] - w[l] / sum * dsum) / sum;
                    w[l] /= sum;
                }
            }
            Adstock::WeibullPdf { .. } => {
                let (lam, k) = (params[0], params[1]);
                // Density and its derivatives at t = 1..=l_max.
                let mut p = vec![0.0; l_max];
                let mut dp = vec![0.0; 2 * l_max];
                for l in 0..l_max {
                    let t = (l + 1) as f64;
                    let ratio = t / lam;
                    let rk = ratio.powf(k);
                    let log_ratio = ratio.ln();
                    p[l] = k / lam * ratio.powf(k - 1.0) * (-rk).exp();
                    dp[l] = p[l] * (k / lam) * (rk - 1.0);
                    dp[l_max + l] = p[l] * (1.0 / k + log_ratio - rk * log_ratio);
                }
                let (lo, hi) = (argmin(&p), argmax(&p));
                let range = p[hi] - p[lo];
                if l_max == 1 || range <= f64::MIN_POSITIVE {
                    w.iter_mut().for_each(|x| *x = 1.0 / l_max as f64);
                    dw.iter_mut().for_each(|x| *x = 0.0);
                    return;
                }
                // Min–max scale, then normalise to sum one.
                let mut m = vec![0.0; l_max];
                let mut dm = vec![0.0; 2 * l_max];
                for l in 0..l_max {
                    m[l] = (p[l] - p[lo]) / range;
                    for j in 0..2 {
                        let d = |i: usize| dp[j * l_max + i];
                        dm[j * l_max + l] = (d(l) - d(lo)) / range - m[l] * (d(hi) - d(lo)) / range;
                    }
                }
                let sum: f64 = m.iter().sum();
                for j in 0..2 {
                    let dsum: f64 = dm[j * l_max..(j + 1) * l_max].iter().sum();
                    for l in 0..l_max {
                        dw[j * l_max + l] = (dm[j * l_max + l] - m[l] / sum * dsum) / sum;
                    }
                }
                for l in 0..l_max {
                    w[l] = m[l] / sum;
                }
            }
        }
    }
}

fn argmin(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] < v[best] { i } else { best })
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

/// Diminishing returns of (adstocked, scaled) spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saturation {
    /// `beta · (1 − e^(−lam·x)) / (1 + e^(−lam·x))` (PyMC-Marketing's `LogisticSaturation`).
    Logistic,
    /// `beta · x^slope / (x^slope + kappa^slope)` (PyMC-Marketing's `HillSaturation`).
    Hill,
}

impl Saturation {
    /// Parameter names, in the order of every parameter slice.
    pub fn parameter_names(&self) -> &'static [&'static str] {
        match self {
            Saturation::Logistic => &["lam", "beta"],
            Saturation::Hill => &["slope", "kappa", "beta"],
        }
    }

    /// PyMC-Marketing's default priors of the parameters.
    pub fn default_priors(&self) -> Vec<Prior> {
        match self {
            Saturation::Logistic => vec![
                Prior::Gamma {
                    alpha: 3.0,
                    beta: 1.0,
                },
                Prior::HalfNormal { sigma: 2.0 },
            ],
            Saturation::Hill => vec![
                Prior::HalfNormal { sigma: 1.5 },
                Prior::HalfNormal { sigma: 1.5 },
                Prior::HalfNormal { sigma: 1.5 },
            ],
        }
    }

    /// The response at `x ≥ 0`.
    pub fn value(&self, x: f64, params: &[f64]) -> f64 {
        self.apply(x, params, &mut [0.0; 3]).0
    }

    /// The response at `x ≥ 0`, its derivative in `x`, and (written into `d_params`)
    /// its derivatives in each parameter.
    pub fn apply(&self, x: f64, params: &[f64], d_params: &mut [f64; 3]) -> (f64, f64) {
        match self {
            Saturation::Logistic => {
                let (lam, beta) = (params[0], params[1]);
                // tanh(z / 2) written with one exponential (z = lam·x ≥ 0).
                let e = (-lam * x).exp();
                let f = (1.0 - e) / (1.0 + e);
                let slope = 0.5 * (1.0 - f * f);
                d_params[0] = beta * x * slope;
                d_params[1] = f;
                (beta * f, beta * lam * slope)
            }
            Saturation::Hill => {
                let (s, kappa, beta) = (params[0], params[1], params[2]);
                if x <= 0.0 {
                    *d_params = [0.0; 3];
                    return (0.0, 0.0);
                }
                let h = 1.0 / (1.0 + (kappa / x).powf(s));
                let hh = h * (1.0 - h);
                d_params[0] = beta * hh * (x / kappa).ln();
                d_params[1] = -beta * hh * s / kappa;
                d_params[2] = h;
                (beta * h, beta * hh * s / x)
            }
        }
    }
}

/// `apply` over a whole series: `values[t]`, `slopes[t]` (d/dx) and
/// `d_params[j * n + t]` for parameter `j`. The logistic curve runs without a call per
/// element, so the loop vectorises.
pub fn saturate_series(
    saturation: Saturation,
    x: &[f64],
    params: &[f64],
    values: &mut [f64],
    slopes: &mut [f64],
    d_params: &mut [f64],
) {
    let n = x.len();
    match saturation {
        Saturation::Logistic => {
            let (lam, beta) = (params[0], params[1]);
            let (d_lam, d_beta) = d_params.split_at_mut(n);
            for t in 0..n {
                // tanh(z / 2) with one exponential (z = lam·x ≥ 0).
                let e = exp_non_positive(-lam * x[t]);
                let f = (1.0 - e) / (1.0 + e);
                let slope = 0.5 * (1.0 - f * f);
                values[t] = beta * f;
                slopes[t] = beta * lam * slope;
                d_lam[t] = beta * x[t] * slope;
                d_beta[t] = f;
            }
        }
        Saturation::Hill => {
            let mut d = [0.0; 3];
            for t in 0..n {
                let (v, s) = saturation.apply(x[t], params, &mut d);
                values[t] = v;
                slopes[t] = s;
                for (j, dj) in d.iter().enumerate().take(3) {
                    d_params[j * n + t] = *dj;
                }
            }
        }
    }
}

/// `e^x` for `x ≤ 0` (0 below −700), within 2 ulp: `2^k · p(r)` with `r = x − k ln 2`,
/// `|r| ≤ ln 2 / 2`, `p` the degree-13 Taylor polynomial; branch-free so loops over it
/// vectorise.
#[inline(always)]
pub fn exp_non_positive(x: f64) -> f64 {
    const LOG2_E: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    // 1.5 · 2^52: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let x = x.max(-700.0);
    let shifted = x * LOG2_E + ROUND;
    let k = shifted - ROUND;
    let k_int = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i64;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0;
    for c in [
        1.0 / 479_001_600.0,
        1.0 / 39_916_800.0,
        1.0 / 3_628_800.0,
        1.0 / 362_880.0,
        1.0 / 40_320.0,
        1.0 / 5_040.0,
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    p * f64::from_bits(((k_int + 1023) as u64) << 52)
}

/// `out[t] = Σ_l w[l] · x[t − l]` (no spend before the first week).
pub fn convolve(x: &[f64], w: &[f64], out: &mut [f64]) {
    // One shifted multiply-add per lag: vectorises, unlike a sum per output.
    out.iter_mut().for_each(|o| *o = 0.0);
    for (l, &wl) in w.iter().enumerate().take(x.len()) {
        for (o, v) in out[l..].iter_mut().zip(x) {
            *o += wl * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometric_weights_decay_and_sum_to_one() {
        let mut w = [0.0; 4];
        let mut dw = [0.0; 4];
        Adstock::Geometric { l_max: 4 }.weights(&[0.5], &mut w, &mut dw);
        let sum = 1.0 + 0.5 + 0.25 + 0.125;
        assert!((w[0] - 1.0 / sum).abs() < 1e-12 && (w[3] - 0.125 / sum).abs() < 1e-12);
        assert!((dw.iter().sum::<f64>()).abs() < 1e-12);
    }

    #[test]
    fn weight_derivatives_match_finite_differences() {
        for (adstock, params) in [
            (Adstock::Geometric { l_max: 8 }, vec![0.37]),
            (Adstock::WeibullPdf { l_max: 8 }, vec![2.3, 1.7]),
        ] {
            let l_max = adstock.l_max();
            let n = params.len();
            let (mut w, mut dw) = (vec![0.0; l_max], vec![0.0; n * l_max]);
            adstock.weights(&params, &mut w, &mut dw);
            for j in 0..n {
                let h = 1e-6;
                let (mut up, mut down) = (params.clone(), params.clone());
                up[j] += h;
                down[j] -= h;
                let (mut wu, mut wd, mut scratch) =
                    (vec![0.0; l_max], vec![0.0; l_max], vec![0.0; n * l_max]);
                adstock.weights(&up, &mut wu, &mut scratch);
                adstock.weights(&down, &mut wd, &mut scratch);
                for l in 0..l_max {
                    let numeric = (wu[l] - wd[l]) / (2.0 * h);
                    assert!(
                        (dw[j * l_max + l] - numeric).abs() < 1e-6,
                        "{adstock:?} param {j} lag {l}: {} vs {numeric}",
                        dw[j * l_max + l]
                    );
                }
            }
        }
    }

    #[test]
    fn saturation_derivatives_match_finite_differences() {
        for (saturation, params) in [
            (Saturation::Logistic, vec![3.0, 0.4]),
            (Saturation::Hill, vec![1.8, 0.6, 0.9]),
        ] {
            for x in [0.05, 0.4, 1.3] {
                let mut d = [0.0; 3];
                let (_, dx) = saturation.apply(x, &params, &mut d);
                let h = 1e-6;
                let numeric = (saturation.value(x + h, &params) - saturation.value(x - h, &params))
                    / (2.0 * h);
                assert!((dx - numeric).abs() < 1e-6);
                for j in 0..params.len() {
                    let (mut up, mut down) = (params.clone(), params.clone());
                    up[j] += h;
                    down[j] -= h;
                    let numeric =
                        (saturation.value(x, &up) - saturation.value(x, &down)) / (2.0 * h);
                    assert!((d[j] - numeric).abs() < 1e-6, "{saturation:?} {j} at {x}");
                }
            }
        }
        // The logistic curve at lam·x → ∞ is beta; the Hill curve is half of beta at kappa.
        assert!((Saturation::Logistic.value(100.0, &[3.0, 0.4]) - 0.4).abs() < 1e-12);
        assert!((Saturation::Hill.value(0.6, &[1.8, 0.6, 0.9]) - 0.45).abs() < 1e-12);
    }

    #[test]
    fn fast_exp_matches_the_standard_library() {
        let mut worst = 0.0_f64;
        for i in 0..200_000 {
            let x = -(i as f64) * 0.0035;
            let (ours, std) = (exp_non_positive(x), x.exp());
            worst = worst.max(((ours - std) / std).abs());
        }
        assert!(worst < 5e-16, "{worst}");
        assert_eq!(exp_non_positive(-1000.0), (-700.0_f64).exp());
    }

    #[test]
    fn series_saturation_equals_pointwise() {
        for (saturation, params) in [
            (Saturation::Logistic, vec![3.0, 0.4]),
            (Saturation::Hill, vec![1.8, 0.6, 0.9]),
        ] {
            let x = [0.0, 0.01, 0.3, 1.2, 5.0];
            let n = x.len();
            let (mut v, mut s, mut d) = (vec![0.0; n], vec![0.0; n], vec![0.0; 3 * n]);
            saturate_series(saturation, &x, &params, &mut v, &mut s, &mut d);
            for t in 0..n {
                let mut dp = [0.0; 3];
                let (value, slope) = saturation.apply(x[t], &params, &mut dp);
                assert!((v[t] - value).abs() < 1e-15 && (s[t] - slope).abs() < 1e-14);
                for j in 0..params.len() {
                    assert!((d[j * n + t] - dp[j]).abs() < 1e-14);
                }
            }
        }
    }
}
