//! `/api/mmm`, `/api/uplift`, `/api/geo` and `/api/drift`: the second half of the
//! measure crate over HTTP. Everything is computed from the request body (no state);
//! model fits run on the blocking pool. A drift check writes a `drift_check` event and,
//! when it finds drift, a `drift_alert` event and a bump of
//! `regelkreis_drift_alerts_total{tenant, feature}` for Prometheus to alert on.

use crate::extract::ApiJson;
use crate::measure_api::{allocation_json, fit_json, parse_bounds, MmmArgs, Table};
use crate::{ApiError, AppState, Principal};
use axum::extract::State;
use axum::Json;
use regelkreis_core::{EventKind, NewEvent, Tags, Timestamp};
use regelkreis_measure::drift::{embedding_drift, ks_2samp, psi, FeatureKind, PSI_DRIFT};
use regelkreis_measure::geo::{difference_in_differences, synthetic_control, Panel, Robust};
use regelkreis_measure::mmm::{fit, optimize_budget};
use regelkreis_measure::uplift::{
    auuc, fit_forest, fit_meta, qini, BaseLearner, BoostingParams, Definition, ForestParams,
    MetaLearner, UpliftData,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// Most rows a request may carry into a model fit.
const MAX_ROWS: usize = 200_000;
/// Most sampler steps (chains × (tune + draws)) one MMM request may ask for.
const MAX_SAMPLER_STEPS: u64 = 100_000;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("task failed: {e}")))?
}

/// A model-fit request: `data` (column name → values), optional `budget`, `weeks` and
/// `bounds` (for optimize), and every field of [`MmmArgs`] beside them. Parsed in two
/// steps so that a misspelt field is refused (serde cannot deny unknown fields of a
/// flattened struct).
#[derive(Debug)]
pub(super) struct MmmRequest {
    data: Value,
    args: MmmArgs,
    budget: Option<f64>,
    weeks: Option<usize>,
    bounds: Option<String>,
}

impl MmmRequest {
    fn parse(body: Value) -> Result<MmmRequest, ApiError> {
        let Value::Object(mut fields) = body else {
            return Err(ApiError::Unprocessable(
                "the body must be a JSON object".into(),
            ));
        };
        let data = fields
            .remove("data")
            .ok_or_else(|| ApiError::Unprocessable("data is required".into()))?;
        let take = |fields: &mut serde_json::Map<String, Value>, key: &str| fields.remove(key);
        let budget = match take(&mut fields, "budget") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_f64()
                    .ok_or_else(|| ApiError::Unprocessable("budget must be a number".into()))?,
            ),
        };
        let weeks = match take(&mut fields, "weeks") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|w| usize::try_from(w).ok())
                    .ok_or_else(|| {
                        ApiError::Unprocessable("weeks must be a whole number".into())
                    })?,
            ),
        };
        let bounds = match take(&mut fields, "bounds") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                return Err(ApiError::Unprocessable(
                    "bounds must be a string a=lo:hi,…".into(),
                ))
            }
        };
        let args: MmmArgs = serde_json::from_value(Value::Object(fields))
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        Ok(MmmRequest {
            data,
            args,
            budget,
            weeks,
            bounds,
        })
    }
}

fn mmm_inputs(
    body: &MmmRequest,
) -> Result<
    (
        regelkreis_measure::mmm::MmmSpec,
        regelkreis_measure::mmm::MmmData,
        regelkreis_measure::mcmc::SamplerOptions,
    ),
    ApiError,
