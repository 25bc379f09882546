//! Convergence diagnostics of Markov chains as ArviZ computes them (Vehtari, Gelman,
//! Simpson, Carpenter and Bürkner 2021): rank-normalised split R-hat, and bulk and tail
//! effective sample sizes from Geyer's initial monotone sequence. The golden test
//! compares every figure with `arviz` 0.23 on fixed chains.

use crate::special::norm_ppf;

/// Rank-normalised split R-hat: the larger of the bulk and the folded (tail) statistic.
/// `chains[c][d]` is draw `d` of chain `c`; every chain must be as long as the first.
/// NaN when there are fewer than 4 draws per chain.
pub fn rhat(chains: &[Vec<f64>]) -> f64 {
    let Some(split) = split_chains(chains) else {
        return f64::NAN;
    };
    let bulk = plain_rhat(&rank_normalise(&split));
    let mut all: Vec<f64> = split.iter().flatten().copied().collect();
    let median = median(&mut all);
    let folded: Vec<Vec<f64>> = split
        .iter()
        .map(|c| c.iter().map(|x| (x - median).abs()).collect())
        .collect();
    let tail = plain_rhat(&rank_normalise(&folded));
    bulk.max(tail)
}

/// Bulk effective sample size: ESS of the rank-normalised split chains.
pub fn ess_bulk(chains: &[Vec<f64>]) -> f64 {
    match split_chains(chains) {
        Some(split) => ess(&rank_normalise(&split)),
        None => f64::NAN,
    }
}

/// Tail effective sample size: the smaller ESS of the indicators of lying below the 5 %
/// and below the 95 % quantile.
pub fn ess_tail(chains: &[Vec<f64>]) -> f64 {
    let Some(split) = split_chains(chains) else {
        return f64::NAN;
    };
    let mut all: Vec<f64> = split.iter().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    let mut smallest = f64::INFINITY;
    for q in [0.05, 0.95] {
        let cut = quantile_sorted(&all, q);
        let indicator: Vec<Vec<f64>> = split
            .iter()
            .map(|c| c.iter().map(|&x| f64::from(u8::from(x <= cut))).collect())
            .collect();
        smallest = smallest.min(ess(&rank_normalise(&indicator)));
    }
    smallest
}

/// The `q` quantile of sorted values, interpolating linearly (NumPy's default).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = position - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * fraction
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    quantile_sorted(values, 0.5)
}

/// Each chain cut into its first and last halves (the middle draw of an odd chain is
/// left out, as ArviZ does).
fn split_chains(chains: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let draws = chains.first()?.len();
    if draws < 4 || chains.iter().any(|c| c.len() != draws) {
        return None;
    }
    let half = draws / 2;
    Some(
        chains
            .iter()
            .flat_map(|c| [c[..half].to_vec(), c[draws - half..].to_vec()])
            .collect(),
    )
}

/// Replaces every value by the normal quantile of its fractional rank over all chains
/// (average ranks for ties; Blom's offset 3/8).
fn rank_normalise(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut order: Vec<(f64, usize)> = chains
        .iter()
        .flatten()
        .copied()
        .enumerate()
        .map(|(i, x)| (x, i))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0));
    let size = order.len();
    let mut ranks = vec![0.0; size];
    let mut start = 0;
    while start < size {
        let mut end = start + 1;
        while end < size && order[end].0 == order[start].0 {
            end += 1;
        }
        // Ranks start + 1 ..= end share their average.
        let average = (start + 1 + end) as f64 / 2.0;
        for &(_, index) in &order[start..end] {
            ranks[index] = average;
        }
        start = end;
    }
    let draws = chains[0].len();
    ranks
        .chunks(draws)
        .map(|chunk| {
            chunk
                .iter()
                .map(|r| norm_ppf((r - 0.375) / (size as f64 + 0.25)))
                .collect()
        })
        .collect()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn variance(values: &[f64]) -> f64 {
    let m = mean(values);
    values.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (values.len() as f64 - 1.0)
}

/// Gelman–Rubin's potential scale reduction of (already split) chains.
fn plain_rhat(chains: &[Vec<f64>]) -> f64 {
    let draws = chains[0].len() as f64;
    let chain_means: Vec<f64> = chains.iter().map(|c| mean(c)).collect();
    let between = draws * variance(&chain_means);
    let within = mean(&chains.iter().map(|c| variance(c)).collect::<Vec<_>>());
    ((between / within + draws - 1.0) / draws).sqrt()
}

