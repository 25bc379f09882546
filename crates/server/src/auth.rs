//! API-key authentication and scope checks, applied per route from the catalogue.

use crate::{ApiError, AppState};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use regelkreis_core::{KeyId, Scope, Scopes, TenantId};
use regelkreis_store::keys::authenticate;

/// Who is calling: the key's tenant, id and scopes. Handlers take it as an extractor.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The tenant every read and write of this request is confined to.
    pub tenant: TenantId,
    /// The key used.
    pub key_id: KeyId,
    /// Its scopes.
    pub scopes: Scopes,
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("missing API key".into()))
    }
}

/// The key a request presents: `Authorization: Bearer <key>` or `x-api-key: <key>`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, rest) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim());
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok())
}

/// Middleware: authenticate, then require `scope` (when given). The principal goes into
/// the request for handlers and into the response for the request log.
pub(crate) async fn require(
    State((state, scope)): State<(AppState, Option<Scope>)>,
    mut req: Request,
    next: Next,
) -> Response {
    let principal = match principal_of(&state, req.headers()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if let Some(scope) = scope {
        if !principal.scopes.allows(scope) {
            let mut resp = ApiError::Forbidden(scope).into_response();
            resp.extensions_mut().insert(principal);
            return resp;
        }
    }
    req.extensions_mut().insert(principal.clone());
    let mut resp = next.run(req).await;
    resp.extensions_mut().insert(principal);
    resp
}

async fn principal_of(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let key = presented_key(headers)
        .ok_or_else(|| {
            ApiError::Unauthorized("missing API key: send 'Authorization: Bearer <key>'".into())
        })?
        .to_owned();
    // The embedded SQLite engine answers a key lookup by primary key from its page cache
    // in a few microseconds: handing that to the blocking pool and back cost more than
    // the lookup (two thread wake-ups per request). A networked store goes to the pool.
    let found = if state.store.engine() == "sqlite" {
        authenticate(state.store.as_ref(), &key)?
    } else {
        state
            .blocking(move |store| Ok(authenticate(store, &key)))
            .await??
    };
    Ok(Principal {
        tenant: found.tenant,
        key_id: found.id,
        scopes: found.scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn keys_are_read_from_bearer_or_x_api_key() {
        let mut h = HeaderMap::new();
        assert_eq!(presented_key(&h), None);
        h.insert("x-api-key", HeaderValue::from_static("rk_a"));
        assert_eq!(presented_key(&h), Some("rk_a"));
        h.insert("authorization", HeaderValue::from_static("Bearer  rk_b "));
        assert_eq!(presented_key(&h), Some("rk_b"));
        h.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(presented_key(&h), None);
    }
}
