//! Helpers shared by the measurement routes.

use crate::{ApiError, AppState, Principal};
use regelkreis_core::{Event, EventId, EventQuery};
use serde::de::DeserializeOwned;

/// Keys of experiments and bandits: 1–64 characters of `a-z`, `A-Z`, `0-9`, `-`, `_`, `.`.
pub(super) fn clean_key(key: &str) -> Result<(), ApiError> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(
            "key must be 1-64 characters of letters, digits, '-', '_' and '.'".into(),
        ))
    }
}

/// Reads a document of the caller's tenant and decodes it; 404 when missing.
pub(super) async fn load_doc<T: DeserializeOwned>(
    state: &AppState,
    principal: &Principal,
    kind: &'static str,
    key: &str,
) -> Result<(T, u64), ApiError> {
    let tenant = principal.tenant.clone();
    let k = key.to_owned();
    let doc = state
        .blocking(move |s| s.document(&tenant, kind, &k))
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "no {kind} {:?}",
                key.chars().take(64).collect::<String>()
            ))
        })?;
    let value = serde_json::from_str(&doc.body)
        .map_err(|e| ApiError::Internal(format!("stored {kind} {key} does not decode: {e}")))?;
    Ok((value, doc.version))
}

/// Every event of one type of the caller's tenant, in id order.
pub(super) async fn collect_events(
    state: &AppState,
    principal: &Principal,
    type_name: &'static str,
) -> Result<Vec<Event>, ApiError> {
    const PAGE: usize = 50_000;
    let mut out = Vec::new();
    let mut after: Option<EventId> = None;
    loop {
        let q = EventQuery {
            type_name: Some(type_name.to_owned()),
            after,
            ..EventQuery::for_tenant(principal.tenant.clone(), PAGE)
        };
        let page = state.blocking(move |s| s.events(&q)).await?;
        let n = page.len();
        after = page.last().map(|e| e.id);
        out.extend(page);
        if n < PAGE {
            return Ok(out);
        }
    }
}
