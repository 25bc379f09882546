//! The LLM gateway: one front door to every model.
//!
//! A chat request is resolved to a chain of `provider/model` targets (routing rules, aliases,
//! tiers), checked against the caller's budgets, answered from the exact cache or joined to
//! an identical call already in flight, and otherwise sent down the chain: each target gets
//! a few attempts with exponential backoff and jitter (honouring `Retry-After`), providers
//! whose circuit is open are skipped, and a client error ends the chain at once. The call
//! runs in its own task, so a client that goes away does not cancel what others wait for or
//! what is billed. Costs are exact integers from the price catalogue and the provider's
//! usage (estimated and marked so only where the provider reports none).
//!
//! **Boundary:** no HTTP server and no storage here; the server crate owns routes and
//! events and passes a callback that receives every [`CallRecord`].

mod accounts;
pub mod anthropic;
pub mod config;
mod flight;
mod latency;
pub mod local;
pub mod price;
mod provider;
mod router;
pub mod wire;

pub use accounts::{share, BudgetExceeded, BudgetState, Caller, CostReport, Totals};
pub use config::{GatewayConfig, GuardMode, ProviderConfig, ProviderKind};
pub use latency::LatencySummary;
pub use price::{PriceCatalogue, Usage};
pub use provider::UpstreamError;

use accounts::{Accounts, Reservation};
use bytes::Bytes;
use flight::{Flight, FlightReader, Read};
use provider::{ProviderClient, StreamItem, Upstream};
use regelkreis_core::Money;
use router::{Breaker, Plan, Routes};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Why the gateway did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The request is malformed: 400.
    #[error("{0}")]
    BadRequest(String),
    /// No route or provider serves the model: 404.
    #[error("{0}")]
    ModelNotFound(String),
    /// A budget is exhausted: 429.
    #[error("{0}")]
    Budget(#[from] BudgetExceeded),
    /// A provider refused the request itself (its 4xx status is passed on).
    #[error("provider {provider} refused the request: {message}")]
    Refused {
        /// The provider.
        provider: String,
        /// Its status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// Every target failed: 502, or 504 when the last failure was a timeout.
    #[error("no provider answered: {path}")]
    Exhausted {
        /// Each attempt and how it ended.
        path: String,
        /// Whether the last failure was a timeout.
        timeout: bool,
    },
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl GatewayError {
    /// The HTTP status this answers with.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::BadRequest(_) => 400,
            GatewayError::ModelNotFound(_) => 404,
            GatewayError::Budget(_) => 429,
            // The gateway's own credentials were refused: that is the gateway's failure.
            GatewayError::Refused {
                status: 401 | 403, ..
            } => 502,
            GatewayError::Refused { status, .. } => *status,
            GatewayError::Exhausted { timeout: true, .. } => 504,
            GatewayError::Exhausted { .. } => 502,
            GatewayError::Internal(_) => 500,
        }
    }

    /// A stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::BadRequest(_) => "invalid_request",
            GatewayError::ModelNotFound(_) => "model_not_found",
            GatewayError::Budget(_) => "budget_exceeded",
            GatewayError::Refused { .. } => "provider_refused",
            GatewayError::Exhausted { timeout: true, .. } => "upstream_timeout",
            GatewayError::Exhausted { .. } => "upstream_unavailable",
            GatewayError::Internal(_) => "internal_error",
        }
    }
}

/// What one upstream call cost and where it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSummary {
    /// The provider that answered.
    pub provider: String,
    /// Its model name.
    pub model: String,
    /// Tokens.
    pub usage: Usage,
    /// Cost of the whole call.
    pub cost: Money,
    /// Earlier attempts and how each ended (`provider/model:429`).
    pub fallback_path: Vec<String>,
    /// A stream that broke after it started (ended with an error event).
    pub interrupted: bool,
}

