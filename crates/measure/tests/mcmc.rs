//! Convergence diagnostics against ArviZ 0.23 (`scripts/mmm_reference.py --diagnostics`
//! wrote the golden file from AR(1) chains: independent, sticky, very sticky, shifted).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use regelkreis_measure::mcmc::diagnostics::{ess_bulk, ess_tail, rhat};
use serde_json::Value;

#[test]
fn rhat_and_ess_match_arviz() {
    let golden: Value =
        serde_json::from_str(include_str!("golden/arviz_diagnostics.json")).unwrap();
    for case in golden["cases"].as_array().unwrap() {
        let chains: Vec<Vec<f64>> = case["chains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                c.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            })
            .collect();
        for (name, ours, theirs) in [
            ("rhat", rhat(&chains), case["rhat"].as_f64().unwrap()),
            (
                "ess_bulk",
                ess_bulk(&chains),
                case["ess_bulk"].as_f64().unwrap(),
            ),
            (
                "ess_tail",
                ess_tail(&chains),
                case["ess_tail"].as_f64().unwrap(),
            ),
        ] {
            assert!(
                (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
                "{name}: ours {ours}, arviz {theirs} ({} chains × {})",
                chains.len(),
                chains[0].len()
            );
        }
    }
}
