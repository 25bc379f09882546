//! `GET /api/events` and `POST /api/events`: the tenant's event log.

use crate::extract::{ApiJson, ApiQuery};
use crate::layers::tags_of;
use crate::{ApiError, AppState, Principal};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use regelkreis_core::{EventId, EventKind, EventQuery, NewEvent, Tags, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};

/// Event types clients may append; the others are written by regelkreis itself.
const CLIENT_TYPES: [&str; 3] = ["outcome", "exposure", "custom"];
const MAX_BATCH: usize = 1_000;
const MAX_PAGE: usize = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    #[serde(rename = "type")]
    type_name: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<i64>,
    limit: Option<usize>,
}

fn time_param(name: &str, v: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    v.filter(|s| !s.is_empty())
        .map(|s| Timestamp::parse(s).map_err(|e| ApiError::BadRequest(format!("{name}: {e}"))))
        .transpose()
}

pub(super) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let type_name = p.type_name.filter(|t| !t.is_empty());
    if let Some(t) = &type_name {
        if !EventKind::TYPE_NAMES.contains(&t.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "unknown event type {t:?}; known: {}",
                EventKind::TYPE_NAMES.join(", ")
            )));
        }
    }
    let limit = p.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let query = EventQuery {
        tenant: principal.tenant,
        type_name,
        since: time_param("since", p.since.as_deref())?,
        until: time_param("until", p.until.as_deref())?,
        after: p.after.map(EventId),
        limit,
    };
    let events = state.blocking(move |s| s.events(&query)).await?;
    let next_after = (events.len() == limit).then(|| events.last().map(|e| e.id.0));
    let events: Vec<Value> = events
        .into_iter()
        .map(|e| {
            let data: Value = serde_json::from_str(&e.kind.encode_data()).unwrap_or(Value::Null);
            json!({
                "id": e.id.0,
                "type": e.kind.type_name(),
                "at": e.at.to_string(),
                "feature": e.tags.feature,
                "campaign": e.tags.campaign,
                "data": data,
            })
        })
        .collect();
    Ok(Json(
        json!({ "events": events, "next_after": next_after.flatten() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventIn {
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default)]
    data: Value,
    at: Option<String>,
    feature: Option<String>,
    campaign: Option<String>,
}

/// Appends one event (an object) or several (an array) atomically; answers 201 with
/// their ids only after they are committed.
pub(super) async fn append(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let items = match body {
        Value::Array(items) => items,
        single @ Value::Object(_) => vec![single],
        _ => {
            return Err(ApiError::Unprocessable(
                "body must be an event object or an array of them".into(),
            ))
        }
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::Unprocessable(format!(
            "a batch holds 1 to {MAX_BATCH} events, got {}",
            items.len()
        )));
    }
    let header_tags = tags_of(&headers);
    let now = Timestamp::now();
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let e: EventIn = serde_json::from_value(item)
            .map_err(|err| ApiError::Unprocessable(format!("event {i}: {err}")))?;
        if !CLIENT_TYPES.contains(&e.type_name.as_str()) {
            return Err(ApiError::Unprocessable(format!(
                "event {i}: type {:?} cannot be appended by clients; allowed: {}",
                e.type_name.chars().take(40).collect::<String>(),
                CLIENT_TYPES.join(", ")
            )));
        }
        let kind = EventKind::from_parts(&e.type_name, e.data)
            .map_err(|err| ApiError::Unprocessable(format!("event {i}: {err}")))?;
        let at = time_param("at", e.at.as_deref())?.unwrap_or(now);
        events.push(NewEvent {
            tenant: principal.tenant.clone(),
            at,
            tags: Tags {
                feature: e.feature.or_else(|| header_tags.feature.clone()),
                campaign: e.campaign.or_else(|| header_tags.campaign.clone()),
            },
            kind,
        });
    }
    let ids = state.blocking(move |s| s.append_events(&events)).await?;
    let ids: Vec<i64> = ids.into_iter().map(|i| i.0).collect();
    Ok((StatusCode::CREATED, Json(json!({ "ids": ids }))))
}