/// One caller's share of a call: what the server turns into an event and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Who.
    pub caller: Caller,
    /// The model the client asked for.
    pub requested_model: String,
    /// The provider that answered (`cache` for a cache hit).
    pub provider: String,
    /// The provider's model.
    pub model: String,
    /// Tokens billed to this caller (all of them go to the caller whose request went
    /// upstream; callers that joined it get none).
    pub usage: Usage,
    /// This caller's share of the cost.
    pub cost: Money,
    /// From request to the end of the answer.
    pub latency_us: u64,
    /// Answered from the gateway's cache.
    pub cache_hit: bool,
    /// How many callers shared the upstream call.
    pub shared_by: u32,
    /// Earlier attempts.
    pub fallback_path: Vec<String>,
    /// Streamed.
    pub stream: bool,
    /// The stream broke after it started.
    pub interrupted: bool,
    /// The call is an embedding.
    pub embedding: bool,
}

/// Receives every call record.
pub type OnCall = Arc<dyn Fn(&CallRecord) + Send + Sync>;

/// Embeddings computed in process (the knowledge crate's models).
pub trait LocalEmbedder: Send + Sync {
    /// Model names it serves.
    fn models(&self) -> Vec<String>;
    /// Vectors and the token count of `texts`, or a message.
    fn embed(&self, model: &str, texts: &[String]) -> Result<(Vec<Vec<f32>>, u64), String>;
}

struct CacheEntry {
    bytes: Bytes,
    at: Instant,
    provider: String,
    model: String,
}

struct Joined {
    caller: Caller,
    reservation: Reservation,
    start: Instant,
}

struct InFlight {
    flight: Arc<Flight>,
    callers: Mutex<Vec<Joined>>,
}

type Key = [u8; 32];

/// The gateway.
pub struct Gateway {
    config: GatewayConfig,
    prices: PriceCatalogue,
    providers: Vec<ProviderClient>,
    routes: Routes,
    breakers: Vec<Mutex<Breaker>>,
    cache: Option<Mutex<lru::LruCache<Key, CacheEntry>>>,
    flights: Mutex<HashMap<Key, Arc<InFlight>>>,
    accounts: Accounts,
    latency: latency::LatencyWindow,
    on_call: OnCall,
    embedder: Option<Arc<dyn LocalEmbedder>>,
}

/// The gateway could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// A chat answer.
pub enum Reply {
    /// A JSON chat completion, and the call that made it (`None` for a cache hit).
    Json(Bytes, Option<CallSummary>),
    /// Server-sent events.
    Stream(ReplyStream),
}

/// The bytes of a streamed answer, in order.
pub struct ReplyStream {
    first: Option<Bytes>,
    reader: Option<FlightReader>,
}

