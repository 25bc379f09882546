//! Drift statistics against Evidently 0.7.14 (PSI) and SciPy 1.15.3 (`ks_2samp`), from
//! `scripts/drift_golden.sh`: 28 seeded cases, numerical and categorical, 30 to 3,000
//! values, ties included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use regelkreis_measure::drift::{ks_2samp, psi, FeatureKind};
use serde_json::Value;

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn psi_and_ks_match_evidently_and_scipy() {
    let golden: Value = serde_json::from_str(include_str!("golden/drift.json")).unwrap();
    let cases = golden["cases"].as_array().unwrap();
    assert!(cases.len() >= 28);
    for case in cases {
        let (reference, current) = (numbers(&case["reference"]), numbers(&case["current"]));
        let kind = if case["kind"] == "categorical" {
            FeatureKind::Categorical
        } else {
            FeatureKind::Numerical
        };
        let label = format!("{} ({}/{})", case["name"], reference.len(), current.len());
        let theirs = case["psi"].as_f64().unwrap();
        let ours = psi(&reference, &current, kind).unwrap();
        assert!(
            (ours - theirs).abs() <= 1e-12 * theirs.abs().max(1.0),
            "{label} PSI: ours {ours}, evidently {theirs}"
        );
        let ks = ks_2samp(&reference, &current).unwrap();
        let (d, p) = (
            case["ks_statistic"].as_f64().unwrap(),
            case["ks_p_value"].as_f64().unwrap(),
        );
        assert!(
            (ks.statistic - d).abs() <= 1e-15,
            "{label} D: ours {}, scipy {d}",
            ks.statistic
        );
        assert!(
            (ks.p_value - p).abs() <= 1e-10 * p.max(1e-300) + 1e-14,
            "{label} p: ours {:e}, scipy {p:e}",
            ks.p_value
        );
    }
}
