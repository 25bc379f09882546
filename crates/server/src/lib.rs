//! The regelkreis HTTP API. It composes the domain crates behind one axum router:
//! authentication by API key with scopes, request ids, Prometheus metrics, body and header
//! limits, timeouts, JSON errors for every failure, and graceful shutdown.
//!
//! **Boundary:** only this crate knows JSON wire types and HTTP.
//! **Invariant:** every `/api` and `/v1` route is listed in [`routes::catalogue`] with the
//! scope it needs; the router is built from that list, so no route can skip its check.

pub mod answer;
mod auth;
mod error;
mod extract;
mod layers;
pub mod measure_api;
pub mod metrics;
pub mod routes;
mod sink;

pub use auth::Principal;
pub use error::ApiError;
pub use regelkreis_gateway;
pub use routes::{catalogue, RouteSpec};

use axum::Router;
use regelkreis_store::{Store, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Limits and behaviour of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Largest total size of request headers accepted, in bytes.
    pub max_header_bytes: usize,
    /// Time after which a request is answered with 408.
    pub request_timeout: Duration,
    /// Guard policy; the built-in default when `None`.
    pub guard_policy: Option<regelkreis_guard::Policy>,
    /// Folder of the knowledge bases; the knowledge routes answer 503 when `None`.
    pub knowledge_dir: Option<std::path::PathBuf>,
    /// Folder of the embedding models.
    pub models_dir: std::path::PathBuf,
    /// The LLM gateway: providers, tiers, budgets.
    pub gateway: regelkreis_gateway::GatewayConfig,
    /// Prices of the gateway's models.
    pub prices: regelkreis_gateway::PriceCatalogue,
    /// Maps an answer's grounding signals to its confidence.
    pub confidence: regelkreis_eval::calibration::ConfidenceModel,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit_bytes: 2 * 1024 * 1024,
            max_header_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            guard_policy: None,
            knowledge_dir: None,
            models_dir: regelkreis_knowledge::embed::models_dir(),
            gateway: regelkreis_gateway::GatewayConfig::default(),
            prices: regelkreis_gateway::PriceCatalogue::builtin(),
            confidence: answer::shipped_confidence_model(),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Server limits.
    pub config: Arc<ServerConfig>,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
    sink: sink::EventSink,
    calls: sink::EventSink,
    guard: Arc<tokio::sync::OnceCell<Arc<regelkreis_guard::Guard>>>,
    knowledge: Arc<std::sync::Mutex<Option<Arc<regelkreis_knowledge::Knowledge>>>>,
    /// The LLM gateway.
    pub gateway: Arc<regelkreis_gateway::Gateway>,
}