/// Biased autocovariance (divided by the length) of one chain at `lag`.
fn autocovariance(centred: &[f64], lag: usize) -> f64 {
    let n = centred.len();
    centred[..n - lag]
        .iter()
        .zip(&centred[lag..])
        .map(|(a, b)| a * b)
        .sum::<f64>()
        / n as f64
}

/// Effective sample size of several chains (Geyer's initial monotone sequence over the
/// multi-chain autocorrelation).
fn ess(chains: &[Vec<f64>]) -> f64 {
    let n_chain = chains.len();
    let n_draw = chains[0].len();
    let total = (n_chain * n_draw) as f64;
    let (lo, hi) = chains
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    if !lo.is_finite() || !hi.is_finite() {
        return f64::NAN;
    }
    if hi - lo < f64::EPSILON * 10.0 {
        return total;
    }
    let centred: Vec<Vec<f64>> = chains
        .iter()
        .map(|c| {
            let m = mean(c);
            c.iter().map(|x| x - m).collect()
        })
        .collect();
    let mean_acov = |lag: usize| -> f64 {
        centred.iter().map(|c| autocovariance(c, lag)).sum::<f64>() / n_chain as f64
    };
    let n = n_draw as f64;
    let mean_var = mean_acov(0) * n / (n - 1.0);
    let mut var_plus = mean_var * (n - 1.0) / n;
    if n_chain > 1 {
        var_plus += variance(&chains.iter().map(|c| mean(c)).collect::<Vec<_>>());
    }
    let rho = |lag: usize| 1.0 - (mean_var - mean_acov(lag)) / var_plus;
    let mut rho_hat = vec![0.0; n_draw];
    let mut even = 1.0;
    let mut odd = rho(1);
    rho_hat[0] = even;
    rho_hat[1] = odd;
    // Geyer's initial positive sequence.
    let mut t = 1;
    while t + 3 < n_draw && even + odd > 0.0 {
        even = rho(t + 1);
        odd = rho(t + 2);
        if even + odd >= 0.0 {
            rho_hat[t + 1] = even;
            rho_hat[t + 2] = odd;
        }
        t += 2;
    }
    let max_t = t.saturating_sub(2);
    if even > 0.0 && max_t + 1 < n_draw {
        rho_hat[max_t + 1] = even;
    }
    // Geyer's initial monotone sequence.
    let mut t = 1;
    while t + 2 <= max_t {
        if rho_hat[t + 1] + rho_hat[t + 2] > rho_hat[t - 1] + rho_hat[t] {
            rho_hat[t + 1] = (rho_hat[t - 1] + rho_hat[t]) / 2.0;
            rho_hat[t + 2] = rho_hat[t + 1];
        }
        t += 2;
    }
    let tail = rho_hat.get(max_t + 1).copied().unwrap_or(0.0);
    let tau = -1.0 + 2.0 * rho_hat[..=max_t].iter().sum::<f64>() + tail;
    let tau = tau.max(1.0 / total.log10());
    if rho_hat.iter().any(|r| r.is_nan()) {
        return f64::NAN;
    }
    total / tau
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_chains_of_independent_draws_have_rhat_near_one_and_full_ess() {
        let mut rng = crate::rng::Rng::seeded(3);
        let chains: Vec<Vec<f64>> = (0..4)
            .map(|_| (0..1000).map(|_| rng.normal()).collect())
            .collect();
        assert!((rhat(&chains) - 1.0).abs() < 0.01);
        let ess = ess_bulk(&chains);
        assert!((3000.0..5000.0).contains(&ess), "{ess}");
    }

    #[test]
    fn chains_that_disagree_have_a_large_rhat() {
        let mut rng = crate::rng::Rng::seeded(4);
        let chains: Vec<Vec<f64>> = (0..4)
            .map(|c| (0..500).map(|_| rng.normal() + c as f64).collect())
            .collect();
        assert!(rhat(&chains) > 1.5);
    }

    #[test]
    fn too_short_or_ragged_chains_give_nan() {
        assert!(rhat(&[vec![1.0, 2.0, 3.0]]).is_nan());
        assert!(ess_bulk(&[vec![1.0; 10], vec![1.0; 9]]).is_nan());
    }
}
