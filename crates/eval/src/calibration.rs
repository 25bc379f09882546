//! Calibrated confidence: a logistic model from an answer's grounding signals to the
//! probability that the response is right, one model for answers and one for
//! abstentions (declining is right when the sources do not hold the answer). Fitted on
//! eval results by L2-penalised Newton–Raphson; judged by cross-validated expected
//! calibration error (ECE), Brier score and a reliability table.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A fit that could not be made.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CalibrationError {
    /// A sample lacks a feature the model uses, or has a value that is not finite.
    #[error("sample {index}: feature {feature:?} is missing or not finite")]
    BadFeature {
        /// Index of the sample.
        index: usize,
        /// The feature.
        feature: String,
    },
    /// Newton's method did not settle.
    #[error("the fit did not converge in {0} iterations")]
    NoConvergence(usize),
}

/// `P(right) = σ(bias + Σ weightᵢ · signal[featureᵢ])`; a signal the model does not
/// know is ignored, one it knows but is absent counts as 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    /// Signal names, in the order of `weights`.
    pub features: Vec<String>,
    /// One weight per feature.
    pub weights: Vec<f64>,
    /// The intercept.
    pub bias: f64,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl Logistic {
    /// The probability for a set of signals.
    pub fn predict(&self, signals: &BTreeMap<String, f64>) -> f64 {
        let z = self
            .features
            .iter()
            .zip(&self.weights)
            .map(|(f, w)| w * signals.get(f).copied().unwrap_or(0.0))
            .sum::<f64>()
            + self.bias;
        sigmoid(z)
    }

    /// Fits the weights to `(signals, right)` pairs by Newton–Raphson on the log loss plus
    /// `l2 · |w|² / 2` (the intercept is not penalised). With no samples the model says
    /// 0.5; with one class only, the penalty keeps the weights finite.
    pub fn fit(
        features: &[&str],
        samples: &[(&BTreeMap<String, f64>, bool)],
        l2: f64,
    ) -> Result<Logistic, CalibrationError> {
        let d = features.len() + 1;
        let mut rows: Vec<(Vec<f64>, f64)> = Vec::with_capacity(samples.len());
        for (index, (signals, right)) in samples.iter().enumerate() {
            let mut x = Vec::with_capacity(d);
            for f in features {
                match signals.get(*f) {
                    Some(v) if v.is_finite() => x.push(*v),
                    _ => {
                        return Err(CalibrationError::BadFeature {
                            index,
                            feature: (*f).to_owned(),
                        })
                    }
                }
            }
            x.push(1.0);
            rows.push((x, f64::from(u8::from(*right))));
        }
        let mut w = vec![0.0; d];
        // A tiny ridge on the intercept too keeps the Hessian invertible when every
        // sample has the same outcome.
        let penalty = |j: usize| if j + 1 == d { 1e-6 } else { l2.max(1e-9) };
        const MAX_ITER: usize = 100;
        for _ in 0..MAX_ITER {
            let mut grad: Vec<f64> = (0..d).map(|j| penalty(j) * w[j]).collect();
            let mut hess = vec![vec![0.0; d]; d];
            for (j, row) in hess.iter_mut().enumerate() {
                row[j] = penalty(j);
            }
            for (x, y) in &rows {
                let p = sigmoid(x.iter().zip(&w).map(|(a, b)| a * b).sum());
                let s = (p * (1.0 - p)).max(1e-12);
                for j in 0..d {
                    grad[j] += (p - y) * x[j];
                    for k in 0..d {
                        hess[j][k] += s * x[j] * x[k];
                    }
                }
            }
            let step = solve(hess, grad);
            let mut largest = 0.0f64;
            for (wj, sj) in w.iter_mut().zip(&step) {
                *wj -= sj;
                largest = largest.max(sj.abs());
            }
            if largest < 1e-9 {
                return Ok(Logistic {
                    features: features.iter().map(|f| (*f).to_owned()).collect(),
                    weights: w[..d - 1].to_vec(),
                    bias: w[d - 1],
                });
            }
        }
        Err(CalibrationError::NoConvergence(MAX_ITER))
    }
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting (a is small and,
/// penalised, positive definite).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        b.swap(col, pivot);
        let p = a[col][col];
        if p.abs() < 1e-300 {
            continue;
        }
        for row in col + 1..n {
            let f = a[row][col] / p;
            if f != 0.0 {
                let (upper, lower) = a.split_at_mut(row);
                for (x, y) in lower[0][col..].iter_mut().zip(&upper[col][col..]) {
                    *x -= f * y;
                }
                b[row] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = if a[row][row].abs() < 1e-300 {
            0.0
        } else {
            (b[row] - s) / a[row][row]
        };
    }
    x
}

/// One judged response: what the answer path measured and whether it was right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Whether the path abstained.
    pub abstained: bool,
    /// Its grounding signals.
    pub signals: BTreeMap<String, f64>,
    /// Whether the response was right.
    pub right: bool,
}

/// Confidence for answers and abstentions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfidenceModel {
    /// For responses that answer.
    pub answered: Logistic,
    /// For abstentions.
    pub abstained: Logistic,
}

