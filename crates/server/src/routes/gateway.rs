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
use regelkreis_core::{Tags, Timestamp};
use regelkreis_gateway::wire::{sse_data, SseParser, DONE};
use regelkreis_gateway::{Caller, GuardMode, Reply};
use regelkreis_guard::redact::{StreamRestorer, Vault};
use regelkreis_guard::{Guard, Source};
use regelkreis_store::AuditEntry;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

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

/// Texts longer than this are scanned on the blocking pool.
const INLINE_SCAN_BYTES: usize = 16 * 1024;

/// Separates message texts while they are redacted as one (a control character no
/// detector matches across).
const SEP: &str = "\n\u{1e}\n";

/// What the input guard found.
#[derive(Default)]
struct InputScan {
    /// The originals behind the tokens, when anything was redacted.
    vault: Option<Arc<Vault>>,
    /// Redactions by entity type.
    redacted: BTreeMap<&'static str, usize>,
    /// Why the request was blocked.
    blocked: Option<String>,
}

/// The injection check of user and tool messages and the redaction of every message, on
/// the request body in place.
fn scan_input(guard: &Guard, tenant: &str, body: &mut Value) -> Result<InputScan, ApiError> {
    let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) else {
        return Ok(InputScan::default());
    };
    // (message, part) of every text, and the texts.
    let mut at: Vec<(usize, Option<usize>)> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let source = match role {
            "user" => Some(Source::User),
            "tool" | "function" => Some(Source::Tool),
            _ => None,
        };
        let mut push = |text: &str, part: Option<usize>| -> Option<String> {
            if let Some(src) = source {
                let v = guard.injection(text, src);
                if v.decision == regelkreis_guard::Decision::Block {
                    return Some(format!(
                        "messages[{i}] was blocked by the guard policy as a prompt injection (score {:.2}: {})",
                        v.score,
                        v.reasons.join(", ")
                    ));
                }
            }
            at.push((i, part));
            texts.push(text.to_owned());
            None
        };
        match m.get("content") {
            Some(Value::String(t)) => {
                if let Some(why) = push(t, None) {
                    return Ok(InputScan {
                        blocked: Some(why),
                        ..InputScan::default()
                    });
                }
            }
            Some(Value::Array(parts)) => {
                for (j, p) in parts.iter().enumerate() {
                    if let Some(t) = p.get("text").and_then(Value::as_str) {
                        if let Some(why) = push(t, Some(j)) {
                            return Ok(InputScan {
                                blocked: Some(why),
                                ..InputScan::default()
                            });
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if texts.is_empty() {
        return Ok(InputScan::default());
    }
    let joined = texts.join(SEP);
    let (red, spans) = guard.redact(&joined, &regelkreis_guard::pseudonym_key(tenant));
    if red.vault.is_empty() {
        return Ok(InputScan::default());
    }
    let parts: Vec<&str> = red.text.split(SEP).collect();
    if parts.len() != texts.len() {
        return Err(ApiError::Internal(
            "redaction crossed a message boundary".into(),
        ));
    }
    for ((i, part), text) in at.into_iter().zip(parts) {
        let slot = match part {
            None => &mut messages[i]["content"],
            Some(j) => &mut messages[i]["content"][j]["text"],
        };
        *slot = Value::String(text.to_owned());
    }
    let mut redacted = BTreeMap::new();
    for s in &spans {
        *redacted.entry(s.entity.name()).or_insert(0) += 1;
    }
    Ok(InputScan {
        vault: Some(Arc::new(red.vault)),
        redacted,
        blocked: None,
    })
}

async fn audit(state: &AppState, principal: &Principal, action: &str, details: Value) {
    let entry = AuditEntry {
        tenant: principal.tenant.clone(),
        at: Timestamp::now(),
        actor: principal.key_id.to_string(),
        action: action.into(),
        subject: "chat".into(),
        details: details.to_string(),
    };
    if let Err(e) = state.blocking(move |s| s.append_audit(&entry)).await {
        tracing::error!(error = %e, "guard decision not written to the audit trail");
    }
}

/// Runs the input guard as the gateway's guard mode says; the vault for the answer.
async fn guard_input(
    state: &AppState,
    principal: &Principal,
    body: Value,
    size: usize,
) -> Result<(Value, Option<Arc<Vault>>), ApiError> {
    if state.config.gateway.guard == GuardMode::Off {
        return Ok((body, None));
    }
    let guard = state.guard().await?;
    let tenant = principal.tenant.to_string();
    // `size` is the request's byte length: no second serialisation just to measure it.
    let (body, scan) = if size <= INLINE_SCAN_BYTES {
        let mut body = body;
        let scan = scan_input(&guard, &tenant, &mut body)?;
        (body, scan)
    } else {
        let g = guard.clone();
        tokio::task::spawn_blocking(move || {
            let mut body = body;
            scan_input(&g, &tenant, &mut body).map(|s| (body, s))
        })
        .await
        .map_err(|e| ApiError::Internal(format!("guard task failed: {e}")))??
    };
    let policy = guard.policy();
    if let Some(why) = scan.blocked {
        audit(
            state,
            principal,
            "gateway.blocked",
            json!({"policy": policy.name, "version": policy.version, "reason": "prompt_injection"}),
        )
        .await;
        return Err(ApiError::Blocked(why));
    }
    if !scan.redacted.is_empty() {
        audit(
            state,
            principal,
            "gateway.redacted",
            json!({"policy": policy.name, "version": policy.version, "pii": scan.redacted}),
        )
        .await;
    }
    Ok((body, scan.vault))
}

/// Restores redacted values in a JSON answer and checks it against the brand rules.
async fn guard_output(
    state: &AppState,
    principal: &Principal,
    bytes: Bytes,
    vault: Option<&Vault>,
) -> Result<Response, ApiError> {
    if state.config.gateway.guard != GuardMode::Full {
        return Ok(json_response(bytes));
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(json_response(bytes));
    };
    let guard = state.guard().await?;
    let mut rules: Vec<String> = Vec::new();
    let mut changed = false;
    if let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) {
        for c in choices {
            if let Some(Value::String(text)) = c.pointer_mut("/message/content") {
                if let Some(vault) = vault {
                    let restored = vault.restore(text);
                    if restored != *text {
                        *text = restored;
                        changed = true;
                    }
                }
                rules.extend(guard.violations(text).into_iter().map(|x| x.rule));
            }
        }
    }
    let bytes = if changed {
        Bytes::from(v.to_string())
    } else {
        bytes
    };
    let mut resp = json_response(bytes);
    if !rules.is_empty() {
        rules.sort();
        rules.dedup();
        let policy = guard.policy();
        audit(
            state,
            principal,
            "gateway.brand",
            json!({"policy": policy.name, "version": policy.version, "rules": rules}),
        )
        .await;
        if let Ok(h) = rules.join(",").parse() {
            resp.headers_mut()
                .insert("x-regelkreis-brand-violations", h);
        }
    }
    Ok(resp)
}

/// A streamed answer with redacted values restored across chunk boundaries.
struct Restoring {
    inner: regelkreis_gateway::ReplyStream,
    parser: SseParser,
    restorer: Option<StreamRestorer<Arc<Vault>>>,
    last_chunk: Option<Value>,
}

impl Restoring {
    async fn next(&mut self) -> Option<Bytes> {
        if self.restorer.is_none() {
            return self.inner.next().await;
        }
        loop {
            let b = self.inner.next().await?;
            let mut out = Vec::new();
            for ev in self.parser.push(&b) {
                if ev.data == "[DONE]" {
                    if let Some(r) = self.restorer.take() {
                        let rest = r.finish();
                        if let (false, Some(mut last)) = (rest.is_empty(), self.last_chunk.take()) {
                            last["choices"] = json!([{"index": 0, "delta": {"content": rest}, "finish_reason": null}]);
                            last.as_object_mut().map(|m| m.remove("usage"));
                            out.extend_from_slice(&sse_data(last.to_string().as_bytes()));
                        }
                    }
                    out.extend_from_slice(DONE);
                    break;
                }
                let Ok(mut v) = serde_json::from_str::<Value>(&ev.data) else {
                    out.extend_from_slice(&sse_data(ev.data.as_bytes()));
                    continue;
                };
                if let (Some(Value::String(t)), Some(r)) = (
                    v.pointer_mut("/choices/0/delta/content"),
                    self.restorer.as_mut(),
                ) {
                    *t = r.push(t);
                }
                out.extend_from_slice(&sse_data(v.to_string().as_bytes()));
                self.last_chunk = Some(v);
            }
            if !out.is_empty() {
                return Some(Bytes::from(out));
            }
            // Nothing complete yet: read on, unless the stream ended.
            self.restorer.as_ref()?;
        }
    }
}

/// `POST /v1/chat/completions`.
pub(super) async fn chat(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    raw: Bytes,
) -> Result<Response, ApiError> {
    let body = json_body(&raw)?;
    if let Some(kb) = body.get("kb") {
        return grounded(&state, &principal, kb, &body).await;
    }
    let caller = caller(&principal, &headers, &body)?;
    let (body, vault) = guard_input(&state, &principal, body, raw.len()).await?;
    match state.gateway.chat(caller, body).await? {
        Reply::Json(bytes, _) => guard_output(&state, &principal, bytes, vault.as_deref()).await,
        Reply::Stream(s) => {
            let restoring = Restoring {
                inner: s,
                parser: SseParser::default(),
                restorer: vault
                    .filter(|_| state.config.gateway.guard == GuardMode::Full)
                    .map(StreamRestorer::new),
                last_chunk: None,
            };
            let stream = futures_util::stream::unfold(restoring, |mut s| async move {
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

/// `/v1/chat/completions` with the `kb` extension field: the last user message is answered
/// by the grounded answer path from that knowledge base; the answer comes back as a chat
/// completion (or its stream) with `citations`, `abstained`, `reason`, `confidence` and `signals` beside
/// `choices`.
async fn grounded(
    state: &AppState,
    principal: &Principal,
    kb: &Value,
    body: &Value,
) -> Result<Response, ApiError> {
    let kb = kb
        .as_str()
        .ok_or_else(|| ApiError::BadRequest("'kb' must be the name of a knowledge base".into()))?;
    if !principal.scopes.allows(regelkreis_core::Scope::KbRead) {
        return Err(ApiError::Forbidden(regelkreis_core::Scope::KbRead));
    }
    let question = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .map(|m| regelkreis_gateway::wire::content_text(&m["content"]))
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest("a 'kb' request needs a user message with the question".into())
        })?;
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("cheap")
        .to_owned();
    let req = crate::answer::AnswerRequest {
        question,
        k: 6,
        model,
        filter: Default::default(),
        min_support: 0.8,
        include_superseded: false,
    };
    let a = crate::answer::answer(state, principal, kb, req).await?;
    let id = format!("chatcmpl-kb-{:x}", regelkreis_core::Timestamp::now().0);
    let created = regelkreis_core::Timestamp::now().0 / 1_000_000;
    let extension = json!({"citations": a.citations, "abstained": a.abstained, "reason": a.reason, "confidence": a.confidence, "signals": a.signals});
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        let mut v = json!({
            "id": id, "object": "chat.completion", "created": created, "model": a.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": a.answer}, "finish_reason": "stop"}],
        });
        for (k, x) in extension.as_object().into_iter().flatten() {
            v[k] = x.clone();
        }
        return Ok(Json(v).into_response());
    }
    let chunk = |delta: Value, finish: Option<&str>| {
        sse_data(json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": a.model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).to_string().as_bytes())
    };
    let mut out: Vec<Bytes> = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for s in a.answer.split_inclusive(". ") {
        out.push(chunk(json!({ "content": s }), None));
    }
    out.push(chunk(json!({}), Some("stop")));
    let mut last = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": a.model, "choices": []});
    for (k, x) in extension.as_object().into_iter().flatten() {
        last[k] = x.clone();
    }
    out.push(sse_data(last.to_string().as_bytes()));
    out.push(Bytes::from_static(DONE));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from(Bytes::from(out.concat())),
    )
        .into_response())
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
