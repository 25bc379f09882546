//! The gate: a run fails when a metric is below an absolute floor, or worse than the
//! baseline's value beyond the run's own bootstrap 95 % interval (so noise from a small
//! eval set does not fail a build, and a real drop does).

use crate::metrics::{bootstrap_interval, mean, percentile};
use crate::report::{higher_is_better, Report};
use serde::{Deserialize, Serialize};

/// An absolute limit on a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Floor {
    /// The metric.
    pub metric: String,
    /// The lowest acceptable value (highest, for latency and cost).
    pub limit: f64,
}

impl Floor {
    /// The floors every run must meet: citations always valid, answers faithful,
    /// unanswerable questions declined.
    pub fn defaults() -> Vec<Floor> {
        [
            ("citation_validity", 1.0),
            ("faithfulness", 0.95),
            ("abstention_recall", 1.0),
        ]
        .into_iter()
        .map(|(m, l)| Floor {
            metric: m.to_owned(),
            limit: l,
        })
        .collect()
    }
}

/// Why the gate failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateViolation {
    /// The metric.
    pub metric: String,
    /// Its value in this run.
    pub value: f64,
    /// The floor or baseline it failed.
    pub limit: f64,
    /// The run's 95 % interval, when compared with a baseline.
    pub interval: Option<(f64, f64)>,
    /// A sentence for the log.
    pub reason: String,
}

/// A statistic of per-case values (a mean, a percentile).
type Statistic = fn(&[f64]) -> f64;

/// Resamples for the intervals.
const RESAMPLES: usize = 2_000;

/// Checks a run against floors and, when given, a baseline.
pub fn check(current: &Report, baseline: Option<&Report>, floors: &[Floor]) -> Vec<GateViolation> {
    let mut out = Vec::new();
    for f in floors {
        let Some(v) = current.get(&f.metric) else {
            continue;
        };
        let bad = if higher_is_better(&f.metric) {
            v < f.limit
        } else {
            v > f.limit
        };
        if bad {
            out.push(GateViolation {
                metric: f.metric.clone(),
                value: v,
                limit: f.limit,
                interval: None,
                reason: format!("{} = {v:.4} is past its floor {}", f.metric, f.limit),
            });
        }
    }
    let Some(base) = baseline else { return out };
    for (name, &value) in &current.metrics {
        let Some(b) = base.get(name) else { continue };
        let (samples, stat): (Option<&Vec<f64>>, Statistic) = match name.as_str() {
            "latency_p50_ms" => (current.samples.get("latency_ms"), |v| percentile(v, 0.50)),
            "latency_p95_ms" => (current.samples.get("latency_ms"), |v| percentile(v, 0.95)),
            n => (current.samples.get(n), mean),
        };
        let Some(samples) = samples else { continue };
        let (lo, hi) = bootstrap_interval(samples, stat, 0.95, RESAMPLES, 0x5EED);
        let worse = if higher_is_better(name) {
            b > hi
        } else {
            b < lo
        };
        if worse {
            out.push(GateViolation {
                metric: name.clone(),
                value,
                limit: b,
                interval: Some((lo, hi)),
                reason: format!(
                    "{name} = {value:.4} (95 % interval {lo:.4}–{hi:.4}) is worse than the baseline {b:.4}"
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CaseResult;

    fn run(n: usize, failing: usize, latency: f64) -> Report {
        let results: Vec<CaseResult> = (0..n)
            .map(|i| CaseResult {
                id: i.to_string(),
                retrieved: vec!["d".into()],
                relevant: vec!["d".into()],
                answerable: true,
                abstained: false,
                answer: "a".into(),
                reference: Some("a".into()),
                citations: 1,
                citations_valid: 1,
                sentences: 1,
                sentences_supported: 1,
                assertions_passed: i >= failing,
                style_ok: true,
                latency_ms: latency + (i % 7) as f64,
                cost_micros: 100,
                confidence: None,
                signals: Default::default(),
            })
            .collect();
        Report::from_results(&results)
    }

    #[test]
    fn noise_passes_a_real_drop_fails() {
        let base = run(200, 20, 100.0); // goal completion 0.90
                                        // 0.885: within the run's interval — passes.
        let same = run(200, 23, 100.0);
        assert!(check(&same, Some(&base), &[]).is_empty());
        // 0.70: far outside — fails, naming the metric.
        let worse = run(200, 60, 100.0);
        let v = check(&worse, Some(&base), &[]);
        assert!(v.iter().any(|x| x.metric == "goal_completion"), "{v:?}");
        // Twice the latency fails too (lower is better).
        let slow = run(200, 20, 200.0);
        let v = check(&slow, Some(&base), &[]);
        assert!(v.iter().any(|x| x.metric == "latency_p95_ms"), "{v:?}");
    }

    #[test]
    fn floors_hold_without_a_baseline() {
        let mut r = run(10, 0, 1.0);
        assert!(check(&r, None, &Floor::defaults()).is_empty());
        r.metrics.insert("citation_validity".into(), 0.99);
        let v = check(&r, None, &Floor::defaults());
        assert_eq!(v.len(), 1);
        assert!(v[0].reason.contains("citation_validity"));
    }
}
