//! Drift between a reference sample and a current one: the population stability index
//! as Evidently computes it, the two-sample Kolmogorov–Smirnov test as
//! `scipy.stats.ks_2samp` computes it, and drift of embedding sets.
//!
//! The golden test compares every figure with Evidently and SciPy
//! (`scripts/drift_golden.py`).

/// Why a drift statistic cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriftError {
    /// One of the samples is empty.
    #[error("the {0} sample is empty")]
    Empty(&'static str),
    /// A value is NaN or infinite.
    #[error("the {0} sample holds a value that is not a finite number")]
    NotFinite(&'static str),
    /// Embeddings of different dimensions.
    #[error("embeddings of dimension {0} and {1}")]
    Dimension(usize, usize),
}

fn check(values: &[f64], which: &'static str) -> Result<(), DriftError> {
    if values.is_empty() {
        return Err(DriftError::Empty(which));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(DriftError::NotFinite(which));
    }
    Ok(())
}

/// How a feature's values are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    /// Numbers: binned when there are more than 20 distinct reference values.
    Numerical,
    /// Categories (coded as numbers): one bin per value.
    Categorical,
}

/// Population stability index of `current` against `reference`, as Evidently's `psi`
/// test computes it: a numerical feature with more than 20 distinct reference values is
/// cut into equal-width bins over the range of both samples, as many as Sturges' rule
/// gives for both together (NumPy's `histogram_bin_edges(…, bins="sturges")`);
/// otherwise every distinct value is its own bin. Empty bins get a small share (0.0001,
/// or a millionth of the smallest non-empty share when that is at most 0.0001).
/// `PSI = Σ (ref − cur) · ln(ref / cur)`; Evidently calls ≥ 0.1 drift.
pub fn psi(reference: &[f64], current: &[f64], kind: FeatureKind) -> Result<f64, DriftError> {
    check(reference, "reference")?;
    check(current, "current")?;
    let (mut ref_share, mut cur_share) = binned_shares(reference, current, kind);
    fill_zeros(&mut ref_share);
    fill_zeros(&mut cur_share);
    Ok(ref_share
        .iter()
        .zip(&cur_share)
        .map(|(r, c)| (r - c) * (r / c).ln())
        .sum())
}

/// Evidently's threshold: a PSI at or above it is drift.
pub const PSI_DRIFT: f64 = 0.1;

fn distinct(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    sorted
}

fn binned_shares(reference: &[f64], current: &[f64], kind: FeatureKind) -> (Vec<f64>, Vec<f64>) {
    let share = |counts: Vec<usize>, n: usize| -> Vec<f64> {
        counts.into_iter().map(|c| c as f64 / n as f64).collect()
    };
    if kind == FeatureKind::Numerical && distinct(reference).len() > 20 {
        let edges = sturges_edges(reference, current);
        (
            share(histogram(reference, &edges), reference.len()),
            share(histogram(current, &edges), current.len()),
        )
    } else {
        let mut keys = reference.to_vec();
        keys.extend_from_slice(current);
        let keys = distinct(&keys);
        let count = |values: &[f64]| -> Vec<usize> {
            let mut counts = vec![0; keys.len()];
            for v in values {
                if let Ok(i) = keys.binary_search_by(|k| k.total_cmp(v)) {
                    counts[i] += 1;
                }
            }
            counts
        };
        (
            share(count(reference), reference.len()),
            share(count(current), current.len()),
        )
    }
}

/// `numpy.histogram_bin_edges(concat(a, b), bins="sturges")`.
fn sturges_edges(a: &[f64], b: &[f64]) -> Vec<f64> {
    let (lo, hi) = a
        .iter()
        .chain(b)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let size = (a.len() + b.len()) as f64;
    let width = (hi - lo) / (size.log2() + 1.0);
    let (lo, hi, bins) = if width > 0.0 {
        (lo, hi, ((hi - lo) / width).ceil() as usize)
    } else {
        (lo - 0.5, hi + 0.5, 1)
    };
    // numpy.linspace: i·step + start, the last edge exactly `hi`.
    let step = (hi - lo) / bins as f64;
    let mut edges: Vec<f64> = (0..=bins).map(|i| i as f64 * step + lo).collect();
    edges[bins] = hi;
    edges
}

/// `numpy.histogram(values, edges)` with explicit edges: bin i holds
/// `edges[i] ≤ v < edges[i + 1]`, the last bin also its upper edge.
fn histogram(values: &[f64], edges: &[f64]) -> Vec<usize> {
    let bins = edges.len() - 1;
    let mut counts = vec![0; bins];
    for &v in values {
        if v < edges[0] || v > edges[bins] {
            continue;
        }
        let at_or_below = edges.partition_point(|e| *e <= v);
        counts[(at_or_below - 1).min(bins - 1)] += 1;
    }
    counts
}

