//! One eval run's results and the metrics over them.

use crate::calibration::expected_calibration_error;
use crate::metrics::{mean, ndcg_at_k, percentile, recall_at_k, reciprocal_rank};
use crate::text::token_f1;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// What the answer path did for one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case.
    pub id: String,
    /// Documents retrieved, best first (a document may repeat: one entry per chunk).
    pub retrieved: Vec<String>,
    /// Documents that hold the answer.
    pub relevant: Vec<String>,
    /// Whether the sources hold the answer.
    pub answerable: bool,
    /// Whether the answer path abstained.
    pub abstained: bool,
    /// The answer text.
    pub answer: String,
    /// The reference answer, when the case has one.
    pub reference: Option<String>,
    /// Citations given.
    pub citations: usize,
    /// Of which resolve to a real chunk and quote it exactly.
    pub citations_valid: usize,
    /// Sentences in the answer.
    pub sentences: usize,
    /// Of which are supported by a cited source.
    pub sentences_supported: usize,
    /// Whether every assertion of the case held.
    pub assertions_passed: bool,
    /// Whether the answer follows the brand rules of its policy.
    pub style_ok: bool,
    /// Time to the answer.
    pub latency_ms: f64,
    /// Cost in micro-units.
    pub cost_micros: i64,
    /// The confidence the answer path gave (0..=1), when it gave one.
    #[serde(default)]
    pub confidence: Option<f64>,
    /// The grounding signals the confidence was computed from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signals: BTreeMap<String, f64>,
}

impl CaseResult {
    /// A success: the assertions held, nothing unsupported was said, and an answerable
    /// question was answered or an unanswerable one declined.
    pub fn success(&self) -> bool {
        self.assertions_passed
            && self.sentences_supported == self.sentences
            && self.abstained != self.answerable
    }
}

/// The metrics of a run. `metrics` holds every named figure; `samples` the per-case
/// values the gate resamples (not written to JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Named figures.
    pub metrics: BTreeMap<String, f64>,
    /// Cases evaluated.
    pub cases: usize,
    /// Per-case values by metric name.
    #[serde(skip)]
    pub samples: BTreeMap<String, Vec<f64>>,
}

/// Whether a larger value of the metric is better.
pub fn higher_is_better(metric: &str) -> bool {
    !(metric.starts_with("latency")
        || metric.starts_with("cost")
        || metric.starts_with("confidence_"))
}

/// Expected calibration error of the responses' confidence against their success (see
/// [`crate::calibration::expected_calibration_error`]).
pub fn calibration_error(results: &[CaseResult]) -> Option<f64> {
    expected_calibration_error(&scored(results))
}

/// `(confidence, success)` of the results that carry a confidence.
pub fn scored(results: &[CaseResult]) -> Vec<(f64, bool)> {
    results
        .iter()
        .filter_map(|r| r.confidence.map(|c| (c.clamp(0.0, 1.0), r.success())))
        .collect()
}

impl Report {
    /// Metrics over the results.
    pub fn from_results(results: &[CaseResult]) -> Report {
        let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut push = |name: &str, v: f64| samples.entry(name.to_owned()).or_default().push(v);
        for r in results {
            let relevant: HashSet<&str> = r.relevant.iter().map(String::as_str).collect();
            let ranked: Vec<&str> = r.retrieved.iter().map(String::as_str).collect();
            if let Some(v) = recall_at_k(&ranked, &relevant, 10) {
                push("recall_at_10", v);
            }
            if let Some(v) = ndcg_at_k(&ranked, &relevant, 10) {
                push("ndcg_at_10", v);
            }
            if let Some(v) = reciprocal_rank(&ranked, &relevant, 10) {
                push("mrr_at_10", v);
            }
            if r.citations > 0 {
                push(
                    "citation_validity",
                    r.citations_valid as f64 / r.citations as f64,
                );
            }
            if !r.abstained && r.sentences > 0 {
                push(
                    "faithfulness",
                    r.sentences_supported as f64 / r.sentences as f64,
                );
            }
            if r.answerable {
                if let Some(reference) = &r.reference {
                    let f1 = if r.abstained {
                        0.0
                    } else {
                        token_f1(&r.answer, reference)
                    };
                    push("answer_f1", f1);
                }
            }
            if r.abstained {
                push("abstention_precision", f64::from(u8::from(!r.answerable)));
            }
            if !r.answerable {
                push("abstention_recall", f64::from(u8::from(r.abstained)));
            }
            push("style_adherence", f64::from(u8::from(r.style_ok)));
            push("goal_completion", f64::from(u8::from(r.assertions_passed)));
            push("success_rate", f64::from(u8::from(r.success())));
            push("latency_ms", r.latency_ms);
            if let Some(c) = r.confidence {
                let hit = f64::from(u8::from(r.success()));
                push("confidence_brier", (c - hit) * (c - hit));
            }
        }
        let mut metrics = BTreeMap::new();
        for (name, v) in &samples {
            if name == "latency_ms" {
                metrics.insert("latency_p50_ms".to_owned(), percentile(v, 0.50));
                metrics.insert("latency_p95_ms".to_owned(), percentile(v, 0.95));
            } else {
                metrics.insert(name.clone(), mean(v));
            }
        }
        // Metrics with no applicable case are perfect by definition, so a dataset without,
        // say, unanswerable questions does not fail a floor on them.
        for name in [
            "citation_validity",
            "faithfulness",
            "abstention_precision",
            "abstention_recall",
        ] {
            metrics.entry(name.to_owned()).or_insert(1.0);
        }
        if let Some(e) = calibration_error(results) {
            metrics.insert("confidence_ece".to_owned(), e);
        }
        let successes = results.iter().filter(|r| r.success()).count();
        let cost: i64 = results.iter().map(|r| r.cost_micros).sum();
        metrics.insert(
            "cost_per_success".to_owned(),
            if successes == 0 {
                f64::INFINITY.min(f64::MAX)
            } else {
                cost as f64 / 1e6 / successes as f64
            },
        );
        Report {
            metrics,
            cases: results.len(),
            samples,
        }
    }

