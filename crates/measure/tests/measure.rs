//! The measure crate against known ground truth: GrowthBook's cross-SDK assignment cases,
//! and an A/A simulation of continuous peeking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use regelkreis_measure::abtest::{sequential_ttest, ttest, Difference, Statistic};
use regelkreis_measure::assignment::{
    bucket_ranges, choose_variation, equal_weights, hash, in_namespace, Namespace,
};
use serde_json::Value;

mod growthbook {
    use super::*;

    fn cases() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/experiments/growthbook-cases.json"
        );
        serde_json::from_str(
            &std::fs::read_to_string(path).expect("../shared/data is beside the project"),
        )
        .unwrap()
    }

    #[test]
    fn every_hash_case() {
        let c = cases();
        let list = c["hash"].as_array().unwrap();
        assert!(list.len() >= 15);
        for case in list {
            let seed = case[0].as_str().unwrap();
            let value = case[1].as_str().unwrap();
            let version = case[2].as_u64().unwrap() as u32;
            let got = hash(seed, value, version);
            match case[3].as_f64() {
                Some(expected) => assert_eq!(got, Some(expected), "{case}"),
                None => assert_eq!(got, None, "{case}"),
            }
        }
    }

    #[test]
    fn every_bucket_range_case() {
        let c = cases();
        for case in c["getBucketRange"].as_array().unwrap() {
            let args = &case[1];
            let n = args[0].as_i64().unwrap();
            let coverage = args[1].as_f64().unwrap();
            let weights: Option<Vec<f64>> = args[2]
                .as_array()
                .map(|w| w.iter().map(|x| x.as_f64().unwrap()).collect());
            let got = bucket_ranges(n, coverage, weights.as_deref());
            let expected: Vec<(f64, f64)> = case[2]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r[0].as_f64().unwrap(), r[1].as_f64().unwrap()))
                .collect();
            assert_eq!(got.len(), expected.len(), "{case}");
            for (g, e) in got.iter().zip(&expected) {
                assert!(
                    (g.0 - e.0).abs() < 1e-9 && (g.1 - e.1).abs() < 1e-9,
                    "{case}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn every_choose_variation_case() {
        let c = cases();
        for case in c["chooseVariation"].as_array().unwrap() {
            let n = case[1].as_f64().unwrap();
            let ranges: Vec<(f64, f64)> = case[2]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r[0].as_f64().unwrap(), r[1].as_f64().unwrap()))
                .collect();
            let expected = case[3].as_i64().unwrap();
            let got = choose_variation(n, &ranges).map_or(-1, |i| i as i64);
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn every_namespace_case() {
        let c = cases();
        for case in c["inNamespace"].as_array().unwrap() {
            let ns = Namespace {
                id: case[2][0].as_str().unwrap().to_owned(),
                start: case[2][1].as_f64().unwrap(),
                end: case[2][2].as_f64().unwrap(),
            };
            assert_eq!(
                in_namespace(case[1].as_str().unwrap(), &ns),
                case[3].as_bool().unwrap(),
                "{case}"
            );
        }
    }

    #[test]
    fn every_equal_weights_case() {
        let c = cases();
        for case in c["getEqualWeights"].as_array().unwrap() {
            let got = equal_weights(case[0].as_i64().unwrap());
            let expected: Vec<f64> = case[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            assert_eq!(got.len(), expected.len());
            for (g, e) in got.iter().zip(&expected) {
                assert!((g - e).abs() < 1e-8, "{case}");
            }
        }
    }
}

mod peeking {
    use super::*;

    /// splitmix64: a small, well-mixed generator so the simulation is reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A/A tests peeked 20 times: the always-valid test must keep its false-positive rate
    /// at or below 5 %, while peeking at the fixed-horizon t-test inflates it.
    #[test]
    fn sequential_test_keeps_its_false_positive_rate_under_continuous_peeking() {
        let mut rng = Rng(7);
        let (experiments, peeks, batch, rate) = (400, 20, 500, 0.05);
        let (mut seq_fp, mut naive_fp) = (0, 0);
        for _ in 0..experiments {
            let (mut n, mut ca, mut cb) = (0u64, 0.0, 0.0);
            let (mut seq_hit, mut naive_hit) = (false, false);
            for _ in 0..peeks {
                for _ in 0..batch {
                    ca += f64::from(u8::from(rng.next() < rate));
                    cb += f64::from(u8::from(rng.next() < rate));
                }
                n += batch;
                let a = Statistic::Proportion { n, sum: ca };
                let b = Statistic::Proportion { n, sum: cb };
                seq_hit |=
                    sequential_ttest(&a, &b, Difference::Relative, 0.05, 5000.0).p_value < 0.05;
                naive_hit |= ttest(&a, &b, Difference::Relative, 0.05).p_value < 0.05;
            }
            seq_fp += usize::from(seq_hit);
            naive_fp += usize::from(naive_hit);
        }
        let seq_rate = seq_fp as f64 / experiments as f64;
        let naive_rate = naive_fp as f64 / experiments as f64;
        eprintln!("A/A with 20 peeks: sequential {seq_rate:.3}, naive t-test {naive_rate:.3}");
        assert!(
            seq_rate <= 0.05,
            "sequential false-positive rate {seq_rate}"
        );
        assert!(
            naive_rate > 0.10,
            "peeking should inflate the naive test: {naive_rate}"
        );
    }

    /// The sequential SRM test checked after every batch of an honest 50/50 split raises a
    /// false alarm in at most 5 % of experiments.
    #[test]
    fn sequential_srm_keeps_its_false_alarm_rate_under_continuous_monitoring() {
        use regelkreis_measure::srm::SequentialSrm;
        let mut rng = Rng(99);
        let experiments = 400;
        let mut alarms = 0;
        for _ in 0..experiments {
            let mut test = SequentialSrm::new(&[0.5, 0.5], 10_000.0);
            let mut alarm = false;
            for _ in 0..50 {
                let mut counts = [0.0, 0.0];
                for _ in 0..200 {
                    counts[usize::from(rng.next() < 0.5)] += 1.0;
                }
                alarm |= test.update(&counts) < 0.05;
            }
            alarms += usize::from(alarm);
        }
        let rate = alarms as f64 / experiments as f64;
        eprintln!("sequential SRM false alarms under monitoring: {rate:.3}");
        assert!(rate <= 0.05, "{rate}");
    }
}

mod off_policy {
    use regelkreis_measure::ope::{doubly_robust, ips, snips, LoggedRound};
    use serde_json::Value;

    const OBD: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/bandits/obd"
    );
    const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/obp_ope.json");

    /// The log as obp reads it: action = item_id, position 0-based, reward = click.
    fn load(behavior: &str) -> Vec<(LoggedRound, usize)> {
        let text = std::fs::read_to_string(format!("{OBD}/{behavior}/all/all.csv")).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (item, pos, click, ps) = (
            col("item_id"),
            col("position"),
            col("click"),
            col("propensity_score"),
        );
        lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (
                    LoggedRound {
                        action: f[item].parse().unwrap(),
                        reward: f[click].parse().unwrap(),
                        propensity: f[ps].parse().unwrap(),
                    },
                    f[pos].parse::<usize>().unwrap() - 1,
                )
            })
            .collect()
    }

    fn matrix(v: &Value) -> Vec<Vec<f64>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
    }

    /// IPS, SNIPS and DR on the Open Bandit Dataset sample agree with obp 0.4.1 to 1e-9,
    /// for the uniform policy and obp's production Bernoulli TS, from both logs.
    #[test]
    fn estimates_match_obp_on_the_open_bandit_dataset() {
        let golden: Value =
            serde_json::from_str(&std::fs::read_to_string(GOLDEN).unwrap()).unwrap();
        for behavior in ["random", "bts"] {
            let log = &golden["logs"][behavior];
            let rows = load(behavior);
            assert_eq!(rows.len(), 10_000);
            let q = matrix(&log["q_hat"]);
            let rounds: Vec<LoggedRound> = rows.iter().map(|r| r.0).collect();
            let q_hat: Vec<Vec<f64>> = rows
                .iter()
                .map(|(_, p)| q.iter().map(|a| a[*p]).collect())
                .collect();
            for policy in ["uniform", "bts"] {
                let e = &log["estimates"][policy];
                let dist = matrix(&e["action_dist"]);
                let target: Vec<Vec<f64>> = rows
                    .iter()
                    .map(|(_, p)| dist.iter().map(|a| a[*p]).collect())
                    .collect();
                let ours = [
                    ips(&rounds, &target).unwrap(),
                    snips(&rounds, &target).unwrap(),
                    doubly_robust(&rounds, &target, &q_hat).unwrap(),
                ];
                let theirs = [
                    e["ips"].as_f64().unwrap(),
                    e["snips"].as_f64().unwrap(),
                    e["dr"].as_f64().unwrap(),
                ];
                for (name, (o, t)) in ["ips", "snips", "dr"].iter().zip(ours.iter().zip(&theirs)) {
                    assert!(
                        close(*o, *t),
                        "{behavior} log, {policy} policy, {name}: ours {o}, obp {t}"
                    );
                }
            }
        }
    }
}