> {
    let table = Table::from_json(&body.data).map_err(ApiError::Unprocessable)?;
    if table.columns.first().map_or(0, |c| c.1.len()) > MAX_ROWS {
        return Err(ApiError::PayloadTooLarge(format!(
            "more than {MAX_ROWS} rows"
        )));
    }
    let data = body.args.data(&table).map_err(ApiError::Unprocessable)?;
    let spec = body.args.spec().map_err(ApiError::Unprocessable)?;
    let mut sampler = body.args.sampler().map_err(ApiError::Unprocessable)?;
    // A fit cannot be cancelled once it runs on the blocking pool: bound its work.
    let steps = sampler.chains as u64 * (sampler.tune + sampler.draws);
    if steps > MAX_SAMPLER_STEPS {
        return Err(ApiError::Unprocessable(format!(
            "chains × (tune + draws) = {steps}; at most {MAX_SAMPLER_STEPS} per request (use the CLI for more)"
        )));
    }
    // The server shares its cores: at most 2 sampler threads per request.
    sampler.threads = sampler.threads.min(2);
    Ok((spec, data, sampler))
}

/// `POST /api/mmm/fit`: the same JSON as `regelkreis mmm fit --json`.
pub(super) async fn mmm_fit(
    _principal: Principal,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let body = MmmRequest::parse(body)?;
    let (spec, data, sampler) = mmm_inputs(&body)?;
    let lifts = body.args.lift_tests();
    blocking(move || {
        let fitted = fit(&spec, &data, &lifts, sampler, &|_, _| {})
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        let channels = fitted.channel_summaries();
        let mut out = fit_json(&fitted, &channels);
        let curves: serde_json::Map<String, Value> = fitted
            .channels()
            .iter()
            .filter_map(|c| {
                let points = fitted.response_curve(c, &[0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0])?;
                Some((
                    c.clone(),
                    Value::Array(
                        points
                            .iter()
                            .map(|p| {
                                json!({ "multiplier": p.multiplier, "spend": p.spend,
                                        "contribution": crate::measure_api::interval_json(p.contribution) })
                            })
                            .collect(),
                    ),
                ))
            })
            .collect();
        out["response_curves"] = Value::Object(curves);
        Ok(Json(out))
    })
    .await
}

