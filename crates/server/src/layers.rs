//! The layers every request passes, outermost first: request id, tracing, JSON errors,
//! header-size limit, metrics and request log, timeout, body limit.

use crate::{ApiError, AppState, Principal};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use regelkreis_core::{EventKind, NewEvent, Tags, Timestamp};
use std::time::Instant;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps the routes in every layer.
pub(crate) fn wrap(routes: Router, state: AppState) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let id = req
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
    })
    .on_request(())
    .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros));
    routes
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.body_limit_bytes,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(trace)
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(middleware::from_fn(json_errors))
                .layer(middleware::from_fn_with_state(state.clone(), header_limit))
                .layer(middleware::from_fn_with_state(state.clone(), observe))
                .layer(middleware::from_fn_with_state(state.clone(), deadline)),
        )
}

/// Answers 408 when a request takes longer than `request_timeout` to be answered (the
/// body read included); `/v1` model calls get the gateway's longer `request_timeout_ms`,
/// since retries and fallbacks may rightly take minutes. A stream's own length is not
/// limited here: the timeout ends when its head is sent.
async fn deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = if req.uri().path().starts_with("/v1/") {
        std::time::Duration::from_millis(state.config.gateway.request_timeout_ms)
    } else {
        state.config.request_timeout
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

/// Turns any error response that is not JSON (from axum itself or a tower layer) into the
/// same JSON error body handlers produce.
async fn json_errors(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = match body.collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = match status {
        StatusCode::NOT_FOUND => format!("no route for {method} {}", truncate(&path, 200)),
        StatusCode::METHOD_NOT_ALLOWED => format!("method {method} is not allowed on this route"),
        StatusCode::REQUEST_TIMEOUT => "the request took too long and was cancelled".to_owned(),
        _ if !text.is_empty() => truncate(&text, 300),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    };
    let mut fixed = ApiError::from_status(status, message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fixed.headers_mut().insert(name.clone(), value.clone());
        }
    }
    *fixed.extensions_mut() = parts.extensions;
    fixed
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Refuses requests whose headers together exceed the configured size.
async fn header_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let size: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if size > state.config.max_header_bytes {
        return ApiError::HeadersTooLarge(format!(
            "request headers are {size} bytes; the limit is {}",
            state.config.max_header_bytes
        ))
        .into_response();
    }
    next.run(req).await
}

/// Records metrics for every request, and a `request` event in the caller's tenant log
/// for every authenticated one.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let tags = tags_of(req.headers());
    let resp = next.run(req).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    state
        .metrics
        .observe(&method, &route, status, elapsed.as_secs_f64());
    if let Some(p) = resp.extensions().get::<Principal>() {
        state.sink.push(NewEvent {
            tenant: p.tenant.clone(),
            at: Timestamp::now(),
            tags,
            kind: EventKind::Request {
                method,
                route,
                status,
                latency_us: u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
                key_id: Some(p.key_id.to_string()),
            },
        });
    }
    resp
}

/// Feature and campaign tags from `x-regelkreis-feature` / `x-regelkreis-campaign`.
pub(crate) fn tags_of(headers: &axum::http::HeaderMap) -> Tags {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map(str::to_owned)
    };
    Tags {
        feature: get("x-regelkreis-feature"),
        campaign: get("x-regelkreis-campaign"),
    }
}

/// A response for routes nobody registered.
pub(crate) async fn fallback(req: Request<Body>) -> ApiError {
    ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        truncate(req.uri().path(), 200)
    ))
}
