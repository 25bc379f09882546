//! Configuration: defaults, then a TOML file, then `REGELKREIS_*` environment variables
//! (nested keys joined by `__`, e.g. `REGELKREIS_SERVER__ADDR`), then command-line flags.
//! An unknown key or a bad value stops start-up with a message that names it.

use anyhow::Context;
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use regelkreis_server::ServerConfig;
use regelkreis_store::StoreSpec;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything configurable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The data directory (SQLite file, indexes, models). `REGELKREIS_DATA`.
    pub data: PathBuf,
    /// `"sqlite"` or a `postgres://` URL. `REGELKREIS_STORE`.
    pub store: String,
    /// The HTTP server.
    pub server: ServerSection,
    /// Logging.
    pub log: LogSection,
    /// Guardrails.
    pub guard: GuardSection,
    /// Knowledge bases.
    pub knowledge: KnowledgeSection,
    /// The LLM gateway: providers, tiers, aliases, routes, retries, cache, budgets.
    pub gateway: regelkreis_gateway::GatewayConfig,
}

/// `[knowledge]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeSection {
    /// Folder of the embedding models (default: `$REGELKREIS_MODELS` or
    /// `~/.cache/regelkreis/models`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models_dir: Option<PathBuf>,
    /// Confidence model of the answer path (`regelkreis eval calibrate --out`); the one
    /// fitted on the shipped eval set when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_model: Option<PathBuf>,
}