/// Penalty of the shipped fits: mild, as the eval sets are a few hundred cases.
pub const DEFAULT_L2: f64 = 0.5;

impl ConfidenceModel {
    /// P(the response is right).
    pub fn confidence(&self, abstained: bool, signals: &BTreeMap<String, f64>) -> f64 {
        if abstained {
            self.abstained.predict(signals)
        } else {
            self.answered.predict(signals)
        }
    }

    /// Fits both models on judged samples.
    pub fn fit(
        answered_features: &[&str],
        abstained_features: &[&str],
        samples: &[Sample],
        l2: f64,
    ) -> Result<ConfidenceModel, CalibrationError> {
        let part = |abstained: bool| -> Vec<(&BTreeMap<String, f64>, bool)> {
            samples
                .iter()
                .filter(|s| s.abstained == abstained)
                .map(|s| (&s.signals, s.right))
                .collect()
        };
        Ok(ConfidenceModel {
            answered: Logistic::fit(answered_features, &part(false), l2)?,
            abstained: Logistic::fit(abstained_features, &part(true), l2)?,
        })
    }

    /// Out-of-fold predictions by `folds`-fold cross-validation (sample i is in fold
    /// `i % folds`): each sample scored by a model fitted without its fold.
    pub fn cross_validate(
        answered_features: &[&str],
        abstained_features: &[&str],
        samples: &[Sample],
        folds: usize,
        l2: f64,
    ) -> Result<Vec<f64>, CalibrationError> {
        let folds = folds.max(2);
        let mut out = vec![0.0; samples.len()];
        for fold in 0..folds {
            let train: Vec<Sample> = samples
                .iter()
                .enumerate()
                .filter(|(i, _)| i % folds != fold)
                .map(|(_, s)| s.clone())
                .collect();
            let model = ConfidenceModel::fit(answered_features, abstained_features, &train, l2)?;
            for (i, s) in samples
                .iter()
                .enumerate()
                .filter(|(i, _)| i % folds == fold)
            {
                out[i] = model.confidence(s.abstained, &s.signals);
            }
        }
        Ok(out)
    }
}

/// One bin of a reliability table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    /// Lower edge of the confidence range.
    pub low: f64,
    /// Upper edge.
    pub high: f64,
    /// Responses in the bin.
    pub count: usize,
    /// Their mean confidence.
    pub confidence: f64,
    /// The share of them that were right.
    pub accuracy: f64,
}

/// Ten equal-width bins of `(confidence, right)` pairs; empty bins left out.
pub fn reliability(scored: &[(f64, bool)]) -> Vec<Bin> {
    let mut bins = [(0.0f64, 0.0f64, 0usize); 10];
    for &(c, right) in scored {
        let c = c.clamp(0.0, 1.0);
        let b = ((c * 10.0) as usize).min(9);
        bins[b].0 += c;
        bins[b].1 += f64::from(u8::from(right));
        bins[b].2 += 1;
    }
    bins.iter()
        .enumerate()
        .filter(|(_, b)| b.2 > 0)
        .map(|(i, &(c, r, k))| Bin {
            low: i as f64 / 10.0,
            high: (i + 1) as f64 / 10.0,
            count: k,
            confidence: c / k as f64,
            accuracy: r / k as f64,
        })
        .collect()
}

/// Expected calibration error: |mean confidence − accuracy| per bin, weighted by the
/// bin's share. `None` without pairs.
pub fn expected_calibration_error(scored: &[(f64, bool)]) -> Option<f64> {
    if scored.is_empty() {
        return None;
    }
    let n = scored.len() as f64;
    Some(
        reliability(scored)
            .iter()
            .map(|b| (b.confidence - b.accuracy).abs() * b.count as f64 / n)
            .sum(),
    )
}

