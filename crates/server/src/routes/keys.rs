//! `/api/keys` and `/api/tenant`: a tenant admin manages the tenant's own keys.

use crate::extract::{ApiJson, ApiPath};
use crate::{ApiError, AppState, Principal};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use regelkreis_core::{KeyId, Scope, Scopes, Timestamp};
use regelkreis_store::{keys, ApiKey, AuditEntry};
use serde::Deserialize;
use serde_json::{json, Value};

fn key_json(k: &ApiKey) -> Value {
    json!({
        "id": k.id.as_str(),
        "name": k.name,
        "scopes": k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "created_at": k.created_at.to_string(),
        "revoked_at": k.revoked_at.map(|t| t.to_string()),
    })
}

pub(super) async fn whoami(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let id = principal.tenant.clone();
    let tenant = state
        .blocking(move |s| s.tenant(&id))
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the key's tenant no longer exists".into()))?;
    Ok(Json(json!({
        "tenant": { "id": tenant.id.as_str(), "name": tenant.name },
        "key_id": principal.key_id.as_str(),
        "scopes": principal.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    })))
}

pub(super) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let keys = state
        .blocking(move |s| s.keys(Some(&principal.tenant)))
        .await?;
    Ok(Json(
        json!({ "keys": keys.iter().map(key_json).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateKey {
    name: String,
    scopes: Vec<String>,
}

pub(super) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if body.name.is_empty() || body.name.chars().count() > 100 {
        return Err(ApiError::Unprocessable(
            "name must be 1 to 100 characters".into(),
        ));
    }
    let scopes = body
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    if scopes.is_empty() {
        return Err(ApiError::Unprocessable("give at least one scope".into()));
    }
    let issued = keys::issue(
        &principal.tenant,
        &body.name,
        Scopes::new(scopes),
        Timestamp::now(),
    )?;
    let record = issued.record.clone();
    let actor = principal.key_id.to_string();
    state
        .blocking(move |s| {
            s.insert_key(&record)?;
            s.append_audit(&AuditEntry {
                tenant: record.tenant.clone(),
                at: record.created_at,
                actor,
                action: "key.create".into(),
                subject: record.id.to_string(),
                details: json!({ "name": record.name, "scopes": record.scopes.to_string() })
                    .to_string(),
            })
        })
        .await?;
    let mut out = key_json(&issued.record);
    out["key"] = Value::String(issued.secret);
    Ok((StatusCode::CREATED, Json(out)))
}

pub(super) async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || {
        ApiError::NotFound(format!(
            "no active key {:?} in this tenant",
            id.chars().take(40).collect::<String>()
        ))
    };
    let key_id = KeyId::parse(&id).map_err(|_| not_found())?;
    let tenant = principal.tenant.clone();
    let actor = principal.key_id.to_string();
    let kid = key_id.clone();
    let revoked = state
        .blocking(move |s| {
            let now = Timestamp::now();
            let revoked = s.revoke_key(&kid, Some(&tenant), now)?;
            if revoked {
                s.append_audit(&AuditEntry {
                    tenant,
                    at: now,
                    actor,
                    action: "key.revoke".into(),
                    subject: kid.to_string(),
                    details: "{}".into(),
                })?;
            }
            Ok(revoked)
        })
        .await?;
    if !revoked {
        return Err(not_found());
    }
    Ok(Json(json!({ "id": key_id.as_str(), "revoked": true })))
}
