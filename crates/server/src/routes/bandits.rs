//! `/api/bandits`: bandits whose state lives in the store. `decide` picks an arm (and logs
//! an exposure event), `reward` updates the arm with a compare-and-swap write, so
//! concurrent rewards from several server replicas are never lost.

use super::util::{clean_key, load_doc};
use crate::extract::{ApiJson, ApiPath};
use crate::{ApiError, AppState, Principal};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use regelkreis_core::{EventKind, NewEvent, Tags, Timestamp};
use regelkreis_measure::bandit::{ArmState, Bandit, LinearArm, LinearBandit, LinearPolicy, Policy};
use regelkreis_measure::rng::Rng;
use regelkreis_store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const KIND: &str = "bandit";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
enum PolicyDef {
    Thompson {
        alpha: f64,
        beta: f64,
    },
    GaussianThompson,
    TopTwoThompson {
        beta: f64,
    },
    Ucb1 {
        c: f64,
    },
    EpsilonGreedy {
        epsilon: f64,
    },
    Linucb {
        alpha: f64,
        dimension: usize,
        lambda: f64,
    },
    LinThompson {
        v: f64,
        dimension: usize,
        lambda: f64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LinearArmDoc {
    a_inv: Vec<f64>,
    b: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BanditDoc {
    key: String,
    arms: Vec<String>,
    policy: PolicyDef,
    min_pulls: u64,
    /// pulls, Σ reward, Σ reward² per arm (context-free policies)
    #[serde(default)]
    counts: Vec<(u64, f64, f64)>,
    /// ridge state per arm (linear policies)
    #[serde(default)]
    linear: Vec<LinearArmDoc>,
}

enum Model {
    Plain(Bandit),
    Linear(LinearBandit),
}

impl BanditDoc {
    fn model(&self) -> Model {
        let plain = |policy| {
            let mut b = Bandit::new(policy, self.arms.len(), self.min_pulls);
            for (arm, &(pulls, sum, sq)) in b.arms.iter_mut().zip(&self.counts) {
                *arm = ArmState {
                    pulls,
                    reward_sum: sum,
                    reward_sq_sum: sq,
                };
            }
            Model::Plain(b)
        };
        let linear = |policy, dimension, lambda| {
            let mut b = LinearBandit::new(policy, self.arms.len(), dimension, lambda);
            for (arm, doc) in b.arms.iter_mut().zip(&self.linear) {
                *arm = LinearArm {
                    a_inv: doc.a_inv.clone(),
                    b: doc.b.clone(),
                };
            }
            Model::Linear(b)
        };
        match self.policy {
            PolicyDef::Thompson { alpha, beta } => plain(Policy::BetaThompson { alpha, beta }),
            PolicyDef::GaussianThompson => plain(Policy::GaussianThompson),
            PolicyDef::TopTwoThompson { beta } => plain(Policy::TopTwoThompson { beta }),
            PolicyDef::Ucb1 { c } => plain(Policy::Ucb1 { c }),
            PolicyDef::EpsilonGreedy { epsilon } => plain(Policy::EpsilonGreedy { epsilon }),
            PolicyDef::Linucb {
                alpha,
                dimension,
                lambda,
            } => linear(LinearPolicy::LinUcb { alpha }, dimension, lambda),
            PolicyDef::LinThompson {
                v,
                dimension,
                lambda,
            } => linear(LinearPolicy::LinThompson { v }, dimension, lambda),
        }
    }

    fn store_model(&mut self, model: &Model) {
        match model {
            Model::Plain(b) => {
                self.counts = b
                    .arms
                    .iter()
                    .map(|a| (a.pulls, a.reward_sum, a.reward_sq_sum))
                    .collect();
            }
            Model::Linear(b) => {
                self.linear = b
                    .arms
                    .iter()
                    .map(|a| LinearArmDoc {
                        a_inv: a.a_inv.clone(),
                        b: a.b.clone(),
                    })
                    .collect();
            }
        }
    }

    fn view(&self) -> Value {
        let arms: Vec<Value> = self
            .arms
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let (pulls, sum, _) = self.counts.get(i).copied().unwrap_or((0, 0.0, 0.0));
                let mut v = json!({ "name": name, "pulls": pulls, "reward_sum": sum,
                    "mean": if pulls > 0 { sum / pulls as f64 } else { 0.0 } });
                if let Some(l) = self.linear.get(i) {
                    let d = l.b.len();
                    let theta: Vec<f64> = (0..d)
                        .map(|r| (0..d).map(|c| l.a_inv[r * d + c] * l.b[c]).sum())
                        .collect();
                    v["theta"] = json!(theta);
                }
                v
            })
            .collect();
        json!({ "key": self.key, "policy": self.policy, "min_pulls": self.min_pulls, "arms": arms })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBandit {
    key: String,
    arms: Vec<String>,
    policy: String,
    #[serde(default)]
    min_pulls: u64,
    alpha: Option<f64>,
    beta: Option<f64>,
    c: Option<f64>,
    epsilon: Option<f64>,
    v: Option<f64>,
    lambda: Option<f64>,
    dimension: Option<usize>,
}

fn positive(name: &str, v: Option<f64>, default: f64) -> Result<f64, ApiError> {
    let v = v.unwrap_or(default);
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(ApiError::Unprocessable(format!(
            "{name} must be a positive number"
        )))
    }
}

impl CreateBandit {
    fn policy(&self) -> Result<PolicyDef, ApiError> {
        let dimension = || match self.dimension {
            Some(d) if (1..=256).contains(&d) => Ok(d),
            _ => Err(ApiError::Unprocessable(
                "linear policies need dimension 1 to 256".into(),
            )),
        };
        Ok(match self.policy.as_str() {
            "thompson" => PolicyDef::Thompson {
                alpha: positive("alpha", self.alpha, 1.0)?,
                beta: positive("beta", self.beta, 1.0)?,
            },
            "gaussian_thompson" => PolicyDef::GaussianThompson,
            "top_two_thompson" => {
                let beta = self.beta.unwrap_or(0.5);
                if !(0.0..=1.0).contains(&beta) {
                    return Err(ApiError::Unprocessable("beta must be in [0, 1]".into()));
                }
                PolicyDef::TopTwoThompson { beta }
            }
            "ucb1" => PolicyDef::Ucb1 { c: positive("c", self.c, 1.0)? },
            "epsilon_greedy" => {
                let epsilon = self.epsilon.unwrap_or(0.1);
                if !(0.0..=1.0).contains(&epsilon) {
                    return Err(ApiError::Unprocessable("epsilon must be in [0, 1]".into()));
                }
                PolicyDef::EpsilonGreedy { epsilon }
            }
            "linucb" => PolicyDef::Linucb {
                alpha: positive("alpha", self.alpha, 1.0)?,
                dimension: dimension()?,
                lambda: positive("lambda", self.lambda, 1.0)?,
            },
            "lin_thompson" => PolicyDef::LinThompson {
                v: positive("v", self.v, 0.25)?,
                dimension: dimension()?,
                lambda: positive("lambda", self.lambda, 1.0)?,
            },
            other => {
                return Err(ApiError::Unprocessable(format!(
                    "unknown policy {:?}; known: thompson, gaussian_thompson, top_two_thompson, ucb1, epsilon_greedy, linucb, lin_thompson",
                    other.chars().take(40).collect::<String>()
                )))
            }
        })
    }
}

pub(super) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateBandit>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    clean_key(&body.key)?;
    if body.arms.len() < 2 || body.arms.len() > 1_000 {
        return Err(ApiError::Unprocessable(
            "a bandit has 2 to 1000 arms".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if !body
        .arms
        .iter()
        .all(|a| !a.is_empty() && a.len() <= 128 && seen.insert(a))
    {
        return Err(ApiError::Unprocessable(
            "arm names must be unique, 1 to 128 bytes".into(),
        ));
    }
    let mut doc = BanditDoc {
        key: body.key.clone(),
        arms: body.arms.clone(),
        policy: body.policy()?,
        min_pulls: body.min_pulls,
        counts: Vec::new(),
        linear: Vec::new(),
    };
    let model = doc.model();
    doc.store_model(&model);
    let text = serde_json::to_string(&doc).map_err(|e| ApiError::Internal(e.to_string()))?;
    let key = doc.key.clone();
    state
        .blocking(move |s| s.put_document(&principal.tenant, KIND, &key, &text, None))
        .await?;
    Ok((StatusCode::CREATED, Json(doc.view())))
}

pub(super) async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let (doc, _) = load_doc::<BanditDoc>(&state, &principal, KIND, &key).await?;
    Ok(Json(doc.view()))
}

fn context_of(v: Option<Vec<f64>>) -> Result<Vec<f64>, ApiError> {
    let x = v.unwrap_or_default();
    if x.iter().any(|f| !f.is_finite()) {
        return Err(ApiError::Unprocessable(
            "context must hold finite numbers".into(),
        ));
    }
    Ok(x)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DecideBody {
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    context: Option<Vec<f64>>,
}

fn fresh_rng() -> Result<Rng, ApiError> {
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).map_err(|e| ApiError::Internal(format!("random source: {e}")))?;
    Ok(Rng::seeded(u64::from_le_bytes(seed)))
}

pub(super) async fn decide(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<DecideBody>,
) -> Result<Json<Value>, ApiError> {
    let (doc, _) = load_doc::<BanditDoc>(&state, &principal, KIND, &key).await?;
    let x = context_of(body.context)?;
    let mut rng = fresh_rng()?;
    let arm = match doc.model() {
        Model::Plain(b) => b.decide(&mut rng),
        Model::Linear(b) => b
            .decide(&x, &mut rng)
            .map_err(|e| ApiError::Unprocessable(e.to_string()))?,
    };
    let name = doc.arms[arm].clone();
    let event = NewEvent {
        tenant: principal.tenant.clone(),
        at: Timestamp::now(),
        tags: Tags::default(),
        kind: EventKind::Exposure {
            experiment: doc.key.clone(),
            arm: name.clone(),
            unit: body.unit.unwrap_or_else(|| "-".into()),
        },
    };
    state.blocking(move |s| s.append_events(&[event])).await?;
    Ok(Json(
        json!({ "bandit": doc.key, "arm": name, "index": arm }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RewardBody {
    arm: String,
    reward: f64,
    #[serde(default)]
    context: Option<Vec<f64>>,
    #[serde(default)]
    unit: Option<String>,
}

pub(super) async fn reward(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(key): ApiPath<String>,
    ApiJson(body): ApiJson<RewardBody>,
) -> Result<Json<Value>, ApiError> {
    if !body.reward.is_finite() {
        return Err(ApiError::Unprocessable(
            "reward must be a finite number".into(),
        ));
    }
    let x = context_of(body.context)?;
    for _ in 0..50 {
        let (mut doc, version) = load_doc::<BanditDoc>(&state, &principal, KIND, &key).await?;
        let arm = doc
            .arms
            .iter()
            .position(|a| a == &body.arm)
            .ok_or_else(|| {
                ApiError::Unprocessable(format!(
                    "no arm {:?}",
                    body.arm.chars().take(64).collect::<String>()
                ))
            })?;
        let mut model = doc.model();
        match &mut model {
            Model::Plain(b) => {
                b.reward(arm, body.reward);
            }
            Model::Linear(b) => {
                b.reward(arm, &x, body.reward)
                    .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
            }
        }
        doc.store_model(&model);
        let text = serde_json::to_string(&doc).map_err(|e| ApiError::Internal(e.to_string()))?;
        let tenant = principal.tenant.clone();
        let k = doc.key.clone();
        let event = NewEvent {
            tenant: principal.tenant.clone(),
            at: Timestamp::now(),
            tags: Tags::default(),
            kind: EventKind::Outcome {
                name: format!("bandit:{}", doc.key),
                value: body.reward,
                unit: body.unit.clone(),
            },
        };
        let written = state
            .blocking(
                move |s| match s.put_document(&tenant, KIND, &k, &text, Some(version)) {
                    Ok(_) => s.append_events(&[event]).map(|_| true),
                    Err(StoreError::Conflict(_)) => Ok(false),
                    Err(e) => Err(e),
                },
            )
            .await?;
        if written {
            let view = doc.view();
            return Ok(Json(json!({ "bandit": doc.key, "arm": view["arms"][arm] })));
        }
    }
    Err(ApiError::Conflict(
        "too many concurrent updates of this bandit; retry".into(),
    ))
}