/// `[guard]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardSection {
    /// Guard policy (TOML); the built-in default policy when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_file: Option<PathBuf>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// Largest total request headers, in bytes.
    pub max_header_bytes: usize,
    /// Request timeout in milliseconds.
    pub request_timeout_ms: u64,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `regelkreis=debug,tower_http=info`.
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("regelkreis-data"),
            store: "sqlite".into(),
            server: ServerSection::default(),
            log: LogSection::default(),
            guard: GuardSection::default(),
            knowledge: KnowledgeSection::default(),
            gateway: regelkreis_gateway::GatewayConfig::default(),
        }
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        let d = ServerConfig::default();
        ServerSection {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: d.body_limit_bytes,
            max_header_bytes: d.max_header_bytes,
            request_timeout_ms: u64::try_from(d.request_timeout.as_millis()).unwrap_or(30_000),
        }
    }
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Values given as command-line flags; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data`.
    pub data: Option<PathBuf>,
    /// `--addr`.
    pub addr: Option<SocketAddr>,
}

/// Environment variables with the `REGELKREIS_` prefix that are not configuration.
const NOT_CONFIG: &[&str] = &["config", "test_postgres"];

impl Config {
    /// Loads the configuration from defaults, `file`, the process environment and flags.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, &env, overrides)
    }

    /// Like [`Config::load`] with an explicit environment, for tests.
    pub fn load_from(
        file: Option<&Path>,
        env: &[(String, String)],
        overrides: &Overrides,
    ) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read config file {}", file.display()))?;
            fig = fig.merge(Toml::string(&text));
        }
        let mut config = extract(fig.merge(env_provider(env)))?;
        if let Some(d) = &overrides.data {
            config.data = d.clone();
        }
        if let Some(a) = overrides.addr {
            config.server.addr = a;
        }
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML document on top of the defaults (no environment), for tests and tools.
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        let config = extract(
            Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(text)),
        )?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        StoreSpec::parse(&self.store)
            .map_err(|e| anyhow::anyhow!("invalid configuration: key `store`: {e}"))?;
        if self.server.body_limit_bytes == 0 {
            anyhow::bail!(
                "invalid configuration: key `server.body_limit_bytes` must be greater than 0"
            );
        }
        if self.server.max_header_bytes < 1024 {
            anyhow::bail!(
                "invalid configuration: key `server.max_header_bytes` must be at least 1024"
            );
        }
        if self.server.request_timeout_ms == 0 {
            anyhow::bail!(
                "invalid configuration: key `server.request_timeout_ms` must be greater than 0"
            );
        }
        if self.data.as_os_str().is_empty() {
            anyhow::bail!("invalid configuration: key `data` must not be empty");
        }
        Ok(())
    }

    /// The store engine.
    pub fn store_spec(&self) -> anyhow::Result<StoreSpec> {
        Ok(StoreSpec::parse(&self.store)?)
    }

    /// The server's limits.
    pub fn server_config(&self) -> anyhow::Result<ServerConfig> {
        let guard_policy = match &self.guard.policy_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading guard.policy_file {}", path.display()))?;
                Some(
                    regelkreis_guard::Policy::from_toml(&text)
                        .with_context(|| format!("guard.policy_file {}", path.display()))?,
                )
            }
            None => None,
        };
        let confidence = match &self.knowledge.confidence_model {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("reading knowledge.confidence_model {}", path.display())
                })?;
                serde_json::from_str(&text)
                    .with_context(|| format!("knowledge.confidence_model {}", path.display()))?
            }
            None => regelkreis_server::answer::shipped_confidence_model(),
        };
        Ok(ServerConfig {
            body_limit_bytes: self.server.body_limit_bytes,
            max_header_bytes: self.server.max_header_bytes,
            request_timeout: Duration::from_millis(self.server.request_timeout_ms),
            guard_policy,
            knowledge_dir: Some(self.knowledge_dir()),
            models_dir: self.models_dir(),
            gateway: self.gateway.clone(),
            prices: self.prices()?,
            confidence,
        })
    }

    /// The shipped price catalogue with `gateway.prices_file` merged over it.
    pub fn prices(&self) -> anyhow::Result<regelkreis_gateway::PriceCatalogue> {
        let mut prices = regelkreis_gateway::PriceCatalogue::builtin();
        if let Some(path) = &self.gateway.prices_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading gateway.prices_file {}", path.display()))?;
            prices.merge(
                regelkreis_gateway::PriceCatalogue::from_toml(&text)
                    .with_context(|| format!("gateway.prices_file {}", path.display()))?,
            );
        }
        Ok(prices)
    }

    /// Where the knowledge bases live: `<data>/knowledge`.
    pub fn knowledge_dir(&self) -> PathBuf {
        self.data.join("knowledge")
    }

    /// Where the embedding models live.
    pub fn models_dir(&self) -> PathBuf {
        self.knowledge
            .models_dir
            .clone()
            .unwrap_or_else(regelkreis_knowledge::embed::models_dir)
    }

    /// The configuration as TOML, with a password in the store URL masked.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        let mut shown = self.clone();
        shown.store = mask_password(&shown.store);
        Ok(toml::to_string(&shown)?)
    }
}

/// The `REGELKREIS_*` variables of an environment as a figment provider: nested keys are
/// joined by `__`, names are case-insensitive, values are parsed like figment parses
/// environment values (numbers, booleans, strings).
struct EnvVars(Vec<(String, String)>);

impl figment::Provider for EnvVars {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("`REGELKREIS_` environment variable(s)")
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::value::{Dict, Value};
        let mut root = Dict::new();
        for (name, raw) in &self.0 {
            let Some(key) = name.strip_prefix("REGELKREIS_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if key.is_empty() || NOT_CONFIG.contains(&key.as_str()) || key.starts_with("test_") {
                continue;
            }
            let value: Value = raw.parse().unwrap_or_else(|_| Value::from(raw.clone()));
            let parts: Vec<&str> = key.split("__").collect();
            let mut dict = &mut root;
            for part in &parts[..parts.len() - 1] {
                let entry = dict
                    .entry((*part).to_owned())
                    .or_insert_with(|| Value::from(Dict::new()));
                if !matches!(entry, Value::Dict(..)) {
                    *entry = Value::from(Dict::new());
                }
                match entry {
                    Value::Dict(_, d) => dict = d,
                    _ => return Err(figment::Error::from(format!("bad variable {name}"))),
                }
            }
            dict.insert(parts[parts.len() - 1].to_owned(), value);
        }
        Ok(figment::Profile::Default.collect(root))
    }
}

fn env_provider(env: &[(String, String)]) -> EnvVars {
    EnvVars(env.to_vec())
}

/// The configuration the merged providers describe, or an error naming the key.
fn extract(fig: Figment) -> anyhow::Result<Config> {
    fig.extract()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {}", describe(e)))
}

fn describe(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

fn mask_password(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_owned()
}
