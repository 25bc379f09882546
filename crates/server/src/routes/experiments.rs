//! `/api/experiments`: define experiments, assign units (GrowthBook-compatible hashing),
//! record exposures and outcomes as events, and read results computed from the log.

use super::util::{clean_key, collect_events, load_doc};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::{ApiError, AppState, Principal};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use regelkreis_core::{EventKind, NewEvent, Tags, Timestamp};
use regelkreis_measure::abtest::{
    bayesian_test, prepare, sequential_ttest, srm_p_value, ttest, BayesianConfig, Difference,
    Statistic,
};
use regelkreis_measure::assignment::{Assigner, Experiment, Holdout, Namespace};
use regelkreis_measure::multiple::holm;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;

const KIND: &str = "experiment";

/// The stored definition of an experiment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExperimentDef {
    key: String,
    /// Variation names; the first is control.
    variations: Vec<String>,
    #[serde(default)]
    weights: Option<Vec<f64>>,
    #[serde(default = "one")]
    coverage: f64,
    #[serde(default = "two")]
    hash_version: u32,
    #[serde(default)]
    seed: Option<String>,
    #[serde(default)]
    namespace: Option<NamespaceDef>,
    #[serde(default)]
    holdout: Option<HoldoutDef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldoutDef {
    id: String,
    share: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamespaceDef {
    id: String,
    start: f64,
    end: f64,
}

fn one() -> f64 {
    1.0
}
fn two() -> u32 {
    2
}

impl ExperimentDef {
    fn validate(&self) -> Result<(), ApiError> {
        clean_key(&self.key)?;
        if self.variations.len() < 2 || self.variations.len() > 100 {
            return Err(ApiError::Unprocessable(
                "an experiment has 2 to 100 variations".into(),
            ));
        }
        if let Some(w) = &self.weights {
            if w.len() != self.variations.len() || w.iter().any(|x| !x.is_finite() || *x < 0.0) {
                return Err(ApiError::Unprocessable(
                    "weights must be one non-negative number per variation".into(),
                ));
            }
            let total: f64 = w.iter().sum();
            if !(0.99..=1.01).contains(&total) {
                return Err(ApiError::Unprocessable("weights must sum to 1".into()));
            }
        }
        if !(0.0..=1.0).contains(&self.coverage) {
            return Err(ApiError::Unprocessable("coverage must be in [0, 1]".into()));
        }
        if !matches!(self.hash_version, 1 | 2) {
            return Err(ApiError::Unprocessable(
                "hash_version must be 1 or 2".into(),
            ));
        }
        if let Some(h) = &self.holdout {
            if !(0.0..=1.0).contains(&h.share) || h.id.is_empty() {
                return Err(ApiError::Unprocessable(
                    "holdout needs an id and a share in [0, 1]".into(),
                ));
            }
        }
        if let Some(ns) = &self.namespace {
            if !(0.0..=1.0).contains(&ns.start) || !(ns.start..=1.0).contains(&ns.end) {
                return Err(ApiError::Unprocessable(
                    "namespace range must satisfy 0 <= start <= end <= 1".into(),
                ));
            }
        }
        Ok(())
    }

    fn assigner(&self) -> Assigner {
        Assigner::new(&Experiment {
            key: self.key.clone(),
            variations: self.variations.len(),
            weights: self.weights.clone(),
            coverage: self.coverage,
            seed: self.seed.clone(),
            hash_version: self.hash_version,
            namespace: self.namespace.as_ref().map(|n| Namespace {
                id: n.id.clone(),
                start: n.start,
                end: n.end,
            }),
            holdout: self.holdout.as_ref().map(|h| Holdout {
                id: h.id.clone(),
                share: h.share,
            }),
        })
    }
}

pub(super) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(def): ApiJson<ExperimentDef>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    def.validate()?;
    let body = serde_json::to_string(&def).map_err(|e| ApiError::Internal(e.to_string()))?;
    let key = def.key.clone();
    state
        .blocking(move |s| s.put_document(&principal.tenant, KIND, &key, &body, None))
        .await?;
    Ok((StatusCode::CREATED, Json(json!(def))))
}