impl ReplyStream {
    /// The next piece, `None` at the end.
    pub async fn next(&mut self) -> Option<Bytes> {
        if let Some(b) = self.first.take() {
            return Some(b);
        }
        match self.reader.as_mut()?.next().await {
            Read::Bytes(b) => Some(b),
            Read::End(_) => {
                self.reader = None;
                None
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn jitter(max: Duration) -> Duration {
    // Full jitter in [max/2, max]; the clock's nanoseconds are random enough for spreading
    // retries apart.
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    let x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    let frac = (x % 1_000_001) as f64 / 1e6;
    max.mul_f64(0.5 + 0.5 * frac)
}

/// Checks a chat request and returns its messages and whether it streams.
fn validate(body: &Value) -> Result<(&str, &[Value], bool), GatewayError> {
    let obj = body
        .as_object()
        .ok_or_else(|| GatewayError::BadRequest("the body must be a JSON object".into()))?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| GatewayError::BadRequest("'model' must be a non-empty string".into()))?;
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| GatewayError::BadRequest("'messages' must be a non-empty array".into()))?;
    for (i, m) in messages.iter().enumerate() {
        if m.get("role").and_then(Value::as_str).is_none() {
            return Err(GatewayError::BadRequest(format!(
                "messages[{i}] needs a string 'role'"
            )));
        }
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(GatewayError::BadRequest(
                "'stream' must be a boolean".into(),
            ))
        }
    };
    Ok((model, messages, stream))
}

/// The cache and de-duplication key: tenant plus the whole request except `metadata`
/// (tags do not change the answer). serde_json keeps object keys sorted, so the
/// serialisation is canonical.
fn request_key(tenant: &str, body: &Value) -> Key {
    let mut h = Sha256::new();
    h.update(tenant.as_bytes());
    h.update([0]);
    match body.as_object() {
        Some(m) if m.contains_key("metadata") => {
            let mut m = m.clone();
            m.remove("metadata");
            h.update(Value::Object(m).to_string().as_bytes());
        }
        _ => h.update(body.to_string().as_bytes()),
    }
    h.finalize().into()
}

impl Gateway {
    /// A gateway over `config` with `prices`; `on_call` receives every call record.
    pub fn new(
        config: GatewayConfig,
        prices: PriceCatalogue,
        on_call: OnCall,
        embedder: Option<Arc<dyn LocalEmbedder>>,
    ) -> Result<Self, ConfigError> {
        let mut provider_configs = config.providers.clone();
        if !provider_configs.iter().any(|p| p.name == "local") {
            provider_configs.insert(
                0,
                ProviderConfig {
                    name: "local".into(),
                    kind: ProviderKind::Local,
                    base_url: None,
                    api_key: None,
                    api_key_env: None,
                    price_table: None,
                    timeout_ms: None,
                },
            );
        }
        let mut seen = std::collections::HashSet::new();
        for p in &provider_configs {
            if !seen.insert(p.name.clone()) {
                return Err(ConfigError(format!(
                    "provider {:?} is listed twice",
                    p.name
                )));
            }
        }
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| ConfigError(format!("HTTP client: {e}")))?;
        let providers: Vec<ProviderClient> = provider_configs
            .into_iter()
            .map(|p| {
                ProviderClient::new(
                    p,
                    http.clone(),
                    Duration::from_millis(config.timeout_ms),
                    Duration::from_millis(config.stream_idle_timeout_ms),
                )
            })
            .collect();
        let names = providers.iter().map(|p| p.config.name.clone()).collect();
        let known = providers
            .iter()
            .map(|p| prices.models(p.price_table()))
            .collect();
        let routes = Routes::new(&config, names, known).map_err(|e| ConfigError(e.to_string()))?;
        let accounts = Accounts::new(&config.budgets).map_err(|e| ConfigError(e.to_string()))?;
        let cache =
            NonZeroUsize::new(config.cache_entries).map(|n| Mutex::new(lru::LruCache::new(n)));
        Ok(Gateway {
            breakers: providers.iter().map(|_| Mutex::default()).collect(),
            providers,
            routes,
            prices,
            cache,
            flights: Mutex::default(),
            accounts,
            latency: latency::LatencyWindow::default(),
            on_call,
            embedder,
            config,
        })
    }

    /// Model names clients may send.
    pub fn model_ids(&self) -> Vec<String> {
        let mut ids = self.routes.model_ids();
        if let Some(e) = &self.embedder {
            ids.extend(e.models());
        }
        ids
    }

    /// A tenant's cost roll-ups and budgets.
    pub fn costs(&self, tenant: &str) -> CostReport {
        self.accounts.report(tenant)
    }

    /// A tenant's latency quantiles per `provider/model`.
    pub fn latency(&self, tenant: &str) -> std::collections::BTreeMap<String, LatencySummary> {
        self.latency.summary(tenant)
    }

    /// Replays a call recorded before a restart into roll-ups and budgets.
    pub fn replay(
        &self,
        caller: &Caller,
        model: &str,
        usage: &Usage,
        cost: Money,
        cache_hit: bool,
    ) {
        self.accounts.record(
            caller,
            Reservation::default(),
            model,
            usage,
            cost,
            cache_hit,
        );
    }

    fn price(&self, provider: usize, model: &str) -> price::Price {
        self.prices
            .get(self.providers[provider].price_table(), model)
            .unwrap_or_default()
    }

    fn emit(&self, r: CallRecord) {
        if !r.cache_hit {
            self.latency.record(
                &r.caller.tenant,
                &format!("{}/{}", r.provider, r.model),
                r.latency_us,
            );
        }
        (self.on_call)(&r);
    }

