//! The marketing mix model against PyMC-Marketing 0.19.2 on its own example data
//! (`scripts/mmm_reference.py` wrote the golden file: 4 chains × 1,000 draws after 1,000
//! tuning steps, the library's default priors).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use regelkreis_measure::mcmc::SamplerOptions;
use regelkreis_measure::mmm::{day_of_year, fit, MmmData, MmmSpec};
use serde_json::Value;

fn example() -> MmmData {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/mmm/mmm_example.csv"
    );
    let text = std::fs::read_to_string(path).expect("../shared/data is beside the project");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let numbers =
        |name: &str| -> Vec<f64> { rows.iter().map(|r| r[col(name)].parse().unwrap()).collect() };
    let dates: Vec<f64> = rows
        .iter()
        .map(|r| {
            let d: Vec<u32> = r[col("date_week")]
                .split('-')
                .map(|p| p.parse().unwrap())
                .collect();
            f64::from(day_of_year(d[0] as i32, d[1], d[2]).unwrap())
        })
        .collect();
    MmmData {
        day_of_year: dates,
        channels: vec!["x1".into(), "x2".into()],
        spend: vec![numbers("x1"), numbers("x2")],
        control_names: vec!["event_1".into(), "event_2".into(), "t".into()],
        controls: vec![numbers("event_1"), numbers("event_2"), numbers("t")],
        target: numbers("y"),
    }
}

#[test]
fn posterior_means_match_pymc_marketing_within_a_tenth_of_a_posterior_sd() {
    let golden: Value =
        serde_json::from_str(include_str!("golden/mmm_pymc_marketing.json")).unwrap();
    let data = example();
    // 4 × 5,000 draws as the golden file: the Monte Carlo error of both means stays
    // well below the tolerance.
    let options = SamplerOptions {
        chains: 4,
        tune: 1000,
        draws: 5000,
        seed: 7,
        threads: 2,
        ..SamplerOptions::default()
    };
    let fitted = fit(&MmmSpec::default(), &data, &[], options, &|_, _| {}).unwrap();
    let d = fitted.diagnostics();
    assert!(d.rhat_max < 1.01, "{d:?}");
    assert!(d.ess_min > 1000.0, "{d:?}");
    let ours = fitted.parameters();
    let mut worst = (0.0_f64, String::new());
    for (group, names) in [
        ("intercept", vec!["intercept".to_string()]),
        (
            "adstock_alpha",
            vec!["adstock_alpha[x1]".into(), "adstock_alpha[x2]".into()],
        ),
        (
            "saturation_lam",
            vec!["saturation_lam[x1]".into(), "saturation_lam[x2]".into()],
        ),
        (
            "saturation_beta",
            vec!["saturation_beta[x1]".into(), "saturation_beta[x2]".into()],
        ),
        (
            "gamma_control",
            vec![
                "gamma_control[event_1]".into(),
                "gamma_control[event_2]".into(),
                "gamma_control[t]".into(),
            ],
        ),
        (
            "gamma_fourier",
            vec![
                "gamma_fourier[sin_1]".into(),
                "gamma_fourier[sin_2]".into(),
                "gamma_fourier[cos_1]".into(),
                "gamma_fourier[cos_2]".into(),
            ],
        ),
        ("y_sigma", vec!["y_sigma".into()]),
    ] {
        for (i, name) in names.iter().enumerate() {
            let theirs_mean = golden["params"][group]["mean"][i].as_f64().unwrap();
            let theirs_sd = golden["params"][group]["sd"][i].as_f64().unwrap();
            let mine = ours.iter().find(|p| p.name == *name).unwrap();
            let gap = (mine.interval.mean - theirs_mean).abs() / theirs_sd;
            eprintln!(
                "{name:28} ours {:12.6} ± {:10.6}   pymc-marketing {theirs_mean:12.6} ± {theirs_sd:10.6}   {gap:.3} sd",
                mine.interval.mean, mine.sd
            );
            if gap > worst.0 {
                worst = (gap, name.clone());
            }
        }
    }
    let channels = fitted.channel_summaries();
    for (i, channel) in channels.iter().enumerate() {
        let theirs = golden["contribution"]["mean"][i].as_f64().unwrap();
        let sd = golden["contribution"]["sd"][i].as_f64().unwrap();
        let gap = (channel.contribution.mean - theirs).abs() / sd;
        eprintln!(
            "contribution[{}] ours {:.0}, pymc-marketing {theirs:.0} ± {sd:.0}: {gap:.3} sd",
            channel.name, channel.contribution.mean
        );
        if gap > worst.0 {
            worst = (gap, format!("contribution[{}]", channel.name));
        }
        assert!(channel.contribution.lo < channel.contribution.mean);
        assert!(channel.roas.lo > 0.0 && channel.marginal_roas.mean < channel.roas.mean);
    }
    assert!(
        worst.0 < 0.1,
        "largest gap {:.3} sd at {}",
        worst.0,
        worst.1
    );
}