/// The server's state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A metric could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The gateway's configuration is wrong.
    #[error("gateway: {0}")]
    Gateway(#[from] regelkreis_gateway::ConfigError),
    /// A budget's tenant could not be resolved.
    #[error("gateway budget tenant: {0}")]
    Store(#[from] StoreError),
}

/// Embeddings through the knowledge crate's models.
struct KnowledgeEmbedder {
    models: regelkreis_knowledge::models::Models,
}

impl regelkreis_gateway::LocalEmbedder for KnowledgeEmbedder {
    fn models(&self) -> Vec<String> {
        ["minilm", "e5"]
            .into_iter()
            .filter(|m| self.models.path(m).exists())
            .map(str::to_owned)
            .collect()
    }

    fn embed(&self, model: &str, texts: &[String]) -> Result<(Vec<Vec<f32>>, u64), String> {
        let encoder = self.models.get(model).map_err(|e| e.to_string())?;
        let tokens = texts.iter().map(|t| encoder.count_tokens(t) as u64).sum();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = encoder
            .embed(&refs, regelkreis_knowledge::embed::Role::Passage)
            .map_err(|e| e.to_string())?;
        Ok((vectors, tokens))
    }
}

/// A gateway call as an event of the log.
fn call_event(r: &regelkreis_gateway::CallRecord) -> Option<regelkreis_core::NewEvent> {
    let tenant = regelkreis_core::TenantId::parse(&r.caller.tenant).ok()?;
    Some(regelkreis_core::NewEvent {
        tenant,
        at: regelkreis_core::Timestamp::now(),
        tags: r.caller.tags.clone(),
        kind: regelkreis_core::EventKind::ModelCall {
            provider: r.provider.clone(),
            model: r.model.clone(),
            input_tokens: r.usage.prompt_tokens,
            output_tokens: r.usage.completion_tokens,
            cached_tokens: r.usage.cached_tokens,
            cost_micros: r.cost.micros(),
            latency_us: r.latency_us,
            cache_hit: r.cache_hit,
            fallback_path: r.fallback_path.clone(),
            key_id: Some(r.caller.key.clone()),
            requested_model: Some(r.requested_model.clone()),
            cache_write_tokens: r.usage.cache_write_tokens,
            estimated: r.usage.estimated,
            shared_by: r.shared_by,
            stream: r.stream,
            interrupted: r.interrupted,
        },
    })
}

impl AppState {
    /// State over a store. Spawns the background writer of request events, so it must be
    /// called inside a Tokio runtime.
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Result<Self, StateError> {
        let metrics = Arc::new(metrics::Metrics::new()?);
        let sink = sink::EventSink::spawn(store.clone(), metrics.clone());
        let calls = sink::EventSink::spawn_lossless(store.clone(), metrics.clone());
        let on_call: regelkreis_gateway::OnCall = {
            let sink = calls.clone();
            let metrics = metrics.clone();
            Arc::new(move |r: &regelkreis_gateway::CallRecord| {
                metrics.observe_llm(r);
                if let Some(e) = call_event(r) {
                    sink.push(e);
                }
            })
        };
        let embedder = Arc::new(KnowledgeEmbedder {
            models: regelkreis_knowledge::models::Models::new(config.models_dir.clone()),
        });
        // Budgets name tenants by id or by name; names are resolved (and created) here.
        let mut gateway_config = config.gateway.clone();
        for b in &mut gateway_config.budgets {
            if regelkreis_core::TenantId::parse(&b.tenant).is_err() {
                b.tenant = store.ensure_tenant(&b.tenant)?.id.to_string();
            }
        }
        let gateway = Arc::new(regelkreis_gateway::Gateway::new(
            gateway_config,
            config.prices.clone(),
            on_call,
            Some(embedder),
        )?);
        Ok(AppState {
            gateway,
            store,
            config: Arc::new(config),
            metrics,
            sink,
            calls,
            guard: Arc::default(),
            knowledge: Arc::default(),
        })
    }

    /// Runs a blocking store call on a blocking thread.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
            .map_err(ApiError::from)
    }

    /// The knowledge bases, opened on first use.
    pub fn knowledge(&self) -> Result<Arc<regelkreis_knowledge::Knowledge>, ApiError> {
        let mut slot = self
            .knowledge
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(k) = slot.as_ref() {
            return Ok(k.clone());
        }
        let dir = self.config.knowledge_dir.as_ref().ok_or_else(|| {
            ApiError::Unavailable("knowledge bases are not configured on this server".into())
        })?;
        let k = Arc::new(
            regelkreis_knowledge::Knowledge::open(dir, self.config.models_dir.clone())
                .map_err(|e| ApiError::Internal(format!("knowledge bases: {e}")))?,
        );
        *slot = Some(k.clone());
        Ok(k)
    }

    /// Reads the gateway calls recorded before this start into its cost roll-ups and
    /// budgets. Blocking; call once before serving.
    pub fn replay_costs(&self) -> Result<usize, StoreError> {
        use regelkreis_core::{EventId, EventKind, EventQuery};
        let mut n = 0;
        for t in self.store.tenants()? {
            let mut after = None;
            loop {
                let page = self.store.events(&EventQuery {
                    tenant: t.id.clone(),
                    type_name: Some("model_call".into()),
                    since: None,
                    until: None,
                    after,
                    limit: 10_000,
                })?;
                for e in &page {
                    if let EventKind::ModelCall {
                        provider,
                        model,
                        input_tokens,
                        output_tokens,
                        cached_tokens,
                        cost_micros,
                        cache_hit,
                        key_id,
                        cache_write_tokens,
                        estimated,
                        ..
                    } = &e.kind
                    {
                        let caller = regelkreis_gateway::Caller {
                            tenant: t.id.to_string(),
                            key: key_id.clone().unwrap_or_default(),
                            tags: e.tags.clone(),
                        };
                        let usage = regelkreis_gateway::Usage {
                            prompt_tokens: *input_tokens,
                            cached_tokens: *cached_tokens,
                            cache_write_tokens: *cache_write_tokens,
                            completion_tokens: *output_tokens,
                            estimated: *estimated,
                        };
                        let label = if *cache_hit {
                            model.clone()
                        } else {
                            format!("{provider}/{model}")
                        };
                        self.gateway.replay(
                            &caller,
                            &label,
                            &usage,
                            regelkreis_core::Money(*cost_micros),
                            *cache_hit,
                        );
                        n += 1;
                    }
                }
                if page.len() < 10_000 {
                    break;
                }
                after = page.last().map(|e| EventId(e.id.0));
            }
        }
        Ok(n)
    }

    /// Queues an event for the store without waiting.
    pub(crate) fn push_event(&self, event: regelkreis_core::NewEvent) {
        self.sink.push(event);
    }

    /// Saves what the knowledge bases hold only in memory (called at shutdown).
    pub fn flush_knowledge(&self) {
        let k = self
            .knowledge
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(k) = k {
            if let Err(e) = k.flush() {
                tracing::warn!(error = %e, "could not save the vector indexes; they are rebuilt at the next start");
            }
        }
    }

    /// The guard, compiled on first use (its injection model trains once per process).
    pub async fn guard(&self) -> Result<Arc<regelkreis_guard::Guard>, ApiError> {
        // The policy is cloned only on the first call, not on every request.
        let config = self.config.clone();
        self.guard
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || {
                    let policy = config.guard_policy.clone();
                    let g = match policy {
                        Some(p) => regelkreis_guard::Guard::new(p),
                        None => regelkreis_guard::Guard::builtin(),
                    };
                    g.map(Arc::new)
                        .map_err(|e| ApiError::Internal(format!("guard policy: {e}")))
                })
                .await
                .map_err(|e| ApiError::Internal(format!("guard task failed: {e}")))?
            })
            .await
            .cloned()
    }

    /// Waits until every queued request event is written. Call after the server stopped.
    pub async fn flush(self) {
        let state = self.clone();
        // Saving vector files is blocking I/O.
        let _ = tokio::task::spawn_blocking(move || state.flush_knowledge()).await;
        self.sink.close().await;
        self.calls.close().await;
    }
}

/// The full router: system routes, every catalogued API route, and the layers.
pub fn router(state: AppState) -> Router {
    layers::wrap(routes::build(state.clone()), state)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish and flushes the
/// event writer. Sockets get `TCP_NODELAY`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let app = router(state.clone());
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("could not set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    state.flush().await;
    Ok(())
}