/// `POST /api/mmm/optimize`: the same JSON as `regelkreis mmm optimize --json`.
pub(super) async fn mmm_optimize(
    _principal: Principal,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let body = MmmRequest::parse(body)?;
    let (spec, data, sampler) = mmm_inputs(&body)?;
    let budget = body
        .budget
        .ok_or_else(|| ApiError::Unprocessable("budget is required".into()))?;
    let weeks = body
        .weeks
        .ok_or_else(|| ApiError::Unprocessable("weeks is required".into()))?;
    let bounds = match &body.bounds {
        Some(text) => parse_bounds(text).map_err(ApiError::Unprocessable)?,
        None => Vec::new(),
    };
    let lifts = body.args.lift_tests();
    blocking(move || {
        let fitted = fit(&spec, &data, &lifts, sampler, &|_, _| {})
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        let allocation = optimize_budget(&fitted, budget, weeks, &bounds)
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        Ok(Json(allocation_json(&allocation)))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Rows {
    features: Vec<Vec<f64>>,
    #[serde(default)]
    treated: Vec<bool>,
    #[serde(default)]
    outcome: Vec<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpliftRequest {
    /// Rows to learn from.
    train: Rows,
    /// Rows to score (default: the training rows).
    #[serde(default)]
    score: Option<Rows>,
    /// `s`, `t`, `x` or `forest`.
    #[serde(default = "default_learner")]
    learner: String,
    /// `linear`, `logistic` or `boosting` (meta-learners).
    #[serde(default = "default_base")]
    base: String,
}

fn default_learner() -> String {
    "t".into()
}

fn default_base() -> String {
    "boosting".into()
}

/// `POST /api/uplift`: fit a learner, score rows; with outcomes and treatment flags on
/// the scored rows, also their Qini and AUUC under both definitions.
pub(super) async fn uplift(
    _principal: Principal,
    ApiJson(body): ApiJson<UpliftRequest>,
) -> Result<Json<Value>, ApiError> {
    if body.train.features.len() > MAX_ROWS {
        return Err(ApiError::PayloadTooLarge(format!(
            "more than {MAX_ROWS} rows"
        )));
    }
    let base = match body.base.as_str() {
        "linear" => BaseLearner::Linear { l2: 1.0 },
        "logistic" => BaseLearner::Logistic { l2: 1.0 },
        "boosting" => BaseLearner::Boosting(BoostingParams::default()),
        other => {
            return Err(ApiError::Unprocessable(format!(
                "base {other:?}: use linear, logistic or boosting"
            )))
        }
    };
    let meta = match body.learner.as_str() {
        "s" => Some(MetaLearner::S),
        "t" => Some(MetaLearner::T),
        "x" => Some(MetaLearner::X),
        "forest" => None,
        other => {
            return Err(ApiError::Unprocessable(format!(
                "learner {other:?}: use s, t, x or forest"
            )))
        }
    };
    blocking(move || {
        let train = UpliftData {
            features: body.train.features,
            treated: body.train.treated,
            outcome: body.train.outcome,
        };
        let model = match meta {
            Some(meta) => fit_meta(&train, meta, base),
            None => fit_forest(&train, ForestParams::default()),
        }
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        let scored = body.score.unwrap_or(Rows {
            features: train.features,
            treated: train.treated,
            outcome: train.outcome,
        });
        let width = scored.features.first().map_or(0, Vec::len);
        if scored.features.iter().any(|r| r.len() != width) {
            return Err(ApiError::Unprocessable(
                "score rows differ in length".into(),
            ));
        }
        let uplift = model.predict_all(&scored.features);
        let mut out = json!({ "uplift": uplift });
        if !scored.outcome.is_empty() {
            let (y, t) = (&scored.outcome, &scored.treated);
            let bad =
                |e: regelkreis_measure::uplift::UpliftError| ApiError::Unprocessable(e.to_string());
            out["qini"] = json!({
                "causalml": qini(y, t, &uplift, Definition::CausalMl).map_err(bad)?,
                "scikit_uplift": qini(y, t, &uplift, Definition::ScikitUplift).map_err(bad)?,
            });
            out["auuc"] = json!({
                "causalml": auuc(y, t, &uplift, Definition::CausalMl).map_err(bad)?,
                "scikit_uplift": auuc(y, t, &uplift, Definition::ScikitUplift).map_err(bad)?,
            });
        }
        Ok(Json(out))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GeoRequest {
    units: Vec<String>,
    outcomes: Vec<Vec<f64>>,
    treated: Vec<String>,
    first_post: usize,
    /// `cluster` (default) or `hc1` for difference-in-differences.
    #[serde(default)]
    robust: Option<String>,
    /// Predictor weights per pre-period for synthetic control.
    #[serde(default)]
    v: Option<Vec<f64>>,
}

fn panel(body: &GeoRequest) -> Result<Panel, ApiError> {
    if let Some(unknown) = body.treated.iter().find(|t| !body.units.contains(t)) {
        return Err(ApiError::Unprocessable(format!(
            "treated unit {unknown:?} is not in units"
        )));
    }
    Ok(Panel {
        treated: body
            .units
            .iter()
            .map(|u| body.treated.contains(u))
            .collect(),
        units: body.units.clone(),
        outcomes: body.outcomes.clone(),
        first_post: body.first_post,
    })
}

/// `POST /api/geo/did`: two-way fixed-effects difference-in-differences.
pub(super) async fn geo_did(
    _principal: Principal,
    ApiJson(body): ApiJson<GeoRequest>,
) -> Result<Json<Value>, ApiError> {
    let robust = match body.robust.as_deref().unwrap_or("cluster") {
        "cluster" => Robust::ClusterByUnit,
        "hc1" => Robust::Hc1,
        other => {
            return Err(ApiError::Unprocessable(format!(
                "robust {other:?}: use cluster or hc1"
            )))
        }
    };
    let p = panel(&body)?;
    let r = difference_in_differences(&p, robust)
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    Ok(Json(json!({
        "effect": r.effect, "se": r.se, "p_value": r.p_value, "lo": r.lo, "hi": r.hi,
        "robust": body.robust.unwrap_or_else(|| "cluster".into()),
    })))
}

/// `POST /api/geo/synthetic-control`: weights, gaps, effect and placebo inference.
pub(super) async fn geo_synthetic_control(
    _principal: Principal,
    ApiJson(body): ApiJson<GeoRequest>,
) -> Result<Json<Value>, ApiError> {
    let p = panel(&body)?;
    let v = body.v.clone();
    blocking(move || {
        let sc = synthetic_control(&p, v.as_deref()).map_err(|e| ApiError::Unprocessable(e.to_string()))?;
        Ok(Json(json!({
            "weights": sc.donors.iter().map(|(n, w)| (n.clone(), json!(w))).collect::<serde_json::Map<_, _>>(),
            "gaps": sc.gaps, "effect": sc.effect, "pre_rmspe": sc.pre_rmspe, "post_rmspe": sc.post_rmspe,
            "p_value": sc.p_value, "lo": sc.lo, "hi": sc.hi, "placebos": sc.placebos,
        })))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DriftRequest {
    /// What is checked (a feature, a score, an embedding space).
    feature: String,
    #[serde(default)]
    reference: Vec<f64>,
    #[serde(default)]
    current: Vec<f64>,
    /// `numerical` (default) or `categorical`.
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    reference_embeddings: Vec<Vec<f32>>,
    #[serde(default)]
    current_embeddings: Vec<Vec<f32>>,
}

/// `POST /api/drift`: PSI and KS of a feature, or embedding drift; records the check.
pub(super) async fn drift(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<DriftRequest>,
) -> Result<Json<Value>, ApiError> {
    let bad = |e: regelkreis_measure::drift::DriftError| ApiError::Unprocessable(e.to_string());
    if body.feature.trim().is_empty() || body.feature.len() > 200 {
        return Err(ApiError::Unprocessable(
            "feature must be 1 to 200 characters".into(),
        ));
    }
    let mut result = json!({ "feature": body.feature });
    let mut drifted = false;
    let embeddings = !body.reference_embeddings.is_empty() || !body.current_embeddings.is_empty();
    if embeddings {
        let (r, c) = (body.reference_embeddings, body.current_embeddings);
        let e = blocking(move || embedding_drift(&r, &c, 200, 7).map_err(bad)).await?;
        drifted |= e.p_value < 0.05;
        result["embedding"] =
            json!({ "cosine_distance": e.distance, "p_value": e.p_value, "permutations": 200 });
    } else {
        let kind = match body.kind.as_deref().unwrap_or("numerical") {
            "numerical" => FeatureKind::Numerical,
            "categorical" => FeatureKind::Categorical,
            other => {
                return Err(ApiError::Unprocessable(format!(
                    "kind {other:?}: use numerical or categorical"
                )))
            }
        };
        let index = psi(&body.reference, &body.current, kind).map_err(bad)?;
        let ks = ks_2samp(&body.reference, &body.current).map_err(bad)?;
        drifted |= index >= PSI_DRIFT || ks.p_value < 0.05;
        result["psi"] = json!(index);
        result["ks"] =
            json!({ "statistic": ks.statistic, "p_value": ks.p_value, "exact": ks.exact });
    }
    result["drift"] = json!(drifted);
    let mut events = vec![NewEvent {
        tenant: principal.tenant.clone(),
        at: Timestamp::now(),
        tags: Tags::default(),
        kind: EventKind::Custom {
            name: "drift_check".into(),
            data: result.clone(),
        },
    }];
    if drifted {
        state
            .metrics
            .drift_alerts
            .with_label_values(&[principal.tenant.as_str(), body.feature.as_str()])
            .inc();
        tracing::warn!(tenant = principal.tenant.as_str(), feature = %body.feature, "drift detected");
        events.push(NewEvent {
            tenant: principal.tenant.clone(),
            at: Timestamp::now(),
            tags: Tags::default(),
            kind: EventKind::Custom {
                name: "drift_alert".into(),
                data: result.clone(),
            },
        });
    }
    state.blocking(move |s| s.append_events(&events)).await?;
    Ok(Json(result))
}