/// Mean squared difference between confidence and outcome. `None` without pairs.
pub fn brier_score(scored: &[(f64, bool)]) -> Option<f64> {
    if scored.is_empty() {
        return None;
    }
    Some(
        scored
            .iter()
            .map(|&(c, r)| (c - f64::from(u8::from(r))).powi(2))
            .sum::<f64>()
            / scored.len() as f64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded xorshift, so the test data is the same on every run.
    struct Rng(u64);
    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn signals(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn fit_recovers_the_weights_that_generated_the_data() {
        // Ground truth: P(right) = σ(-2 + 3a + 1.5b); 40,000 draws.
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let data: Vec<(BTreeMap<String, f64>, bool)> = (0..40_000)
            .map(|_| {
                let (a, b) = (rng.uniform(), rng.uniform());
                let p = sigmoid(-2.0 + 3.0 * a + 1.5 * b);
                (signals(&[("a", a), ("b", b)]), rng.uniform() < p)
            })
            .collect();
        let refs: Vec<(&BTreeMap<String, f64>, bool)> = data.iter().map(|(s, r)| (s, *r)).collect();
        let m = Logistic::fit(&["a", "b"], &refs, 1e-6).unwrap();
        assert!((m.weights[0] - 3.0).abs() < 0.15, "{m:?}");
        assert!((m.weights[1] - 1.5).abs() < 0.15, "{m:?}");
        assert!((m.bias + 2.0).abs() < 0.12, "{m:?}");
        // And its predictions are calibrated on fresh data from the same law.
        let fresh: Vec<(f64, bool)> = (0..20_000)
            .map(|_| {
                let (a, b) = (rng.uniform(), rng.uniform());
                let p = sigmoid(-2.0 + 3.0 * a + 1.5 * b);
                (
                    m.predict(&signals(&[("a", a), ("b", b)])),
                    rng.uniform() < p,
                )
            })
            .collect();
        assert!(expected_calibration_error(&fresh).unwrap() < 0.02);
    }

    #[test]
    fn one_class_only_stays_finite_and_leans_that_way() {
        let s = signals(&[("a", 1.0)]);
        let refs: Vec<(&BTreeMap<String, f64>, bool)> = (0..50).map(|_| (&s, true)).collect();
        let m = Logistic::fit(&["a"], &refs, 0.5).unwrap();
        assert!(m.weights.iter().all(|w| w.is_finite()) && m.bias.is_finite());
        assert!(m.predict(&s) > 0.9);
        let empty = Logistic::fit(&["a"], &[], 0.5).unwrap();
        assert_eq!(empty.predict(&s), 0.5);
    }

    #[test]
    fn missing_or_nan_features_are_named() {
        let s = signals(&[("a", f64::NAN)]);
        assert_eq!(
            Logistic::fit(&["a"], &[(&s, true)], 0.5),
            Err(CalibrationError::BadFeature {
                index: 0,
                feature: "a".into()
            })
        );
    }

    #[test]
    fn cross_validation_scores_every_sample_out_of_fold() {
        let mut rng = Rng(7);
        let samples: Vec<Sample> = (0..400)
            .map(|i| {
                let a = rng.uniform();
                Sample {
                    abstained: i % 3 == 0,
                    signals: signals(&[("a", a)]),
                    right: rng.uniform() < if i % 3 == 0 { 1.0 - a } else { a },
                }
            })
            .collect();
        let out = ConfidenceModel::cross_validate(&["a"], &["a"], &samples, 5, 0.1).unwrap();
        assert_eq!(out.len(), samples.len());
        let scored: Vec<(f64, bool)> = out
            .iter()
            .zip(&samples)
            .map(|(c, s)| (*c, s.right))
            .collect();
        // The two models learn opposite slopes; a constant 0.5 would score 0.25.
        assert!(brier_score(&scored).unwrap() < 0.22, "{scored:?}");
        assert!(expected_calibration_error(&scored).unwrap() < 0.1);
    }

    #[test]
    fn ece_and_brier_of_known_tables() {
        let perfect = [(1.0, true), (0.0, false)];
        assert_eq!(expected_calibration_error(&perfect), Some(0.0));
        assert_eq!(brier_score(&perfect), Some(0.0));
        // All at 0.9, half right: ECE 0.4, Brier (0.01 + 0.81) / 2.
        let over = [(0.9, true), (0.9, false)];
        assert!((expected_calibration_error(&over).unwrap() - 0.4).abs() < 1e-12);
        assert!((brier_score(&over).unwrap() - 0.41).abs() < 1e-12);
        assert_eq!(expected_calibration_error(&[]), None);
        let table = reliability(&over);
        assert_eq!(table.len(), 1);
        assert_eq!((table[0].count, table[0].accuracy), (2, 0.5));
    }
}