mod references {
    use regelkreis_measure::multiple::{benjamini_hochberg, holm};
    use regelkreis_measure::srm::SequentialSrm;
    use serde_json::Value;

    const GOLDEN: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/multitest_ssrm.json"
    );

    fn floats(v: &Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    fn golden() -> Value {
        serde_json::from_str(&std::fs::read_to_string(GOLDEN).unwrap()).unwrap()
    }

    #[test]
    fn holm_and_benjamini_hochberg_match_statsmodels() {
        let g = golden();
        let cases = g["multipletests"].as_array().unwrap();
        assert!(cases.len() >= 500);
        for c in cases {
            let p = floats(&c["p"]);
            for (ours, theirs) in [
                (holm(&p), floats(&c["holm"])),
                (benjamini_hochberg(&p), floats(&c["fdr_bh"])),
            ] {
                for (o, t) in ours.iter().zip(&theirs) {
                    assert!(
                        (o - t).abs() <= 1e-12 * t.abs().max(1e-300),
                        "{p:?}: ours {ours:?}, statsmodels {theirs:?}"
                    );
                }
            }
        }
    }

    /// Always-valid SRM p-values agree with ssrm-test after every batch. Its log Bayes
    /// factors are sums of log-gamma terms of arguments up to ~10⁶, so both sides carry
    /// rounding of ~1e-9 in the exponent; 1e-7 relative leaves room for that and nothing
    /// else.
    #[test]
    fn sequential_srm_matches_ssrm_test() {
        let g = golden();
        let cases = g["ssrm"].as_array().unwrap();
        assert!(cases.len() >= 200);
        let mut flagged = 0;
        for c in cases {
            let mut test = SequentialSrm::new(&floats(&c["null"]), 10_000.0);
            for (batch, expected) in c["batches"]
                .as_array()
                .unwrap()
                .iter()
                .zip(floats(&c["p_values"]))
            {
                let p = test.update(&floats(batch));
                assert!(
                    (p - expected).abs() <= 1e-7 * expected.abs().max(1e-300),
                    "ours {p}, ssrm-test {expected}"
                );
            }
            flagged += usize::from(test.p_value() < 0.05);
        }
        assert!(
            flagged > 10,
            "some generated splits are skewed enough to flag"
        );
    }
}