    /// A metric's value.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, answerable: bool, abstained: bool) -> CaseResult {
        CaseResult {
            id: id.into(),
            retrieved: vec!["d2".into(), "d1".into()],
            relevant: if answerable {
                vec!["d1".into()]
            } else {
                vec![]
            },
            answerable,
            abstained,
            answer: if abstained {
                String::new()
            } else {
                "It costs 49 euros.".into()
            },
            reference: answerable.then(|| "49 euros".to_owned()),
            citations: usize::from(!abstained),
            citations_valid: usize::from(!abstained),
            sentences: usize::from(!abstained),
            sentences_supported: usize::from(!abstained),
            assertions_passed: true,
            style_ok: true,
            latency_ms: 10.0,
            cost_micros: 1_000,
            confidence: None,
            signals: Default::default(),
        }
    }

    #[test]
    fn calibration_error_compares_confidence_with_success() {
        // Confident and right, unsure and wrong: perfectly calibrated in its bins.
        let mut good = result("a", true, false);
        good.confidence = Some(1.0);
        let mut bad = result("b", true, false);
        bad.assertions_passed = false;
        bad.confidence = Some(0.0);
        assert_eq!(calibration_error(&[good.clone(), bad.clone()]), Some(0.0));
        // Confident and wrong: the whole gap.
        let mut over = bad.clone();
        over.confidence = Some(0.95);
        assert!((calibration_error(&[over]).unwrap() - 0.95).abs() < 1e-12);
        assert_eq!(calibration_error(&[result("c", true, false)]), None);
        let r = Report::from_results(&[good, bad]);
        assert_eq!(r.get("confidence_brier"), Some(0.0));
    }

    #[test]
    fn metrics_over_a_small_run() {
        let results = vec![
            result("a", true, false),
            result("b", false, true),
            result("c", true, true), // abstained although the answer was there
        ];
        let r = Report::from_results(&results);
        assert_eq!(r.cases, 3);
        assert_eq!(r.get("recall_at_10"), Some(1.0));
        assert_eq!(r.get("mrr_at_10"), Some(0.5));
        assert_eq!(r.get("citation_validity"), Some(1.0));
        assert_eq!(r.get("faithfulness"), Some(1.0));
        // Two abstentions, one right.
        assert_eq!(r.get("abstention_precision"), Some(0.5));
        assert_eq!(r.get("abstention_recall"), Some(1.0));
        // F1("It costs 49 euros", "49 euros") = 2·(2/4·1)/(2/4+1) = 2/3; abstaining scores 0.
        assert!((r.get("answer_f1").unwrap() - (2.0 / 3.0) / 2.0).abs() < 1e-12);
        // Successes: a and b; cost 3,000 micro-units over 2.
        assert_eq!(r.get("cost_per_success"), Some(0.0015));
        assert_eq!(r.get("latency_p95_ms"), Some(10.0));
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["metrics"]["ndcg_at_10"].is_number() && json.get("samples").is_none());
    }
}