fn fill_zeros(shares: &mut [f64]) {
    let smallest = shares
        .iter()
        .copied()
        .filter(|s| *s != 0.0)
        .fold(f64::INFINITY, f64::min);
    if !smallest.is_finite() {
        return;
    }
    let fill = if smallest <= 0.0001 {
        smallest / 1e6
    } else {
        0.0001
    };
    shares
        .iter_mut()
        .filter(|s| **s == 0.0)
        .for_each(|s| *s = fill);
}

/// A two-sample Kolmogorov–Smirnov test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsTest {
    /// Largest distance between the two empirical distribution functions.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether the p-value is exact (lattice paths) or asymptotic.
    pub exact: bool,
}

/// Largest sample size for which the p-value is computed exactly (SciPy's `MAX_AUTO_N`).
pub const KS_EXACT_MAX_N: usize = 10_000;

/// Two-sided two-sample Kolmogorov–Smirnov test, as `scipy.stats.ks_2samp` with
/// `method="auto"`: exact when both samples have at most 10,000 values (the probability
/// that a random interleaving of the two samples leaves the band, summed over first exits
/// so small p-values keep their precision), otherwise the Kolmogorov limit with
/// Stephens' correction (SciPy uses the one-sample distribution at n = mn/(m+n) there;
/// both agree to about 1e-3).
pub fn ks_2samp(reference: &[f64], current: &[f64]) -> Result<KsTest, DriftError> {
    check(reference, "reference")?;
    check(current, "current")?;
    let (mut a, mut b) = (reference.to_vec(), current.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (m, n) = (a.len(), b.len());
    // D·m·n as an integer: walk both sorted samples, stepping past ties together.
    let (mut i, mut j) = (0usize, 0usize);
    let mut largest: u128 = 0;
    while i < m || j < n {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        while i < m && a[i] == v {
            i += 1;
        }
        while j < n && b[j] == v {
            j += 1;
        }
        let gap = (i as i128 * n as i128 - j as i128 * m as i128).unsigned_abs();
        largest = largest.max(gap);
    }
    let g = gcd(m as u128, n as u128);
    let lcm = m as u128 / g * n as u128;
    let h = largest / g;
    let statistic = h as f64 / lcm as f64;
    if h == 0 {
        return Ok(KsTest {
            statistic,
            p_value: 1.0,
            exact: true,
        });
    }
    if m.max(n) <= KS_EXACT_MAX_N {
        let p = probability_outside(m, n, (h * g) as i128);
        return Ok(KsTest {
            statistic,
            p_value: p.clamp(0.0, 1.0),
            exact: true,
        });
    }
    let en = (m as f64 * n as f64 / (m + n) as f64).sqrt();
    Ok(KsTest {
        statistic,
        p_value: kolmogorov_sf((en + 0.12 + 0.11 / en) * statistic).clamp(0.0, 1.0),
        exact: false,
    })
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Probability that a uniformly random interleaving of `m` and `n` items (a lattice
/// path from (0, 0) to (m, n)) reaches a point with `|i·n − j·m| ≥ bound`: the
/// probability mass of every first step out of the band, so a tiny p-value is summed,
/// not found as 1 minus a number close to 1.
fn probability_outside(m: usize, n: usize, bound: i128) -> f64 {
    let inside = |i: usize, j: usize| (i as i128 * n as i128 - j as i128 * m as i128).abs() < bound;
    // row[j]: probability of standing at (i, j) having stayed inside so far.
    let mut row = vec![0.0_f64; n + 1];
    let mut next = vec![0.0_f64; n + 1];
    row[0] = 1.0;
    let mut outside = 0.0;
    for i in 0..=m {
        next.iter_mut().for_each(|v| *v = 0.0);
        for j in 0..=n {
            let p = row[j];
            if p == 0.0 {
                continue;
            }
            let left = (m - i + n - j) as f64;
            // The next item comes from the first sample with probability (m − i) / left.
            if i < m {
                let q = p * (m - i) as f64 / left;
                if inside(i + 1, j) {
                    next[j] += q;
                } else {
                    outside += q;
                }
            }
            if j < n {
                let q = p * (n - j) as f64 / left;
                if inside(i, j + 1) {
                    row[j + 1] += q;
                } else {
                    outside += q;
                }
            }
        }
        std::mem::swap(&mut row, &mut next);
    }
    outside
}

/// Survival function of the Kolmogorov distribution: `2 Σ (−1)^(k−1) e^(−2k²x²)`, or
/// one minus the CDF's theta series `√(2π)/x Σ e^(−(2k−1)²π²/(8x²))` below 1 where
/// that converges faster.
pub fn kolmogorov_sf(x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 1.0;
    }
    if x < 1.0 {
        let mut cdf = 0.0;
        for k in 1..=50 {
            let odd = (2 * k - 1) as f64;
            let term = (-odd * odd * PI * PI / (8.0 * x * x)).exp();
            cdf += term;
            if term < 1e-300 {
                break;
            }
        }
        return (1.0 - (2.0 * PI).sqrt() / x * cdf).clamp(0.0, 1.0);
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let term = (-2.0 * (k * k) as f64 * x * x).exp();
        sum += sign * term;
        if term < 1e-300 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// Drift of a set of embeddings: the cosine distance between the mean embedding of the
/// reference and that of the current set, with a permutation p-value (the share of
/// random splits of the pooled set, of the same sizes, whose distance is at least as
/// large; `permutations` splits, seeded).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbeddingDrift {
    /// Cosine distance between the two mean embeddings (0: same direction).
    pub distance: f64,
    /// Permutation p-value, `(1 + #{≥ distance}) / (1 + permutations)`.
    pub p_value: f64,
}

/// Embedding drift of `current` against `reference` (rows are embeddings).
pub fn embedding_drift(
    reference: &[Vec<f32>],
    current: &[Vec<f32>],
    permutations: usize,
    seed: u64,
) -> Result<EmbeddingDrift, DriftError> {
    let first = reference.first().ok_or(DriftError::Empty("reference"))?;
    if current.is_empty() {
        return Err(DriftError::Empty("current"));
    }
    let dim = first.len();
    for row in reference.iter().chain(current) {
        if row.len() != dim {
            return Err(DriftError::Dimension(dim, row.len()));
        }
        if row.iter().any(|v| !v.is_finite()) {
            return Err(DriftError::NotFinite("embedding"));
        }
    }
    let pooled: Vec<&Vec<f32>> = reference.iter().chain(current).collect();
    let split_distance = |order: &[usize]| -> f64 {
        let (mut a, mut b) = (vec![0.0_f64; dim], vec![0.0_f64; dim]);
        for (k, &i) in order.iter().enumerate() {
            let target = if k < reference.len() { &mut a } else { &mut b };
            target
                .iter_mut()
                .zip(pooled[i])
                .for_each(|(t, v)| *t += f64::from(*v));
        }
        cosine_distance(&a, &b)
    };
    let mut order: Vec<usize> = (0..pooled.len()).collect();
    let distance = split_distance(&order);
    let mut rng = crate::rng::Rng::seeded(seed);
    let mut at_least = 0usize;
    for _ in 0..permutations {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        if split_distance(&order) >= distance {
            at_least += 1;
        }
    }
    Ok(EmbeddingDrift {
        distance,
        p_value: (1 + at_least) as f64 / (1 + permutations) as f64,
    })
}

/// `1 − cos(a, b)` (sums or means alike: the scale does not matter).
fn cosine_distance(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    1.0 - dot / (na * nb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_have_no_drift() {
        let a: Vec<f64> = (0..100).map(f64::from).collect();
        assert!(psi(&a, &a, FeatureKind::Numerical).unwrap().abs() < 1e-12);
        let ks = ks_2samp(&a, &a).unwrap();
        assert_eq!((ks.statistic, ks.p_value), (0.0, 1.0));
    }

    #[test]
    fn shifted_samples_drift() {
        let a: Vec<f64> = (0..200).map(|i| f64::from(i) / 10.0).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 5.0).collect();
        assert!(psi(&a, &b, FeatureKind::Numerical).unwrap() > PSI_DRIFT);
        let ks = ks_2samp(&a, &b).unwrap();
        assert!((ks.statistic - 0.25).abs() < 1e-12 && ks.p_value < 1e-4);
    }

    #[test]
    fn exact_p_value_of_fully_separated_samples_is_the_binomial_count() {
        // Every interleaving but the two extremes stays inside: p = 2 / C(m + n, m).
        let a = [1.0, 2.0, 3.0];
        let b = [4.0, 5.0, 6.0, 7.0];
        let ks = ks_2samp(&a, &b).unwrap();
        assert_eq!(ks.statistic, 1.0);
        assert!((ks.p_value - 2.0 / 35.0).abs() < 1e-15, "{}", ks.p_value);
    }

    #[test]
    fn kolmogorov_series_agree_where_they_meet() {
        let (below, above) = (kolmogorov_sf(1.0 - 1e-12), kolmogorov_sf(1.0));
        assert!((below - above).abs() < 1e-10);
        assert!((kolmogorov_sf(1.36) - 0.0494).abs() < 5e-4);
    }

    #[test]
    fn embedding_drift_sees_a_shifted_cloud_and_not_a_resample() {
        let mut rng = crate::rng::Rng::seeded(2);
        let cloud = |rng: &mut crate::rng::Rng, shift: f32| -> Vec<Vec<f32>> {
            (0..100)
                .map(|_| {
                    (0..8)
                        .map(|d| rng.normal() as f32 + if d == 0 { shift } else { 1.0 })
                        .collect()
                })
                .collect()
        };
        let reference = cloud(&mut rng, 1.0);
        let same = cloud(&mut rng, 1.0);
        let moved = cloud(&mut rng, -1.0);
        assert!(embedding_drift(&reference, &same, 200, 1).unwrap().p_value > 0.05);
        let drift = embedding_drift(&reference, &moved, 200, 1).unwrap();
        assert!(drift.p_value < 0.01 && drift.distance > 0.05, "{drift:?}");
        assert_eq!(
            embedding_drift(&reference, &[vec![0.0; 3]], 10, 1),
            Err(DriftError::Dimension(8, 3))
        );
    }
}
