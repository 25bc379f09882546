//! `regelkreis stats ab`: every A/B analysis checkable from the shell. Reads JSON lines
//! on stdin, writes one JSON line per input, in order; a malformed line gets an error
//! line with its id and the rest go on.

use regelkreis_measure::abtest::{
    bayesian_test, prepare, sequential_ttest, srm_p_value, ttest, BayesianConfig, BayesianResult,
    Difference, FrequentistResult, GaussianPrior, PriorScale, Statistic,
};
use serde_json::{json, Map, Value};
use std::io::{BufRead, Write};

/// Reads lines from `input` and writes one answer line per non-empty line to `output`.
pub fn run_ab(input: impl BufRead, output: impl Write) -> anyhow::Result<()> {
    crate::cli::answer_lines(input, output, ab_line)
}

/// Answers one input line.
pub fn ab_line(line: &str) -> Value {
    let parsed: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return json!({ "id": null, "error": format!("invalid JSON: {e}") }),
    };
    let id = parsed.get("id").cloned().unwrap_or(Value::Null);
    match analyse(&parsed) {
        Ok(mut out) => {
            out.insert("id".into(), id);
            Value::Object(out)
        }
        Err(e) => json!({ "id": id, "error": e }),
    }
}

fn num(v: &Value, field: &str) -> Result<f64, String> {
    match v.get(field) {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or_else(|| format!("{field} must be a finite number")),
        Some(_) => Err(format!("{field} must be a number")),
        None => Err(format!("missing field {field}")),
    }
}

fn opt_num(v: &Value, field: &str, default: f64) -> Result<f64, String> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(_) => num(v, field),
    }
}

fn units(v: &Value) -> Result<u64, String> {
    match v.get("n") {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15)
                    .map(|f| f as u64)
            })
            .ok_or_else(|| "n must be a non-negative integer".to_owned()),
        _ => Err("missing or non-numeric field n".to_owned()),
    }
}

fn arm(kind: &str, v: &Value, which: &str) -> Result<Statistic, String> {
    if !v.is_object() {
        return Err(format!("{which} must be an object"));
    }
    let e = |m: String| format!("{which}: {m}");
    let n = units(v).map_err(e)?;
    let mean = |sum: &str, ss: &str| -> Result<Statistic, String> {
        Ok(Statistic::Mean {
            n,
            sum: num(v, sum).map_err(e)?,
            sum_squares: num(v, ss).map_err(e)?,
        })
    };
    let proportion = |field: &str| -> Result<Statistic, String> {
        Ok(Statistic::Proportion {
            n,
            sum: num(v, field).map_err(e)?,
        })
    };
    Ok(match kind {
        "mean" => mean("sum", "sum_squares")?,
        "binomial" => proportion("conversions")?,
        "cuped_mean" => Statistic::RegressionAdjusted {
            n,
            post: Box::new(mean("sum", "sum_squares")?),
            pre: Box::new(mean("pre_sum", "pre_sum_squares")?),
            cross_sum: num(v, "cross_sum").map_err(e)?,
            theta: 0.0,
        },
        "quantile" => Statistic::Quantile {
            n,
            n_star: units(&json!({"n": v.get("n_star").cloned().unwrap_or(Value::Null)}))
                .map_err(|m| e(m.replace("n must", "n_star must")))?,
            nu: {
                let nu = num(v, "nu").map_err(e)?;
                if !(nu > 0.0 && nu < 1.0) {
                    return Err(e("nu must be in (0, 1)".into()));
                }
                nu
            },
            estimate: num(v, "quantile_hat").map_err(e)?,
            lower: num(v, "quantile_lower").map_err(e)?,
            upper: num(v, "quantile_upper").map_err(e)?,
        },
        "ratio" => Statistic::Ratio {
            n,
            numerator: Box::new(mean("m_sum", "m_sum_squares")?),
            denominator: Box::new(mean("d_sum", "d_sum_squares")?),
            cross_sum: num(v, "m_d_sum_of_products").map_err(e)?,
        },
        "cuped_binomial" => Statistic::RegressionAdjusted {
            n,
            post: Box::new(proportion("conversions")?),
            pre: Box::new(proportion("pre_conversions")?),
            cross_sum: num(v, "cross_sum").map_err(e)?,
            theta: 0.0,
        },
        other => return Err(format!("unknown kind {other:?}")),
    })
}

