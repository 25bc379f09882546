//! The gateway's configuration: providers, tiers and aliases, routing rules, retries,
//! circuit breakers, cache and budgets. It is the `[gateway]` table of the server's TOML.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How to speak to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI's API.
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
    /// Any server speaking OpenAI's protocol (vLLM, llama.cpp server, Ollama).
    OpenaiCompatible,
    /// The built-in provider: no network.
    Local,
}

/// One provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The name routes refer to (`openai`, `claude`, `vllm-eu`).
    pub name: String,
    /// Its protocol.
    pub kind: ProviderKind,
    /// Base URL up to and including the version (`https://api.openai.com/v1`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The key, written in the config (prefer `api_key_env`).
    #[serde(default, skip_serializing)]
    pub api_key: Option<String>,
    /// The environment variable holding the key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The price table to use (defaults to the provider's kind: `openai`, `anthropic`,
    /// `local`; for OpenAI-compatible servers, to its name).
    #[serde(default)]
    pub price_table: Option<String>,
    /// Time to wait for the response head (non-streaming: the whole body).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// A routing rule: the first matching rule picks the tier.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Only requests naming this model or alias (any when absent).
    #[serde(default)]
    pub model: Option<String>,
    /// Only requests tagged with this feature.
    #[serde(default)]
    pub feature: Option<String>,
    /// Only requests tagged with this campaign.
    #[serde(default)]
    pub campaign: Option<String>,
    /// Only requests with at least this many estimated prompt tokens.
    #[serde(default)]
    pub min_input_tokens: Option<u64>,
    /// Only requests with at most this many estimated prompt tokens.
    #[serde(default)]
    pub max_input_tokens: Option<u64>,
    /// The tier to use.
    pub tier: String,
}

/// What a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    /// All of a tenant's calls.
    Tenant,
    /// One API key's calls.
    Key,
    /// Calls tagged with one feature.
    Feature,
    /// Calls tagged with one campaign.
    Campaign,
}

impl BudgetScope {
    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Tenant => "tenant",
            BudgetScope::Key => "key",
            BudgetScope::Feature => "feature",
            BudgetScope::Campaign => "campaign",
        }
    }
}

/// A spending limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// The tenant it belongs to: its id, or its name (resolved at start).
    pub tenant: String,
    /// What it limits.
    pub scope: BudgetScope,
    /// The key id, feature or campaign (ignored for `tenant`).
    #[serde(default)]
    pub name: Option<String>,
    /// The limit as a decimal amount of the account currency (`"25.00"`).
    pub limit: String,
}

/// What happens when a stream fails after bytes reached the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamFailure {
    /// End the stream with an explicit `error` event (the default).
    #[default]
    Error,
    /// Ask the next provider of the chain to continue the partial answer and stream its
    /// continuation.
    Continue,
}

/// Which guardrails run on the gateway's path (the server's guard policy decides what
/// each finds and does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardMode {
    /// None.
    Off,
    /// Before the provider: injection check of user and tool messages (blocked requests
    /// get a 400) and PII redaction of every message.
    Input,
    /// Input, plus after the provider: redacted values restored in the answer (streams
    /// included) and the answer checked against the brand rules.
    #[default]
    Full,
}

/// The `[gateway]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Providers; a `local` provider is always present.
    pub providers: Vec<ProviderConfig>,
    /// Tier name → chain of `provider/model` targets, tried in order.
    pub tiers: BTreeMap<String, Vec<String>>,
    /// Model names clients send → tier.
    pub aliases: BTreeMap<String, String>,
    /// Rules evaluated in order before aliases.
    pub routes: Vec<RouteRule>,
    /// Attempts per target before moving to the next.
    pub attempts_per_target: u32,
    /// First backoff delay.
    pub backoff_base_ms: u64,
    /// Largest backoff delay.
    pub backoff_max_ms: u64,
    /// A `Retry-After` longer than this moves on to the next target instead of waiting.
    pub retry_after_max_ms: u64,
    /// Default time to wait for a provider's response head.
    pub timeout_ms: u64,
    /// The whole of a `/v1` request until its answer starts, retries and fallbacks
    /// included (other routes have `server.request_timeout_ms`).
    pub request_timeout_ms: u64,
    /// Longest silence between two chunks of a stream.
    pub stream_idle_timeout_ms: u64,
    /// Consecutive failures that open a provider's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit stays open before one trial request.
    pub breaker_cooldown_ms: u64,
    /// Entries the exact cache holds (0 turns it off).
    pub cache_entries: usize,
    /// Seconds an entry lives.
    pub cache_ttl_s: u64,
    /// Behaviour of a stream that fails after it started.
    pub stream_failure: StreamFailure,
    /// Spending limits.
    pub budgets: Vec<BudgetConfig>,
    /// Guardrails on the path.
    pub guard: GuardMode,
    /// A TOML price file merged over the shipped catalogue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prices_file: Option<std::path::PathBuf>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        let chain = vec!["local/local-extractive".to_owned()];
        GatewayConfig {
            providers: Vec::new(),
            tiers: ["cheap", "standard", "critical"]
                .into_iter()
                .map(|t| (t.to_owned(), chain.clone()))
                .collect(),
            aliases: BTreeMap::new(),
            routes: Vec::new(),
            attempts_per_target: 2,
            backoff_base_ms: 100,
            backoff_max_ms: 2_000,
            retry_after_max_ms: 5_000,
            timeout_ms: 60_000,
            request_timeout_ms: 300_000,
            stream_idle_timeout_ms: 30_000,
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
            cache_entries: 10_000,
            cache_ttl_s: 3_600,
            stream_failure: StreamFailure::Error,
            budgets: Vec::new(),
            guard: GuardMode::Full,
            prices_file: None,
        }
    }
}