/// A lift test (an experiment that measured how much more a channel brings at more
/// spend) pins the channel's curve down: on data simulated with known parameters, the
/// channel's contribution interval narrows and its error shrinks.
#[test]
fn a_lift_test_calibrates_the_channel_it_measured() {
    use regelkreis_measure::mmm::simulate::simulate;
    use regelkreis_measure::mmm::{LiftTest, Prior, Saturation};
    use regelkreis_measure::rng::Rng;
    let defaults = MmmSpec::default();
    let mut saturation_priors = defaults.saturation_priors.clone();
    saturation_priors[1] = Prior::HalfNormal { sigma: 0.2 };
    let spec = MmmSpec {
        yearly_order: 0,
        intercept: Prior::Normal {
            mu: 0.3,
            sigma: 0.05,
        },
        saturation_priors,
        sigma: Prior::HalfNormal { sigma: 0.05 },
        ..defaults
    };
    let template = MmmData {
        control_names: vec![],
        controls: vec![],
        ..example()
    };
    let mut rng = Rng::seeded(31);
    let truth = simulate(&spec, &template, &mut rng).unwrap();
    let names = {
        let options = SamplerOptions {
            chains: 1,
            tune: 10,
            draws: 10,
            ..SamplerOptions::default()
        };
        fit(&spec, &truth.data, &[], options, &|_, _| {})
            .unwrap()
            .parameter_names()
            .to_vec()
    };
    let at = |name: &str| names.iter().position(|n| n == name).unwrap();
    let (lam, beta) = (
        truth.parameters[at("saturation_lam[x2]")],
        truth.parameters[at("saturation_beta[x2]")],
    );
    // What the experiment measured: weekly spend 0.2 → 0.5 (x2's scale is 1).
    let measured = Saturation::Logistic.value(0.5, &[lam, beta])
        - Saturation::Logistic.value(0.2, &[lam, beta]);
    let lift = LiftTest {
        channel: "x2".into(),
        spend: 0.2,
        delta_spend: 0.3,
        delta_target: measured,
        sigma: 0.002,
    };
    let options = SamplerOptions {
        chains: 2,
        tune: 500,
        draws: 500,
        seed: 3,
        ..SamplerOptions::default()
    };
    let without = fit(&spec, &truth.data, &[], options, &|_, _| {})
        .unwrap()
        .channel_summaries();
    let with = fit(&spec, &truth.data, &[lift], options, &|_, _| {})
        .unwrap()
        .channel_summaries();
    let (a, b) = (without[1].contribution, with[1].contribution);
    let true_contribution = truth.contribution[1];
    eprintln!(
        "x2 contribution: truth {true_contribution:.3}, without lift {:.3} [{:.3}, {:.3}], with lift {:.3} [{:.3}, {:.3}]",
        a.mean, a.lo, a.hi, b.mean, b.lo, b.hi
    );
    assert!(
        b.hi - b.lo < 0.8 * (a.hi - a.lo),
        "interval did not narrow: {a:?} → {b:?}"
    );
    assert!(
        b.covers(true_contribution),
        "{b:?} misses {true_contribution}"
    );
}