fn frequentist(r: FrequentistResult) -> Value {
    json!({
        "estimate": r.estimate,
        "ci_low": r.ci_low,
        "ci_high": r.ci_high,
        "se": r.se,
        "p_value": r.p_value,
        "error": r.error.map(|d| d.code()),
    })
}

fn bayesian(r: BayesianResult) -> Value {
    json!({
        "estimate": r.estimate,
        "ci_low": r.ci_low,
        "ci_high": r.ci_high,
        "se": r.se,
        "chance_to_win": r.chance_to_win,
        "risk_control": r.risk_control,
        "risk_treatment": r.risk_treatment,
        "error": r.error.map(|d| d.code()),
    })
}

fn numbers(v: &Value, field: &str) -> Result<Vec<f64>, String> {
    v.get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("missing array {field}"))?
        .iter()
        .map(|x| {
            x.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .ok_or_else(|| format!("{field} must hold non-negative numbers"))
        })
        .collect()
}

fn analyse(v: &Value) -> Result<Map<String, Value>, String> {
    let kind = v
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("missing field kind")?;
    let mut out = Map::new();
    if kind == "srm" {
        let counts = numbers(v, "counts")?;
        let weights = numbers(v, "weights")?;
        if counts.len() != weights.len() || counts.len() < 2 {
            return Err("counts and weights must have the same length, at least 2".into());
        }
        out.insert("srm_p_value".into(), json!(srm_p_value(&counts, &weights)));
        return Ok(out);
    }
    let alpha = opt_num(v, "alpha", 0.05)?;
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err("alpha must be between 0 and 1".into());
    }
    let tuning = opt_num(v, "sequential_tuning_parameter", 5000.0)?;
    if tuning <= 0.0 {
        return Err("sequential_tuning_parameter must be positive".into());
    }
    let inverse = match v.get("inverse") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("inverse must be a boolean".into()),
    };
    let control = arm(kind, v.get("control").unwrap_or(&Value::Null), "control")?;
    let treatment = arm(
        kind,
        v.get("treatment").unwrap_or(&Value::Null),
        "treatment",
    )?;
    let (a, b, theta) = prepare(&control, &treatment);
    let (prior, prior_scale) = prior_of(v)?;
    let config = BayesianConfig {
        alpha,
        inverse,
        prior,
        prior_scale,
    };
    for (name, d) in [
        ("relative", Difference::Relative),
        ("absolute", Difference::Absolute),
    ] {
        out.insert(
            format!("ttest_{name}"),
            frequentist(ttest(&a, &b, d, alpha)),
        );
        out.insert(
            format!("sequential_{name}"),
            frequentist(sequential_ttest(&a, &b, d, alpha, tuning)),
        );
        out.insert(
            format!("bayesian_{name}"),
            bayesian(bayesian_test(&a, &b, d, &config)),
        );
    }
    if let Some(theta) = theta {
        out.insert("cuped_theta".into(), json!(theta));
    }
    Ok(out)
}

/// An optional `"prior": {"mean", "variance", "proper", "type": "relative"|"absolute"}`;
/// without it the Bayesian test uses gbstats' default flat prior.
fn prior_of(v: &Value) -> Result<(GaussianPrior, PriorScale), String> {
    let Some(p) = v.get("prior").filter(|p| !p.is_null()) else {
        return Ok((GaussianPrior::default(), PriorScale::Relative));
    };
    let mean = opt_num(p, "mean", 0.0)?;
    let variance = opt_num(p, "variance", 1.0)?;
    if variance <= 0.0 {
        return Err("prior variance must be positive".into());
    }
    let proper = match p.get("proper") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("prior.proper must be a boolean".into()),
    };
    let scale = match p.get("type").and_then(Value::as_str) {
        None | Some("relative") => PriorScale::Relative,
        Some("absolute") => PriorScale::Absolute,
        Some(other) => {
            return Err(format!(
                "prior.type must be relative or absolute, not {other:?}"
            ))
        }
    };
    Ok((
        GaussianPrior {
            mean,
            variance,
            proper,
        },
        scale,
    ))
}
