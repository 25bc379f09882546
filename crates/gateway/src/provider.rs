//! Calls to one provider: request in OpenAI's shape, answer in OpenAI's shape, failures
//! classified so the router knows whether to retry, wait, or move on.

use crate::anthropic;
use crate::config::{ProviderConfig, ProviderKind};
use crate::local;
use crate::price::Usage;
use crate::wire::{openai_usage, SseParser};
use bytes::Bytes;
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// 429, with the wait the provider asked for.
    #[error("rate limited (429)")]
    RateLimited {
        /// `Retry-After` (or `retry-after-ms`), when sent.
        retry_after: Option<Duration>,
    },
    /// 5xx.
    #[error("server error ({status})")]
    Server {
        /// The status.
        status: u16,
    },
    /// The connection failed or broke.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The provider refused the request itself (4xx other than 408 and 429): retrying or
    /// asking another provider does not help.
    #[error("provider refused the request ({status}): {message}")]
    Client {
        /// The status.
        status: u16,
        /// The provider's message.
        message: String,
    },
    /// The answer did not follow the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl UpstreamError {
    /// Whether another attempt (here or at the next provider) may succeed.
    pub fn retryable(&self) -> bool {
        !matches!(self, UpstreamError::Client { .. })
    }

    /// A short label for fallback paths and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            UpstreamError::Timeout => "timeout",
            UpstreamError::RateLimited { .. } => "429",
            UpstreamError::Server { .. } => "5xx",
            UpstreamError::Connect(_) => "connect",
            UpstreamError::Client { .. } => "4xx",
            UpstreamError::Protocol(_) => "protocol",
        }
    }
}

/// A provider's answer.
pub enum Upstream {
    /// A whole chat completion in OpenAI's shape: the bytes to send and the usage.
    Complete {
        /// The JSON body.
        body: Bytes,
        /// Tokens, when the provider reported them.
        usage: Option<Usage>,
    },
    /// A stream of OpenAI chunks.
    Stream(ChunkSource),
}

/// One provider, ready to call.
pub struct ProviderClient {
    /// Its configuration.
    pub config: ProviderConfig,
    /// Endpoint URLs, parsed once (`chat`, `messages`, `embeddings`).
    urls: Option<(reqwest::Url, reqwest::Url)>,
    key: Option<String>,
    http: reqwest::Client,
    timeout: Duration,
    idle: Duration,
}

