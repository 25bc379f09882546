//! `GET /api/audit` and `GET /api/audit/verify`: the tenant's own hash chain.

use crate::extract::ApiQuery;
use crate::{ApiError, AppState, Principal};
use axum::extract::State;
use axum::Json;
use regelkreis_store::audit::verify_tenant;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    after: Option<u64>,
    limit: Option<usize>,
}

pub(super) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = p.limit.unwrap_or(100).clamp(1, 1_000);
    let after = p.after.unwrap_or(0);
    let records = state
        .blocking(move |s| s.audit_records(&principal.tenant, after, limit))
        .await?;
    let records: Vec<Value> = records
        .into_iter()
        .map(|r| {
            json!({
                "seq": r.seq,
                "at": r.entry.at.to_string(),
                "actor": r.entry.actor,
                "action": r.entry.action,
                "subject": r.entry.subject,
                "details": serde_json::from_str::<Value>(&r.entry.details).unwrap_or(Value::String(r.entry.details.clone())),
                "prev_hash": hex::encode(r.prev_hash),
                "hash": hex::encode(r.hash),
            })
        })
        .collect();
    Ok(Json(json!({ "records": records })))
}

pub(super) async fn verify(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let result = state
        .blocking(move |s| verify_tenant(s, &principal.tenant))
        .await?;
    Ok(Json(match result {
        Ok(report) => json!({ "ok": true, "records": report.records }),
        Err(b) => json!({ "ok": false, "first_bad_seq": b.seq, "reason": b.to_string() }),
    }))
}
