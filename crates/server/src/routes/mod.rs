//! Every route of the API. [`catalogue`] lists each `/api` and `/v1` route with the scope
//! it needs; [`build`] makes the router from the same list and puts the scope check in
//! front of each, so a route cannot exist without its check.

mod audit;
mod bandits;
mod events;
mod experiments;
mod gateway;
mod guard;
mod kb;
mod keys;
mod measure;
mod system;
mod util;

use crate::{auth, layers, AppState};
use axum::http::Method;
use axum::middleware;
use axum::routing::MethodRouter;
use axum::Router;
pub(crate) use kb::open_kb;
use regelkreis_core::Scope;

/// One authenticated route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path template, axum syntax (`/api/keys/{id}`).
    pub path: &'static str,
    /// Scope a key needs; `None` means any valid key.
    pub scope: Option<Scope>,
}

struct ApiRoute {
    spec: RouteSpec,
    handler: MethodRouter<AppState>,
}

fn route(
    method: Method,
    path: &'static str,
    scope: Option<Scope>,
    handler: MethodRouter<AppState>,
) -> ApiRoute {
    ApiRoute {
        spec: RouteSpec {
            method,
            path,
            scope,
        },
        handler,
    }
}

fn api() -> Vec<ApiRoute> {
    use axum::routing::{delete, get, post};
    vec![
        route(Method::GET, "/api/tenant", None, get(keys::whoami)),
        route(
            Method::POST,
            "/v1/chat/completions",
            Some(Scope::Chat),
            post(gateway::chat),
        ),
        route(
            Method::POST,
            "/v1/embeddings",
            Some(Scope::Chat),
            post(gateway::embeddings),
        ),
        route(Method::GET, "/v1/models", None, get(gateway::models)),
        route(
            Method::GET,
            "/api/costs",
            Some(Scope::Stats),
            get(gateway::costs),
        ),
        route(
            Method::GET,
            "/api/stats/latency",
            Some(Scope::Stats),
            get(gateway::latency),
        ),
        route(
            Method::POST,
            "/api/guard/check",
            Some(Scope::Chat),
            post(guard::check),
        ),
        route(
            Method::POST,
            "/api/guard/tool",
            Some(Scope::Chat),
            post(guard::tool),
        ),
        route(
            Method::GET,
            "/api/events",
            Some(Scope::Admin),
            get(events::list),
        ),
        route(
            Method::POST,
            "/api/events",
            Some(Scope::EventsWrite),
            post(events::append),
        ),
        route(
            Method::GET,
            "/api/keys",
            Some(Scope::Admin),
            get(keys::list),
        ),
        route(
            Method::POST,
            "/api/keys",
            Some(Scope::Admin),
            post(keys::create),
        ),
        route(
            Method::DELETE,
            "/api/keys/{id}",
            Some(Scope::Admin),
            delete(keys::revoke),
        ),
        route(
            Method::GET,
            "/api/audit",
            Some(Scope::Admin),
            get(audit::list),
        ),
        route(
            Method::GET,
            "/api/audit/verify",
            Some(Scope::Admin),
            get(audit::verify),
        ),
        route(
            Method::POST,
            "/api/experiments",
            Some(Scope::Stats),
            post(experiments::create),
        ),
        route(
            Method::GET,
            "/api/experiments",
            Some(Scope::Stats),
            get(experiments::list),
        ),
        route(
            Method::GET,
            "/api/experiments/{key}",
            Some(Scope::Stats),
            get(experiments::get),
        ),
        route(
            Method::POST,
            "/api/experiments/{key}/assign",
            Some(Scope::Stats),
            post(experiments::assign),
        ),
        route(
            Method::POST,
            "/api/experiments/{key}/outcomes",
            Some(Scope::Stats),
            post(experiments::outcomes),
        ),
        route(
            Method::GET,
            "/api/experiments/{key}/results",
            Some(Scope::Stats),
            get(experiments::results),
        ),
        route(Method::GET, "/api/kb", Some(Scope::KbRead), get(kb::list)),
        route(
            Method::GET,
            "/api/kb/{kb}",
            Some(Scope::KbRead),
            get(kb::stats),
        ),
        route(
            Method::POST,
            "/api/kb/{kb}/documents",
            Some(Scope::KbWrite),
            post(kb::ingest),
        ),
        route(
            Method::DELETE,
            "/api/kb/{kb}/documents/{id}",
            Some(Scope::KbWrite),
            delete(kb::remove),
        ),
        route(
            Method::POST,
            "/api/kb/{kb}/search",
            Some(Scope::KbRead),
            post(kb::search),
        ),
        route(
            Method::POST,
            "/api/kb/{kb}/answer",
            Some(Scope::Chat),
            post(kb::answer),
        ),
        route(
            Method::POST,
            "/api/mmm/fit",
            Some(Scope::Stats),
            post(measure::mmm_fit),
        ),
        route(
            Method::POST,
            "/api/mmm/optimize",
            Some(Scope::Stats),
            post(measure::mmm_optimize),
        ),
        route(
            Method::POST,
            "/api/uplift",
            Some(Scope::Stats),
            post(measure::uplift),
        ),
        route(
            Method::POST,
            "/api/geo/did",
            Some(Scope::Stats),
            post(measure::geo_did),
        ),
        route(
            Method::POST,
            "/api/geo/synthetic-control",
            Some(Scope::Stats),
            post(measure::geo_synthetic_control),
        ),
        route(
            Method::POST,
            "/api/drift",
            Some(Scope::Stats),
            post(measure::drift),
        ),
        route(
            Method::POST,
            "/api/bandits",
            Some(Scope::Stats),
            post(bandits::create),
        ),
        route(
            Method::GET,
            "/api/bandits/{key}",
            Some(Scope::Stats),
            get(bandits::get),
        ),
        route(
            Method::POST,
            "/api/bandits/{key}/decide",
            Some(Scope::Stats),
            post(bandits::decide),
        ),
        route(
            Method::POST,
            "/api/bandits/{key}/reward",
            Some(Scope::Stats),
            post(bandits::reward),
        ),
    ]
}

/// Every authenticated route with the scope it needs.
pub fn catalogue() -> Vec<RouteSpec> {
    api().into_iter().map(|r| r.spec).collect()
}

/// The router of every route, without the outer layers.
pub(crate) fn build(state: AppState) -> Router {
    let mut router = system::routes();
    for r in api() {
        let check = middleware::from_fn_with_state((state.clone(), r.spec.scope), auth::require);
        router = router.route(r.spec.path, r.handler.route_layer(check));
    }
    router.fallback(layers::fallback).with_state(state)
}
