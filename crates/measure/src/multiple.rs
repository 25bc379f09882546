//! Corrections for testing many metrics or variations at once, as adjusted p-values
//! (the definitions of `statsmodels.stats.multitest.multipletests`).

/// Holm's step-down adjustment (controls the family-wise error rate).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0_f64;
    for (rank, &i) in order.iter().enumerate() {
        let value = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(value);
        adjusted[i] = running;
    }
    adjusted
}

/// Benjamini–Hochberg step-up adjustment (controls the false discovery rate).
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running = f64::INFINITY;
    for (rank, &i) in order.iter().enumerate().rev() {
        let value = p[i] * m as f64 / (rank + 1) as f64;
        running = running.min(value);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        // statsmodels multipletests([0.01, 0.04, 0.03, 0.005], method='holm' / 'fdr_bh')
        let p = [0.01, 0.04, 0.03, 0.005];
        let h = holm(&p);
        let expected_h = [0.03, 0.06, 0.06, 0.02];
        let b = benjamini_hochberg(&p);
        let expected_b = [0.02, 0.04, 0.04, 0.02];
        for i in 0..4 {
            assert!((h[i] - expected_h[i]).abs() < 1e-15, "{h:?}");
            assert!((b[i] - expected_b[i]).abs() < 1e-15, "{b:?}");
        }
    }

    proptest! {
        #[test]
        fn adjusted_p_values_stay_in_range_and_keep_the_order(p in proptest::collection::vec(0.0f64..=1.0, 1..30)) {
            for adj in [holm(&p), benjamini_hochberg(&p)] {
                for (a, raw) in adj.iter().zip(&p) {
                    prop_assert!(*a >= *raw - 1e-15 && *a <= 1.0);
                }
                for i in 0..p.len() {
                    for j in 0..p.len() {
                        if p[i] < p[j] {
                            prop_assert!(adj[i] <= adj[j] + 1e-15);
                        }
                    }
                }
            }
            let h = holm(&p);
            let b = benjamini_hochberg(&p);
            for (h, b) in h.iter().zip(&b) {
                prop_assert!(b <= &(h + 1e-15), "BH is never stricter than Holm");
            }
        }
    }
}