    /// Answers a chat completion request (OpenAI's body).
    pub async fn chat(
        self: &Arc<Self>,
        caller: Caller,
        body: Value,
    ) -> Result<Reply, GatewayError> {
        let start = Instant::now();
        let (model, messages, stream) = validate(&body)?;
        let requested = model.to_owned();
        let prompt_estimate = wire::estimate_prompt_tokens(messages);
        let plan = self
            .routes
            .resolve(model, &caller.tags, prompt_estimate)
            .ok_or_else(|| {
                GatewayError::ModelNotFound(format!(
                    "the model {model:?} does not exist or is not routed; GET /v1/models lists the models"
                ))
            })?;
        let key = request_key(&caller.tenant, &body);
        if let Some(hit) = self.cached(&key) {
            let label = format!("{}/{}", hit.1, hit.2);
            self.accounts.record(
                &caller,
                Reservation::default(),
                &label,
                &Usage::default(),
                Money::ZERO,
                true,
            );
            self.emit(CallRecord {
                caller,
                requested_model: requested,
                provider: "cache".into(),
                model: format!("{}/{}", hit.1, hit.2),
                usage: Usage::default(),
                cost: Money::ZERO,
                latency_us: start.elapsed().as_micros() as u64,
                cache_hit: true,
                shared_by: 1,
                fallback_path: Vec::new(),
                stream,
                interrupted: false,
                embedding: false,
            });
            return Ok(if stream {
                Reply::Stream(ReplyStream {
                    first: Some(hit.0),
                    reader: None,
                })
            } else {
                Reply::Json(hit.0, None)
            });
        }
        // The largest plausible cost: the estimated prompt plus the completion limit at
        // the dearest target of the chain.
        let max_out = body
            .get("max_completion_tokens")
            .or_else(|| body.get("max_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(1024);
        let estimate = plan
            .chain
            .iter()
            .map(|t| {
                self.price(t.provider, &t.model).cost(&Usage {
                    prompt_tokens: prompt_estimate,
                    completion_tokens: max_out,
                    ..Usage::default()
                })
            })
            .max()
            .unwrap_or(Money::ZERO);
        let reservation = self.accounts.reserve(&caller, estimate)?;
        let joined = Joined {
            caller,
            reservation,
            start,
        };
        let flight = {
            let mut flights = lock(&self.flights);
            match flights.get(&key) {
                Some(f) => {
                    lock(&f.callers).push(joined);
                    f.flight.clone()
                }
                None => {
                    let f = Arc::new(InFlight {
                        flight: Flight::new(),
                        callers: Mutex::new(vec![joined]),
                    });
                    flights.insert(key, f.clone());
                    let gw = self.clone();
                    let flight = f.flight.clone();
                    tokio::spawn(
                        async move { gw.drive(key, f, plan, body, requested, stream).await },
                    );
                    flight
                }
            }
        };
        let mut reader = flight.reader();
        if stream {
            return match reader.next().await {
                Read::Bytes(b) => Ok(Reply::Stream(ReplyStream {
                    first: Some(b),
                    reader: Some(reader),
                })),
                Read::End(end) => match end.as_ref() {
                    Err(e) => Err(e.clone()),
                    Ok(_) => Ok(Reply::Stream(ReplyStream {
                        first: None,
                        reader: None,
                    })),
                },
            };
        }
        loop {
            if let Read::End(end) = reader.next().await {
                return match end.as_ref() {
                    Err(e) => Err(e.clone()),
                    Ok(summary) => Ok(Reply::Json(flight.bytes(), Some(summary.clone()))),
                };
            }
        }
    }

    fn cached(&self, key: &Key) -> Option<(Bytes, String, String)> {
        let cache = self.cache.as_ref()?;
        let mut c = lock(cache);
        let ttl = Duration::from_secs(self.config.cache_ttl_s);
        match c.get(key) {
            Some(e) if e.at.elapsed() <= ttl => {
                Some((e.bytes.clone(), e.provider.clone(), e.model.clone()))
            }
            Some(_) => {
                c.pop(key);
                None
            }
            None => None,
        }
    }

    /// Runs the call for everyone waiting on `key`, then settles every caller.
    async fn drive(
        self: Arc<Self>,
        key: Key,
        entry: Arc<InFlight>,
        plan: Plan,
        body: Value,
        requested: String,
        stream: bool,
    ) {
        let result = self.call_chain(&entry.flight, &plan, &body, stream).await;
        if let (Ok(s), Some(cache)) = (&result, &self.cache) {
            if !s.interrupted {
                lock(cache).put(
                    key,
                    CacheEntry {
                        bytes: entry.flight.bytes(),
                        at: Instant::now(),
                        provider: s.provider.clone(),
                        model: s.model.clone(),
                    },
                );
            }
        }
        // Close the flight to joiners and end it in one step, so the set of callers that
        // share the cost is final.
        let callers = {
            let mut flights = lock(&self.flights);
            flights.remove(&key);
            let callers = std::mem::take(&mut *lock(&entry.callers));
            entry.flight.finish(result.clone());
            callers
        };
        let n = callers.len() as u32;
        for (i, j) in callers.into_iter().enumerate() {
            match &result {
                Ok(s) => {
                    let cost = share(s.cost, n, i as u32);
                    let usage = if i == 0 { s.usage } else { Usage::default() };
                    let label = format!("{}/{}", s.provider, s.model);
                    self.accounts
                        .record(&j.caller, j.reservation, &label, &usage, cost, false);
                    self.emit(CallRecord {
                        caller: j.caller,
                        requested_model: requested.clone(),
                        provider: s.provider.clone(),
                        model: s.model.clone(),
                        usage,
                        cost,
                        latency_us: j.start.elapsed().as_micros() as u64,
                        cache_hit: false,
                        shared_by: n,
                        fallback_path: s.fallback_path.clone(),
                        stream,
                        interrupted: s.interrupted,
                        embedding: false,
                    });
                }
                Err(_) => self.accounts.release(j.reservation),
            }
        }
    }

    fn breaker(&self, provider: usize) -> std::sync::MutexGuard<'_, Breaker> {
        lock(&self.breakers[provider])
    }

    fn failed(&self, provider: usize) {
        self.breaker(provider).failure(
            self.config.breaker_failures,
            Duration::from_millis(self.config.breaker_cooldown_ms),
            Instant::now(),
        );
    }

    async fn call_chain(
        &self,
        flight: &Arc<Flight>,
        plan: &Plan,
        body: &Value,
        stream: bool,
    ) -> Result<CallSummary, GatewayError> {
        let include_usage = body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let messages = body["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut path = Vec::new();
        let mut last_timeout = false;
        for t in &plan.chain {
            let name = &self.providers[t.provider].config.name;
            let label = format!("{name}/{}", t.model);
            for attempt in 0..self.config.attempts_per_target.max(1) {
                if !self.breaker(t.provider).allow(Instant::now()) {
                    path.push(format!("{label}:circuit_open"));
                    break;
                }
                let span = tracing::info_span!(
                    "gen_ai.chat",
                    gen_ai.system = %name,
                    gen_ai.request.model = %t.model,
                    gen_ai.operation.name = "chat",
                    attempt,
                );
                let _enter = span.enter();
                let price = self.price(t.provider, &t.model);
                let summary =
                    |usage: Usage, fallback_path: Vec<String>, interrupted: bool| CallSummary {
                        provider: name.clone(),
                        model: t.model.clone(),
                        cost: price.cost(&usage),
                        usage,
                        fallback_path,
                        interrupted,
                    };
                let outcome: Result<(), UpstreamError> = match self.providers[t.provider]
                    .chat(body, &t.model, stream)
                    .await
                {
                    Ok(Upstream::Complete { body: bytes, usage }) => {
                        self.breaker(t.provider).success();
                        let usage = usage.unwrap_or_else(|| estimate_usage(messages, &bytes));
                        flight.push(bytes);
                        return Ok(summary(usage, path, false));
                    }
                    Ok(Upstream::Stream(mut src)) => {
                        match pump(flight, &mut src, include_usage, messages).await {
                            Ok(usage) => {
                                self.breaker(t.provider).success();
                                return Ok(summary(usage, path, false));
                            }
                            Err(Broken { error, sent: 0, .. }) => Err(error),
                            Err(Broken { error, usage, .. }) => {
                                // Bytes reached the clients: end with an explicit error
                                // event, never a silently truncated stream.
                                self.failed(t.provider);
                                path.push(format!("{label}:{}", error.label()));
                                let event = serde_json::json!({"error": {
                                    "message": format!("the provider's stream broke after it started ({error}); the answer is incomplete"),
                                    "type": "server_error",
                                    "code": "stream_interrupted",
                                }});
                                flight.push(wire::sse_data(event.to_string().as_bytes()));
                                return Ok(summary(usage, path, true));
                            }
                        }
                    }
                    Err(e) => Err(e),
                };
                let Err(e) = outcome else { continue };
                if !e.retryable() {
                    if let UpstreamError::Client { status, message } = e {
                        return Err(GatewayError::Refused {
                            provider: name.clone(),
                            status,
                            message,
                        });
                    }
                }
                self.failed(t.provider);
                tracing::warn!(provider = %name, model = %t.model, attempt, error = %e, "provider call failed");
                path.push(format!("{label}:{}", e.label()));
                last_timeout = e == UpstreamError::Timeout;
                if attempt + 1 >= self.config.attempts_per_target.max(1) {
                    break;
                }
                let backoff = Duration::from_millis(
                    self.config
                        .backoff_base_ms
                        .saturating_mul(1 << attempt.min(20))
                        .min(self.config.backoff_max_ms),
                );
                let wait = match e {
                    UpstreamError::RateLimited {
                        retry_after: Some(d),
                    } => {
                        if d > Duration::from_millis(self.config.retry_after_max_ms) {
                            // Waiting that long is worse than asking the next provider.
                            break;
                        }
                        d
                    }
                    _ => jitter(backoff),
                };
                tokio::time::sleep(wait).await;
            }
        }
        Err(GatewayError::Exhausted {
            path: if path.is_empty() {
                "no target could be tried".into()
            } else {
                path.join(", ")
            },
            timeout: last_timeout,
        })
    }

    /// Answers an embeddings request (OpenAI's body).
    pub async fn embeddings(
        self: &Arc<Self>,
        caller: Caller,
        body: Value,
    ) -> Result<Bytes, GatewayError> {
        let start = Instant::now();
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| GatewayError::BadRequest("'model' must be a non-empty string".into()))?
            .to_owned();
        let input: Vec<String> = match body.get("input") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => {
                return Err(GatewayError::BadRequest(
                    "'input' must be a string or a non-empty array of strings".into(),
                ))
            }
        };
        let local_name = model.strip_prefix("local/").unwrap_or(&model).to_owned();
        let local = self
            .embedder
            .as_ref()
            .filter(|e| e.models().contains(&local_name))
            .cloned();
        let (bytes, usage, provider, served) = if let Some(e) = local {
            let m = local_name.clone();
            let (vectors, tokens) = tokio::task::spawn_blocking(move || e.embed(&m, &input))
                .await
                .map_err(|e| GatewayError::Internal(e.to_string()))?
                .map_err(GatewayError::BadRequest)?;
            let data: Vec<Value> = vectors
                .into_iter()
                .enumerate()
                .map(
                    |(i, v)| serde_json::json!({"object": "embedding", "index": i, "embedding": v}),
                )
                .collect();
            let usage = Usage {
                prompt_tokens: tokens,
                ..Usage::default()
            };
            let out = serde_json::json!({
                "object": "list", "data": data, "model": local_name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            });
            (
                Bytes::from(out.to_string()),
                usage,
                "local".to_owned(),
                local_name,
            )
        } else {
            let plan = self
                .routes
                .resolve(&model, &caller.tags, 0)
                .ok_or_else(|| {
                    GatewayError::ModelNotFound(format!(
                        "the embedding model {model:?} does not exist or is not routed"
                    ))
                })?;
            let t = &plan.chain[0];
            let p = &self.providers[t.provider];
            let (bytes, usage) = p.embeddings(&body, &t.model).await.map_err(|e| match e {
                UpstreamError::Client { status, message } => GatewayError::Refused {
                    provider: p.config.name.clone(),
                    status,
                    message,
                },
                e => GatewayError::Exhausted {
                    path: format!("{}/{}:{}", p.config.name, t.model, e.label()),
                    timeout: e == UpstreamError::Timeout,
                },
            })?;
            let usage = usage.unwrap_or_else(|| Usage {
                prompt_tokens: input.iter().map(|s| wire::estimate_tokens(s)).sum(),
                estimated: true,
                ..Usage::default()
            });
            (bytes, usage, p.config.name.clone(), t.model.clone())
        };
        let cost = self
            .prices
            .get(
                if provider == "local" {
                    "local"
                } else {
                    &provider
                },
                &served,
            )
            .or_else(|| {
                let p = self.providers.iter().find(|p| p.config.name == provider)?;
                self.prices.get(p.price_table(), &served)
            })
            .unwrap_or_default()
            .cost(&usage);
        let reservation = self.accounts.reserve(&caller, Money::ZERO)?;
        self.accounts.record(
            &caller,
            reservation,
            &format!("{provider}/{served}"),
            &usage,
            cost,
            false,
        );
        self.emit(CallRecord {
            caller,
            requested_model: model,
            provider,
            model: served,
            usage,
            cost,
            latency_us: start.elapsed().as_micros() as u64,
            cache_hit: false,
            shared_by: 1,
            fallback_path: Vec::new(),
            stream: false,
            interrupted: false,
            embedding: true,
        });
        Ok(bytes)
    }
}