impl std::fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("ProviderClient")
            .field("name", &self.config.name)
            .field("kind", &self.config.kind)
            .field("base_url", &self.config.base_url)
            .finish_non_exhaustive()
    }
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl ProviderClient {
    /// A client for `config`; the key comes from the config or its environment variable.
    pub fn new(
        config: ProviderConfig,
        http: reqwest::Client,
        default_timeout: Duration,
        idle: Duration,
    ) -> Self {
        let key = config.api_key.clone().or_else(|| {
            config
                .api_key_env
                .as_ref()
                .and_then(|v| std::env::var(v).ok())
        });
        let timeout = config
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(default_timeout);
        let mut client = ProviderClient {
            config,
            urls: None,
            key,
            http,
            timeout,
            idle,
        };
        let chat = match client.config.kind {
            ProviderKind::Anthropic => "messages",
            _ => "chat/completions",
        };
        let base = client.base().to_owned();
        client.urls = reqwest::Url::parse(&format!("{base}/{chat}"))
            .ok()
            .zip(reqwest::Url::parse(&format!("{base}/embeddings")).ok());
        client
    }

    /// The chat (or messages) and embeddings URLs.
    fn url(&self, embeddings: bool) -> Result<reqwest::Url, UpstreamError> {
        let (chat, emb) = self.urls.as_ref().ok_or_else(|| UpstreamError::Client {
            status: 400,
            message: format!("provider {} has an invalid base_url", self.config.name),
        })?;
        Ok(if embeddings {
            emb.clone()
        } else {
            chat.clone()
        })
    }

    /// The name of its price table.
    pub fn price_table(&self) -> &str {
        if let Some(t) = &self.config.price_table {
            return t;
        }
        match self.config.kind {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Local => "local",
            ProviderKind::OpenaiCompatible => &self.config.name,
        }
    }

    fn base(&self) -> &str {
        let default = match self.config.kind {
            ProviderKind::Openai => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com/v1",
            _ => "http://127.0.0.1:8000/v1",
        };
        self.config
            .base_url
            .as_deref()
            .unwrap_or(default)
            .trim_end_matches('/')
    }

    /// A chat completion for `model` (the provider's own model name).
    pub async fn chat(
        &self,
        body: &Value,
        model: &str,
        stream: bool,
    ) -> Result<Upstream, UpstreamError> {
        match self.config.kind {
            ProviderKind::Local => local::chat(body, model, stream),
            ProviderKind::Anthropic => self.anthropic(body, model, stream).await,
            ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
                self.openai(body, model, stream).await
            }
        }
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        body: &Value,
    ) -> Result<reqwest::Response, UpstreamError> {
        let bytes = serde_json::to_vec(body).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        let req = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes);
        let resp = tokio::time::timeout(self.timeout, req.send())
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|e| {
                if e.is_timeout() {
                    UpstreamError::Timeout
                } else {
                    UpstreamError::Connect(error_chain(&e))
                }
            })?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(resp);
        }
        let retry_after = retry_after(resp.headers());
        let text = tokio::time::timeout(self.timeout, resp.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        Err(match status {
            429 => UpstreamError::RateLimited { retry_after },
            408 => UpstreamError::Timeout,
            s if s >= 500 => UpstreamError::Server { status: s },
            s => UpstreamError::Client {
                status: s,
                message: provider_message(&text),
            },
        })
    }

    async fn body(&self, resp: reqwest::Response) -> Result<Bytes, UpstreamError> {
        tokio::time::timeout(self.timeout, resp.bytes())
            .await
            .map_err(|_| UpstreamError::Timeout)?
            .map_err(|e| UpstreamError::Connect(error_chain(&e)))
    }

    async fn openai(
        &self,
        body: &Value,
        model: &str,
        stream: bool,
    ) -> Result<Upstream, UpstreamError> {
        let mut upstream = body.clone();
        upstream["model"] = Value::String(model.to_owned());
        if let Some(m) = upstream.as_object_mut() {
            m.remove("metadata");
            m.remove("kb");
        }
        if stream {
            // Ask for usage in the stream; the gateway drops the usage chunk for clients
            // that did not ask for it.
            upstream["stream_options"] = serde_json::json!({ "include_usage": true });
        }
        let mut req = self.http.post(self.url(false)?);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let resp = self.send(req, &upstream).await?;
        if stream {
            return Ok(Upstream::Stream(ChunkSource::sse(resp, self.idle, false)));
        }
        let bytes = self.body(resp).await?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| UpstreamError::Protocol(format!("response is not JSON: {e}")))?;
        if v.get("choices").is_none() {
            return Err(UpstreamError::Protocol("response has no choices".into()));
        }
        Ok(Upstream::Complete {
            usage: openai_usage(&v),
            body: bytes,
        })
    }

    async fn anthropic(
        &self,
        body: &Value,
        model: &str,
        stream: bool,
    ) -> Result<Upstream, UpstreamError> {
        let req_body =
            anthropic::request(body, model, stream).map_err(|message| UpstreamError::Client {
                status: 400,
                message,
            })?;
        let mut req = self
            .http
            .post(self.url(false)?)
            .header("anthropic-version", "2023-06-01");
        if let Some(k) = &self.key {
            req = req.header("x-api-key", k);
        }
        let resp = self.send(req, &req_body).await?;
        if stream {
            return Ok(Upstream::Stream(ChunkSource::sse(resp, self.idle, true)));
        }
        let bytes = self.body(resp).await?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| UpstreamError::Protocol(format!("response is not JSON: {e}")))?;
        let (out, usage) = anthropic::response(&v, now_s());
        Ok(Upstream::Complete {
            body: Bytes::from(out.to_string()),
            usage: Some(usage),
        })
    }

    /// Embeddings from an OpenAI-style provider: the body as returned and its usage.
    pub async fn embeddings(
        &self,
        body: &Value,
        model: &str,
    ) -> Result<(Bytes, Option<Usage>), UpstreamError> {
        if !matches!(
            self.config.kind,
            ProviderKind::Openai | ProviderKind::OpenaiCompatible
        ) {
            return Err(UpstreamError::Client {
                status: 400,
                message: format!("provider {} serves no embeddings", self.config.name),
            });
        }
        let mut upstream = body.clone();
        upstream["model"] = Value::String(model.to_owned());
        let mut req = self.http.post(self.url(true)?);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let resp = self.send(req, &upstream).await?;
        let bytes = self.body(resp).await?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| UpstreamError::Protocol(format!("response is not JSON: {e}")))?;
        Ok((bytes, openai_usage(&v)))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// `Retry-After` in seconds (or `retry-after-ms`), capped at an hour.
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = h
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        return (ms.is_finite() && ms >= 0.0).then(|| Duration::from_millis(ms.min(3.6e6) as u64));
    }
    let s = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = s.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::from_millis((secs.min(3600.0) * 1e3) as u64))
}