pub(super) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let docs = state
        .blocking(move |s| s.documents(&principal.tenant, KIND))
        .await?;
    let list: Vec<Value> = docs
        .iter()
        .filter_map(|d| serde_json::from_str(&d.body).ok())
        .collect();
    Ok(Json(json!({ "experiments": list })))
}

async fn definition(
    state: &AppState,
    principal: &Principal,
    key: &str,
) -> Result<ExperimentDef, ApiError> {
    let (def, _) = load_doc::<ExperimentDef>(state, principal, KIND, key).await?;
    Ok(def)
}

pub(super) async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(definition(&state, &principal, &key).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AssignBody {
    unit: String,
    #[serde(default = "yes")]
    record_exposure: bool,
}

fn yes() -> bool {
    true
}

pub(super) async fn assign(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<AssignBody>,
) -> Result<Json<Value>, ApiError> {
    if body.unit.is_empty() || body.unit.len() > 256 {
        return Err(ApiError::Unprocessable(
            "unit must be 1 to 256 bytes".into(),
        ));
    }
    let def = definition(&state, &principal, &key).await?;
    let variation = def.assigner().assign(&body.unit);
    if let (Some(v), true) = (variation, body.record_exposure) {
        let event = NewEvent {
            tenant: principal.tenant.clone(),
            at: Timestamp::now(),
            tags: Tags::default(),
            kind: EventKind::Exposure {
                experiment: def.key.clone(),
                arm: def.variations[v].clone(),
                unit: body.unit.clone(),
            },
        };
        state.blocking(move |s| s.append_events(&[event])).await?;
    }
    Ok(Json(json!({
        "experiment": def.key,
        "unit": body.unit,
        "in_experiment": variation.is_some(),
        "variation": variation,
        "name": variation.map(|v| def.variations[v].clone()),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OutcomeBody {
    unit: String,
    metric: String,
    value: f64,
}

pub(super) async fn outcomes(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let def = definition(&state, &principal, &key).await?;
    let items = match body {
        Value::Array(a) => a,
        v => vec![v],
    };
    if items.is_empty() || items.len() > 1_000 {
        return Err(ApiError::Unprocessable("send 1 to 1000 outcomes".into()));
    }
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let o: OutcomeBody = serde_json::from_value(item)
            .map_err(|e| ApiError::Unprocessable(format!("outcome {i}: {e}")))?;
        if !o.value.is_finite() {
            return Err(ApiError::Unprocessable(format!(
                "outcome {i}: value must be finite"
            )));
        }
        events.push(NewEvent {
            tenant: principal.tenant.clone(),
            at: Timestamp::now(),
            tags: Tags {
                feature: None,
                campaign: Some(def.key.clone()),
            },
            kind: EventKind::Outcome {
                name: o.metric,
                value: o.value,
                unit: Some(o.unit),
            },
        });
    }
    let ids = state.blocking(move |s| s.append_events(&events)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "ids": ids.iter().map(|i| i.0).collect::<Vec<_>>() })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResultsParams {
    metric: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    alpha: Option<f64>,
}

pub(super) async fn results(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
    ApiQuery(p): ApiQuery<ResultsParams>,
) -> Result<Json<Value>, ApiError> {
    let def = definition(&state, &principal, &key).await?;
    let alpha = p.alpha.unwrap_or(0.05);
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(ApiError::BadRequest("alpha must be in (0, 1)".into()));
    }
    let binomial = match p.kind.as_deref() {
        None | Some("mean") => false,
        Some("binomial") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "kind must be mean or binomial, not {other:?}"
            )))
        }
    };
    let exposures = collect_events(&state, &principal, "exposure").await?;
    let outcomes = collect_events(&state, &principal, "outcome").await?;
    // first exposure decides the unit's arm
    let index: HashMap<&str, usize> = def
        .variations
        .iter()
        .enumerate()
        .map(|(i, v)| (v.as_str(), i))
        .collect();
    let mut arm_of: HashMap<String, usize> = HashMap::new();
    for e in &exposures {
        if let EventKind::Exposure {
            experiment,
            arm,
            unit,
        } = &e.kind
        {
            if experiment == &def.key {
                if let Some(&i) = index.get(arm.as_str()) {
                    arm_of.entry(unit.clone()).or_insert(i);
                }
            }
        }
    }
    let mut value_of: HashMap<&str, f64> = HashMap::new();
    for e in &outcomes {
        if let EventKind::Outcome {
            name,
            value,
            unit: Some(unit),
        } = &e.kind
        {
            if name == &p.metric && arm_of.contains_key(unit.as_str()) {
                *value_of.entry(unit.as_str()).or_insert(0.0) += value;
            }
        }
    }
    let k = def.variations.len();
    let (mut n, mut sum, mut ss) = (vec![0u64; k], vec![0.0; k], vec![0.0; k]);
    for (unit, &arm) in &arm_of {
        let v = value_of.get(unit.as_str()).copied().unwrap_or(0.0);
        let v = if binomial {
            f64::from(u8::from(v > 0.0))
        } else {
            v
        };
        n[arm] += 1;
        sum[arm] += v;
        ss[arm] += v * v;
    }
    let stat = |i: usize| {
        if binomial {
            Statistic::Proportion {
                n: n[i],
                sum: sum[i],
            }
        } else {
            Statistic::Mean {
                n: n[i],
                sum: sum[i],
                sum_squares: ss[i],
            }
        }
    };
    let weights = def
        .weights
        .clone()
        .unwrap_or_else(|| vec![1.0 / k as f64; k]);
    let counts: Vec<f64> = n.iter().map(|&x| x as f64).collect();
    let mut variations = Vec::new();
    for (i, (name, units)) in def.variations.iter().zip(&n).enumerate() {
        let s = stat(i);
        let mut row = json!({ "name": name, "units": units, "mean": s.mean() });
        if i > 0 {
            let (a, b, _) = prepare(&stat(0), &s);
            let t = ttest(&a, &b, Difference::Relative, alpha);
            let q = sequential_ttest(&a, &b, Difference::Relative, alpha, 5000.0);
            let bayes = bayesian_test(
                &a,
                &b,
                Difference::Relative,
                &BayesianConfig {
                    alpha,
                    ..Default::default()
                },
            );
            row["lift"] = json!({
                "estimate": t.estimate, "ci_low": t.ci_low, "ci_high": t.ci_high,
                "p_value": t.p_value, "error": t.error.map(|d| d.code()),
            });
            row["sequential"] =
                json!({ "ci_low": q.ci_low, "ci_high": q.ci_high, "p_value": q.p_value });
            row["bayesian"] = json!({
                "chance_to_win": bayes.chance_to_win, "risk_control": bayes.risk_control,
                "risk_treatment": bayes.risk_treatment, "ci_low": bayes.ci_low, "ci_high": bayes.ci_high,
            });
        }
        variations.push(row);
    }
    // Holm's correction across the treatment variations
    let raw: Vec<f64> = variations
        .iter()
        .skip(1)
        .map(|v| v["lift"]["p_value"].as_f64().unwrap_or(1.0))
        .collect();
    for (v, adjusted) in variations.iter_mut().skip(1).zip(holm(&raw)) {
        v["lift"]["p_value_holm"] = json!(adjusted);
    }
    Ok(Json(json!({
        "experiment": def.key,
        "metric": p.metric,
        "kind": if binomial { "binomial" } else { "mean" },
        "srm_p_value": srm_p_value(&counts, &weights),
        "variations": variations,
    })))
}
