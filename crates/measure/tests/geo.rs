//! Geo experiments on California's Proposition 99 (Abadie, Diamond and Hainmueller 2010;
//! `../shared/data/causal/california_prop99.csv`) against pysyncon 1.5.x and statsmodels
//! 0.14.4 (`scripts/geo_golden.sh` wrote the golden file).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use regelkreis_measure::geo::{difference_in_differences, synthetic_control, Panel, Robust};
use serde_json::Value;

fn prop99(treated: &[&str]) -> Panel {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/causal/california_prop99.csv"
    );
    let text = std::fs::read_to_string(path).expect("../shared/data is beside the project");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let years: Vec<f64> = rows.iter().map(|r| r[0]).collect();
    let units: Vec<String> = header[1..].iter().map(|s| s.to_string()).collect();
    Panel {
        outcomes: (1..header.len())
            .map(|c| rows.iter().map(|r| r[c]).collect())
            .collect(),
        treated: units
            .iter()
            .map(|u| treated.contains(&u.as_str()))
            .collect(),
        units,
        first_post: years.iter().position(|y| *y >= 1989.0).unwrap(),
    }
}

fn golden() -> Value {
    serde_json::from_str(include_str!("golden/geo.json")).unwrap()
}

#[test]
fn synthetic_california_weights_match_pysyncon_to_1e_4() {
    let panel = prop99(&["California"]);
    let pre = panel.first_post;
    let sc = synthetic_control(&panel, Some(&vec![1.0 / pre as f64; pre])).unwrap();
    let theirs = &golden()["synth_weights"];
    let mut worst: f64 = 0.0;
    for (state, w) in &sc.donors {
        let t = theirs[state].as_f64().unwrap();
        worst = worst.max((w - t).abs());
        assert!(
            (w - t).abs() < 1e-4,
            "{state}: ours {w:.6}, pysyncon {t:.6}"
        );
    }
    eprintln!("largest weight difference {worst:.2e}");
    // Abadie et al. report about −26 packs per capita by 2000; the mean gap 1989–2000 is
    // smaller (the effect grows). With the outcome as the only predictor California's
    // post/pre RMSPE ratio ranks third of 39 (p = 3/39).
    let last = *sc.gaps.last().unwrap();
    eprintln!(
        "gap in 2000 {last:.1}, mean gap 1989–2000 {:.1} [{:.1}, {:.1}], p {:.3}",
        sc.effect, sc.lo, sc.hi, sc.p_value
    );
    assert!((-32.0..-18.0).contains(&last), "gap in 2000: {last}");
    assert!(sc.effect < -10.0 && sc.hi < 0.0, "{sc:?}");
    assert!(sc.p_value < 0.1, "p {}", sc.p_value);
}

#[test]
fn difference_in_differences_matches_statsmodels() {
    let g = golden();
    let treated: Vec<&str> = g["did_treated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let panel = prop99(&treated);
    let cluster = difference_in_differences(&panel, Robust::ClusterByUnit).unwrap();
    let hc1 = difference_in_differences(&panel, Robust::Hc1).unwrap();
    let d = &g["did"];
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-12);
    assert!(
        close(cluster.effect, d["effect"].as_f64().unwrap()),
        "{cluster:?}"
    );
    assert!(
        close(cluster.se, d["cluster_se"].as_f64().unwrap()),
        "{cluster:?} vs {d}"
    );
    assert!(
        close(cluster.p_value, d["cluster_p"].as_f64().unwrap()),
        "{cluster:?} vs {d}"
    );
    assert!(
        close(hc1.se, d["hc1_se"].as_f64().unwrap()),
        "{hc1:?} vs {d}"
    );
    assert!(
        close(hc1.p_value, d["hc1_p"].as_f64().unwrap()),
        "{hc1:?} vs {d}"
    );
}
