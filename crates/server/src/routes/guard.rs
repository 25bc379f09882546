//! `/api/guard/check`: the guard's verdict on one text (PII, prompt injection,
//! brand rules), optionally with the text redacted. Every verdict is appended
//! to the tenant's audit trail with the policy name and version — the counts
//! and rule names, never the text itself, which may hold the very PII found.

use crate::extract::ApiJson;
use crate::{ApiError, AppState, Principal};
use axum::extract::State;
use axum::Json;
use regelkreis_core::Timestamp;
use regelkreis_guard::Source;
use regelkreis_store::AuditEntry;
use serde::Deserialize;
use serde_json::{json, Value};

/// Longest text one check accepts, in characters.
const MAX_CHARS: usize = 200_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckRequest {
    text: String,
    #[serde(default)]
    source: Source,
    /// Also return the text with PII replaced (the policy's mode).
    #[serde(default)]
    redact: bool,
}

pub(super) async fn check(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CheckRequest>,
) -> Result<Json<Value>, ApiError> {
    if body.text.is_empty() {
        return Err(ApiError::Unprocessable("text must not be empty".into()));
    }
    if body.text.chars().count() > MAX_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "text is longer than {MAX_CHARS} characters"
        )));
    }
    let guard = state.guard().await?;
    let source = body.source;
    let tenant = principal.tenant.clone();
    let (verdict, redacted, policy) = tokio::task::spawn_blocking(move || {
        // Pseudonyms are keyed per tenant, so equal values match within a tenant only.
        let key = regelkreis_guard::pseudonym_key(tenant.as_str());
        let (verdict, redacted) = if body.redact {
            let (v, r) = guard.check_and_redact(&body.text, body.source, &key);
            (v, Some(r.text))
        } else {
            (guard.check(&body.text, body.source), None)
        };
        let p = guard.policy();
        (verdict, redacted, (p.name.clone(), p.version))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("guard task failed: {e}")))?;
    let mut pii_types: Vec<&str> = verdict.pii.iter().map(|p| p.entity.name()).collect();
    pii_types.sort_unstable();
    let details = json!({
        "policy": policy.0, "version": policy.1,
        "decision": verdict.decision, "injection_score": verdict.injection.score,
        "injection_reasons": verdict.injection.reasons,
        "pii": pii_types, "violations": verdict.violations.iter().map(|v| v.rule.as_str()).collect::<Vec<_>>(),
    });
    let entry = AuditEntry {
        tenant: principal.tenant.clone(),
        at: Timestamp::now(),
        actor: principal.key_id.to_string(),
        action: "guard.verdict".into(),
        subject: format!("{source:?}").to_lowercase(),
        details: details.to_string(),
    };
    let record = state.blocking(move |s| s.append_audit(&entry)).await?;
    let mut out = serde_json::to_value(&verdict).map_err(|e| ApiError::Internal(e.to_string()))?;
    out["policy"] = json!({ "name": policy.0, "version": policy.1 });
    out["audit_seq"] = json!(record.seq);
    if let Some(r) = redacted {
        out["redacted"] = Value::String(r);
    }
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ToolRequest {
    tool: String,
    #[serde(default)]
    arguments: Value,
    #[serde(default = "default_agent")]
    agent: String,
}

fn default_agent() -> String {
    "default".into()
}

/// Checks one tool call against the policy's whitelist before it runs: 200 with
/// `allowed` and, when refused, the reason and schema errors. Every decision,
/// allowed or refused, is appended to the audit trail.
pub(super) async fn tool(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<ToolRequest>,
) -> Result<Json<Value>, ApiError> {
    if body.tool.is_empty() || body.tool.len() > 200 {
        return Err(ApiError::Unprocessable(
            "tool must be 1 to 200 characters".into(),
        ));
    }
    let guard = state.guard().await?;
    let verdict = guard.tools().check(
        principal.tenant.as_str(),
        &body.agent,
        &body.tool,
        &body.arguments,
    );
    let p = guard.policy();
    let mut out =
        json!({ "allowed": verdict.is_ok(), "policy": { "name": p.name, "version": p.version } });
    if let Err(refusal) = &verdict {
        out["refusal"] =
            serde_json::to_value(refusal).map_err(|e| ApiError::Internal(e.to_string()))?;
        out["message"] = Value::String(refusal.to_string());
    }
    let entry = AuditEntry {
        tenant: principal.tenant.clone(),
        at: Timestamp::now(),
        actor: principal.key_id.to_string(),
        action: if verdict.is_ok() { "guard.tool_allowed" } else { "guard.tool_refused" }.into(),
        subject: body.tool.clone(),
        details: json!({ "agent": body.agent, "policy": p.name, "version": p.version, "refusal": out.get("refusal") }).to_string(),
    };
    let record = state.blocking(move |s| s.append_audit(&entry)).await?;
    out["audit_seq"] = json!(record.seq);
    Ok(Json(out))
}
