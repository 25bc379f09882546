//! The OpenAI-compatible routes (`/v1/chat/completions`, `/v1/embeddings`, `/v1/models`)
//! and the gateway's reports (`/api/costs`, `/api/stats/latency`).
//!
//! Tags come from the `x-regelkreis-feature` and `x-regelkreis-campaign` headers or, when
//! those are absent, from the request's `metadata` object (`feature`, `campaign`).

use crate::{ApiError, AppState, Principal};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use regelkreis_core::Tags;
use regelkreis_gateway::{Caller, Reply};
use serde_json::{json, Value};

/// Longest tag value accepted.
const MAX_TAG: usize = 128;

fn tag(
    headers: &HeaderMap,
    name: &str,
    body: &Value,
    field: &str,
) -> Result<Option<String>, ApiError> {
    let v = match headers.get(name) {
        Some(h) => Some(
            h.to_str()
                .map_err(|_| ApiError::BadRequest(format!("header {name} must be visible ASCII")))?
                .to_owned(),
        ),
        None => match body.pointer(&format!("/metadata/{field}")) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(ApiError::BadRequest(format!(
                    "metadata.{field} must be a string"
                )))
            }
        },
    };
    match v {
        Some(s) if s.is_empty() => Ok(None),
        Some(s) if s.chars().count() > MAX_TAG => Err(ApiError::BadRequest(format!(
            "{field} tag is longer than {MAX_TAG} characters"
        ))),
        other => Ok(other),
    }
}

fn caller(p: &Principal, headers: &HeaderMap, body: &Value) -> Result<Caller, ApiError> {
    Ok(Caller {
        tenant: p.tenant.to_string(),
        key: p.key_id.to_string(),
        tags: Tags {
            feature: tag(headers, "x-regelkreis-feature", body, "feature")?,
            campaign: tag(headers, "x-regelkreis-campaign", body, "campaign")?,
        },
    })
}

/// The body as JSON, with OpenAI-shaped errors for anything else.
fn json_body(bytes: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))
}

fn json_response(bytes: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// `POST /v1/chat/completions`.
pub(super) async fn chat(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let caller = caller(&principal, &headers, &body)?;
    match state.gateway.chat(caller, body).await? {
        Reply::Json(bytes) => Ok(json_response(bytes)),
        Reply::Stream(s) => {
            let stream = futures_util::stream::unfold(s, |mut s| async move {
                s.next()
                    .await
                    .map(|b| (Ok::<_, std::convert::Infallible>(b), s))
            });
            Ok((
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "text/event-stream"),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                Body::from_stream(stream),
            )
                .into_response())
        }
    }
}

/// `POST /v1/embeddings`.
pub(super) async fn embeddings(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = json_body(&body)?;
    let caller = caller(&principal, &headers, &body)?;
    Ok(json_response(state.gateway.embeddings(caller, body).await?))
}

/// `GET /v1/models`.
pub(super) async fn models(State(state): State<AppState>) -> Json<Value> {
    let data: Vec<Value> = state
        .gateway
        .model_ids()
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "regelkreis"}))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

/// `GET /api/costs`: the tenant's roll-ups per key, feature, campaign and model, and its
/// budgets. Amounts are integer micro-units, with decimal strings beside the totals.
pub(super) async fn costs(State(state): State<AppState>, principal: Principal) -> Json<Value> {
    let report = state.gateway.costs(principal.tenant.as_str());
    let mut v = serde_json::to_value(&report).unwrap_or_default();
    v["total"]["cost"] = json!(regelkreis_core::Money(report.total.cost_micros).to_string());
    v["currency_unit"] = json!("micro");
    Json(v)
}

/// `GET /api/stats/latency`: p50, p95 and p99 per `provider/model` over recent calls.
pub(super) async fn latency(State(state): State<AppState>, principal: Principal) -> Json<Value> {
    Json(json!({ "models": state.gateway.latency(principal.tenant.as_str()) }))
}