fn estimate_usage(messages: &[Value], body: &[u8]) -> Usage {
    let text = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Usage {
        prompt_tokens: wire::estimate_prompt_tokens(messages),
        completion_tokens: wire::estimate_tokens(&text),
        estimated: true,
        ..Usage::default()
    }
}

struct Broken {
    error: UpstreamError,
    sent: usize,
    usage: Usage,
}

/// Forwards a provider's chunks into the flight; the usage at the end (the provider's, or
/// an estimate when it sent none).
async fn pump(
    flight: &Flight,
    src: &mut provider::ChunkSource,
    include_usage: bool,
    messages: &[Value],
) -> Result<Usage, Broken> {
    let mut sent = 0;
    let mut text = String::new();
    let mut usage = None;
    let estimate = |text: &str| Usage {
        prompt_tokens: wire::estimate_prompt_tokens(messages),
        completion_tokens: wire::estimate_tokens(text),
        estimated: true,
        ..Usage::default()
    };
    loop {
        match src.next().await {
            Ok(StreamItem::Chunk(mut v)) => {
                if let Some(u) = wire::openai_usage(&v) {
                    usage = Some(u);
                    if !include_usage {
                        let only_usage = v["choices"].as_array().is_some_and(Vec::is_empty);
                        if only_usage {
                            continue;
                        }
                        if let Some(m) = v.as_object_mut() {
                            m.remove("usage");
                        }
                    }
                }
                if let Some(t) = wire::chunk_text(&v) {
                    text.push_str(t);
                }
                flight.push(wire::sse_data(v.to_string().as_bytes()));
                sent += 1;
            }
            Ok(StreamItem::Done) => {
                flight.push(Bytes::from_static(wire::DONE));
                return Ok(usage.unwrap_or_else(|| estimate(&text)));
            }
            Err(error) => {
                return Err(Broken {
                    error,
                    sent,
                    usage: usage.unwrap_or_else(|| estimate(&text)),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ignores_metadata_and_separates_tenants() {
        let a = serde_json::json!({"model": "m", "messages": [], "metadata": {"feature": "x"}});
        let b = serde_json::json!({"messages": [], "model": "m"});
        assert_eq!(request_key("t", &a), request_key("t", &b));
        assert_ne!(request_key("t", &b), request_key("u", &b));
        let c = serde_json::json!({"messages": [], "model": "m", "temperature": 0.5});
        assert_ne!(request_key("t", &b), request_key("t", &c));
    }

    #[test]
    fn validation_names_the_field() {
        let e = validate(&serde_json::json!({"model": "m"})).unwrap_err();
        assert!(e.to_string().contains("messages"));
        let e = validate(&serde_json::json!({"model": "m", "messages": [{"content": "x"}]}))
            .unwrap_err();
        assert!(e.to_string().contains("role"));
        let e = validate(
            &serde_json::json!({"model": "m", "messages": [{"role": "user"}], "stream": "yes"}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("stream"));
    }
}
