//! Uplift against CausalML 0.15.5 and scikit-uplift 0.5.1 (`scripts/uplift_golden.sh`
//! wrote the golden files), and against the known effects of Hill's IHDP surfaces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

use regelkreis_measure::rng::Rng;
use regelkreis_measure::uplift::{
    auuc, fit_forest, fit_meta, qini, BaseLearner, BoostingParams, Definition, ForestParams,
    MetaLearner, UpliftData,
};
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/uplift.json")).unwrap()
}

/// (train, test) from CausalML's `make_uplift_classification_logistic` export.
fn causalml_data() -> (UpliftData, UpliftData) {
    let text = include_str!("golden/uplift_data.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (t, y, split) = (col("treated"), col("conversion"), col("test"));
    let empty = || UpliftData {
        features: vec![],
        treated: vec![],
        outcome: vec![],
    };
    let (mut train, mut test) = (empty(), empty());
    for line in lines {
        let v: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        let target = if v[split] == 1.0 {
            &mut test
        } else {
            &mut train
        };
        target.features.push(v[..t].to_vec());
        target.treated.push(v[t] == 1.0);
        target.outcome.push(v[y]);
    }
    (train, test)
}

#[test]
fn qini_and_auuc_match_causalml_and_scikit_uplift_on_the_same_predictions() {
    let g = golden();
    let m = &g["metrics"];
    let (_, test) = causalml_data();
    let predictions: Vec<f64> = m["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let check = |ours: f64, key: &str| {
        let theirs = m[key].as_f64().unwrap();
        assert!(
            (ours - theirs).abs() < 1e-9,
            "{key}: ours {ours}, theirs {theirs}"
        );
    };
    let (y, t) = (&test.outcome, &test.treated);
    check(
        qini(y, t, &predictions, Definition::CausalMl).unwrap(),
        "causalml_qini",
    );
    check(
        auuc(y, t, &predictions, Definition::CausalMl).unwrap(),
        "causalml_auuc",
    );
    check(
        qini(y, t, &predictions, Definition::ScikitUplift).unwrap(),
        "sklift_qini",
    );
    check(
        auuc(y, t, &predictions, Definition::ScikitUplift).unwrap(),
        "sklift_auuc",
    );
}

#[test]
fn learners_match_causalml_within_noise_on_its_synthetic_data() {
    let g = golden();
    let (train, test) = causalml_data();
    let gbt = BaseLearner::Boosting(BoostingParams::default());
    let logistic = BaseLearner::Logistic { l2: 1.0 };
    let forest = ForestParams {
        min_leaf: 50,
        ..ForestParams::default()
    };
    eprintln!(
        "{:<14} {:>10} {:>10} {:>8} {:>10} {:>10}",
        "learner", "ours", "CausalML", "±sd", "ours s", "theirs s"
    );
    for (name, fit) in [
        (
            "s_logistic",
            Box::new(|d: &UpliftData| fit_meta(d, MetaLearner::S, logistic))
                as Box<dyn Fn(&UpliftData) -> _>,
        ),
        (
            "t_logistic",
            Box::new(|d: &UpliftData| fit_meta(d, MetaLearner::T, logistic)),
        ),
        (
            "t_boosting",
            Box::new(|d: &UpliftData| fit_meta(d, MetaLearner::T, gbt)),
        ),
        (
            "x_boosting",
            Box::new(|d: &UpliftData| fit_meta(d, MetaLearner::X, gbt)),
        ),
        (
            "uplift_forest",
            Box::new(|d: &UpliftData| fit_forest(d, forest)),
        ),
    ] {
        let started = Instant::now();
        let model = fit(&train).unwrap();
        let seconds = started.elapsed().as_secs_f64();
        let ours = qini(
            &test.outcome,
            &test.treated,
            &model.predict_all(&test.features),
            Definition::CausalMl,
        )
        .unwrap();
        let r = &g["learners"][name];
        let (theirs, sd) = (
            r["qini"].as_f64().unwrap(),
            r["qini_bootstrap_sd"].as_f64().unwrap(),
        );
        eprintln!(
            "{name:<14} {ours:>10.4} {theirs:>10.4} {sd:>8.4} {seconds:>10.3} {:>10.3}",
            r["seconds"].as_f64().unwrap()
        );
        assert!(
            ours > theirs - 2.0 * sd,
            "{name}: ours {ours}, CausalML {theirs} ± {sd}"
        );
    }
}

/// Hill (2011)'s IHDP response surfaces on `../shared/data/causal/sim.csv` (as econml's
/// `ihdp_surface_A/B` build them: treated children of non-white mothers dropped, the six
/// continuous covariates standardised), simulated with our generator: the true effect of
/// every child is known.
fn ihdp(surface_b: bool, seed: u64) -> (UpliftData, Vec<f64>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/causal/sim.csv"
    );
    let text = std::fs::read_to_string(path).expect("../shared/data is beside the project");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let white = header.iter().position(|h| *h == "momwhite").unwrap();
    let rows: Vec<Vec<f64>> = lines
        .map(|l| {
            l.split(',')
                .map(|v| v.parse().unwrap())
                .collect::<Vec<f64>>()
        })
        .filter(|r| !(r[0] == 1.0 && r[white] == 0.0))
        .collect();
    assert_eq!(rows.len(), 747);
    let mut x: Vec<Vec<f64>> = rows.iter().map(|r| r[1..].to_vec()).collect();
    for j in 0..6 {
        let m = x.iter().map(|r| r[j]).sum::<f64>() / x.len() as f64;
        let s = (x.iter().map(|r| (r[j] - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
        x.iter_mut().for_each(|r| r[j] = (r[j] - m) / s);
    }
    let treated: Vec<bool> = rows.iter().map(|r| r[0] == 1.0).collect();
    let mut rng = Rng::seeded(seed);
    let p = x[0].len();
    let pick = |rng: &mut Rng, values: &[f64], probs: &[f64]| {
        let u = rng.uniform();
        let mut acc = 0.0;
        for (v, q) in values.iter().zip(probs) {
            acc += q;
            if u < acc {
                return *v;
            }
        }
        *values.last().unwrap()
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let (mu0, mu1): (Vec<f64>, Vec<f64>) = if surface_b {
        let beta: Vec<f64> = (0..p)
            .map(|_| {
                pick(
                    &mut rng,
                    &[0.0, 0.1, 0.2, 0.3, 0.4],
                    &[0.6, 0.1, 0.1, 0.1, 0.1],
                )
            })
            .collect();
        let y0: Vec<f64> = x
            .iter()
            .map(|r| {
                (r.iter()
                    .map(|v| v + 0.5)
                    .zip(&beta)
                    .map(|(a, b)| a * b)
                    .sum::<f64>())
                .exp()
            })
            .collect();
        let y1: Vec<f64> = x.iter().map(|r| dot(r, &beta)).collect();
        // ω so that the average effect on the treated is 4.
        let treated_gap: Vec<f64> = (0..x.len())
            .filter(|&i| treated[i])
            .map(|i| y1[i] - y0[i])
            .collect();
        let omega = treated_gap.iter().sum::<f64>() / treated_gap.len() as f64 - 4.0;
        (y0, y1.iter().map(|v| v - omega).collect())
    } else {
        let beta: Vec<f64> = (0..p)
            .map(|_| {
                pick(
                    &mut rng,
                    &[0.0, 1.0, 2.0, 3.0, 4.0],
                    &[0.5, 0.2, 0.15, 0.1, 0.05],
                )
            })
            .collect();
        let y0: Vec<f64> = x.iter().map(|r| dot(r, &beta)).collect();
        (y0.clone(), y0.iter().map(|v| v + 4.0).collect())
    };
    let outcome: Vec<f64> = (0..x.len())
        .map(|i| if treated[i] { mu1[i] } else { mu0[i] } + rng.normal())
        .collect();
    let tau: Vec<f64> = mu1.iter().zip(&mu0).map(|(a, b)| a - b).collect();
    (
        UpliftData {
            features: x,
            treated,
            outcome,
        },
        tau,
    )
}

#[test]
fn ihdp_surfaces_recover_the_known_effects() {
    // Surface A: a constant effect of 4 on a linear surface.
    let mut errors = Vec::new();
    for seed in 1..=5 {
        let (data, _) = ihdp(false, seed);
        let model = fit_meta(&data, MetaLearner::T, BaseLearner::Linear { l2: 0.1 }).unwrap();
        // The effect on the treated: no treated child has a non-white mother, so the
        // treated arm's model cannot speak for those children (no overlap).
        let treated: Vec<&Vec<f64>> = data
            .features
            .iter()
            .zip(&data.treated)
            .filter(|(_, t)| **t)
            .map(|(x, _)| x)
            .collect();
        let att = treated.iter().map(|x| model.predict(x)).sum::<f64>() / treated.len() as f64;
        errors.push((att - 4.0).abs());
    }
    let mean_error = errors.iter().sum::<f64>() / errors.len() as f64;
    eprintln!("surface A: mean |ATT − 4| over 5 draws {mean_error:.3}");
    assert!(mean_error < 0.3, "{errors:?}");
    // Surface B: heterogeneous effects; the X-learner on boosted trees must beat the
    // constant guess (the true ATT, 4) in PEHE and get the ATT roughly right.
    for seed in 1..=3 {
        let (data, tau) = ihdp(true, 100 + seed);
        let model = fit_meta(
            &data,
            MetaLearner::X,
            BaseLearner::Boosting(BoostingParams {
                min_leaf: 10,
                ..BoostingParams::default()
            }),
        )
        .unwrap();
        let predicted = model.predict_all(&data.features);
        let pehe = (predicted
            .iter()
            .zip(&tau)
            .map(|(p, t)| (p - t).powi(2))
            .sum::<f64>()
            / tau.len() as f64)
            .sqrt();
        let constant =
            (tau.iter().map(|t| (4.0 - t).powi(2)).sum::<f64>() / tau.len() as f64).sqrt();
        let treated: Vec<usize> = (0..tau.len()).filter(|&i| data.treated[i]).collect();
        let att = treated.iter().map(|&i| predicted[i]).sum::<f64>() / treated.len() as f64;
        eprintln!("surface B seed {seed}: PEHE {pehe:.3} (constant 4: {constant:.3}), ATT {att:.3} (truth 4)");
        assert!(pehe < constant, "PEHE {pehe} vs {constant}");
        assert!((att - 4.0).abs() < 1.0, "ATT {att}");
    }
}