fn provider_message(text: &str) -> String {
    let from_json = serde_json::from_str::<Value>(text).ok().and_then(|v| {
        v.pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    from_json
        .unwrap_or_else(|| text.to_owned())
        .chars()
        .take(500)
        .collect()
}

/// A stream of OpenAI chunks from a provider.
pub struct ChunkSource {
    inner: Source,
}

enum Source {
    Sse(Box<SseSource>),
    Local(VecDeque<Value>),
}

struct SseSource {
    resp: reqwest::Response,
    parser: SseParser,
    pending: VecDeque<Value>,
    idle: Duration,
    anthropic: Option<anthropic::StreamTranslator>,
    done: bool,
}

/// One item of a chunk stream.
#[derive(Debug)]
pub enum StreamItem {
    /// An OpenAI chunk.
    Chunk(Value),
    /// The stream ended properly (`[DONE]`, `message_stop`).
    Done,
}

impl ChunkSource {
    fn sse(resp: reqwest::Response, idle: Duration, anthropic: bool) -> Self {
        ChunkSource {
            inner: Source::Sse(Box::new(SseSource {
                resp,
                parser: SseParser::default(),
                pending: VecDeque::new(),
                idle,
                anthropic: anthropic.then(|| anthropic::StreamTranslator::new(now_s())),
                done: false,
            })),
        }
    }

    /// Chunks made in process.
    pub fn local(chunks: Vec<Value>) -> Self {
        ChunkSource {
            inner: Source::Local(chunks.into()),
        }
    }

    /// The next chunk; an error when the stream broke or went silent.
    pub async fn next(&mut self) -> Result<StreamItem, UpstreamError> {
        match &mut self.inner {
            Source::Local(q) => Ok(q.pop_front().map_or(StreamItem::Done, StreamItem::Chunk)),
            Source::Sse(sse) => loop {
                let SseSource {
                    resp,
                    parser,
                    pending,
                    idle,
                    anthropic,
                    done,
                } = sse.as_mut();
                if let Some(c) = pending.pop_front() {
                    return Ok(StreamItem::Chunk(c));
                }
                if *done {
                    return Ok(StreamItem::Done);
                }
                let bytes = tokio::time::timeout(*idle, resp.chunk())
                    .await
                    .map_err(|_| UpstreamError::Timeout)?
                    .map_err(|e| UpstreamError::Connect(error_chain(&e)))?;
                let Some(bytes) = bytes else {
                    return Err(UpstreamError::Connect(
                        "stream ended without its final event".into(),
                    ));
                };
                for ev in parser.push(&bytes) {
                    if ev.data == "[DONE]" {
                        *done = true;
                        break;
                    }
                    let v: Value = serde_json::from_str(&ev.data).map_err(|e| {
                        UpstreamError::Protocol(format!("stream event is not JSON: {e}"))
                    })?;
                    match anthropic {
                        Some(t) => {
                            match t.event(ev.event.as_deref().unwrap_or(""), &v) {
                                anthropic::Translated::Chunks(cs) => pending.extend(cs),
                                anthropic::Translated::Error(m) => {
                                    return Err(UpstreamError::Connect(format!(
                                        "provider error event: {m}"
                                    )))
                                }
                            }
                            if t.finished {
                                *done = true;
                            }
                        }
                        None => {
                            if let Some(m) = v.pointer("/error/message").and_then(Value::as_str) {
                                return Err(UpstreamError::Connect(format!(
                                    "provider error event: {m}"
                                )));
                            }
                            pending.push_back(v);
                        }
                    }
                }
            },
        }
    }
}
