//! A mock provider for tests and benchmarks: an axum app speaking OpenAI's chat
//! completions and embeddings and Anthropic's Messages API, streaming included, with
//! configurable latency, scripted faults and deterministic usage. It logs the usage of
//! every answer it completed, so tests can recompute costs independently of the gateway.
//!
//! Answers and usage depend only on the request: the prompt counts one token per
//! whitespace-separated word plus two per message; the completion is a run of words picked
//! by a hash of the messages (at most `max_tokens`); a hash-chosen part of the prompt is
//! reported as cached.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use regelkreis_gateway::price::Usage;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A scripted fault for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer with this status (and `Retry-After` seconds, when given).
    Status {
        /// The status.
        status: u16,
        /// `Retry-After` in seconds.
        #[serde(default)]
        retry_after_s: Option<u64>,
    },
    /// Wait this long before answering normally.
    Delay {
        /// Milliseconds.
        ms: u64,
    },
    /// Send the head, then break the connection.
    Reset,
    /// Stream this many chunks, then break the connection.
    CutStream {
        /// Chunks sent before the cut.
        after: usize,
    },
}

/// One completed answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Served {
    /// `openai` or `anthropic`.
    pub protocol: &'static str,
    /// The model asked for.
    pub model: String,
    /// Usage reported.
    pub usage: Usage,
    /// Streamed.
    pub stream: bool,
}

/// The mock's shared state.
#[derive(Debug, Default)]
pub struct MockState {
    faults: Mutex<HashMap<String, VecDeque<Fault>>>,
    latency_us: AtomicU64,
    chunk_delay_us: AtomicU64,
    calls: AtomicU64,
    served: Mutex<Vec<Served>>,
    keep_log: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MockState {
    /// New state that logs every answer.
    pub fn new() -> Arc<Self> {
        let s = MockState::default();
        s.keep_log.store(true, Ordering::Relaxed);
        Arc::new(s)
    }

    /// Queues faults for requests naming `model` (`*` for any model).
    pub fn push_faults(&self, model: &str, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.faults)
            .entry(model.to_owned())
            .or_default()
            .extend(faults);
    }

    /// Adds a fixed delay before every answer.
    pub fn set_latency(&self, d: Duration) {
        self.latency_us
            .store(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Adds a delay between stream chunks.
    pub fn set_chunk_delay(&self, d: Duration) {
        self.chunk_delay_us
            .store(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Whether to log answers (off for long benchmarks).
    pub fn set_logging(&self, on: bool) {
        self.keep_log.store(on, Ordering::Relaxed);
    }

    /// Requests received (faulted ones included).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Answers completed so far.
    pub fn served(&self) -> Vec<Served> {
        lock(&self.served).clone()
    }

    fn next_fault(&self, model: &str) -> Option<Fault> {
        let mut f = lock(&self.faults);
        for k in [model, "*"] {
            if let Some(q) = f.get_mut(k) {
                if let Some(x) = q.pop_front() {
                    return Some(x);
                }
            }
        }
        None
    }

    fn log(&self, s: Served) {
        if self.keep_log.load(Ordering::Relaxed) {
            lock(&self.served).push(s);
        }
    }
}

/// The mock's routes: `/v1/chat/completions`, `/v1/embeddings`, `/v1/messages`,
/// `/v1/models`, and `POST /mock/faults`, `GET /mock/served` for scripts.
pub fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai_chat))
        .route("/v1/messages", post(anthropic_messages))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/mock/faults", post(faults))
        .route("/mock/served", get(served))
        .with_state(state)
}

/// Serves the mock on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<MockState>,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(state)).await
}

#[derive(Deserialize)]
struct FaultBody {
    model: String,
    faults: Vec<Fault>,
}

async fn faults(State(s): State<Arc<MockState>>, Json(b): Json<FaultBody>) -> StatusCode {
    s.push_faults(&b.model, b.faults);
    StatusCode::NO_CONTENT
}

async fn served(State(s): State<Arc<MockState>>) -> Json<Vec<Served>> {
    Json(s.served())
}

async fn models() -> Json<Value> {
    Json(
        json!({"object": "list", "data": [{"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock"}]}),
    )
}

const WORDS: [&str; 16] = [
    "the",
    "campaign",
    "reached",
    "new",
    "customers",
    "with",
    "clear",
    "offers",
    "and",
    "measured",
    "results",
    "across",
    "every",
    "channel",
    "this",
    "week",
];

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// What the mock answers to a conversation.
struct Answer {
    words: Vec<&'static str>,
    usage: Usage,
}

fn text_of(v: &Value) -> String {
    regelkreis_gateway::wire::content_text(v)
}

fn answer(system: &str, messages: &[Value], max_tokens: Option<u64>) -> Answer {
    let mut all = system.to_owned();
    let mut prompt = system.split_whitespace().count() as u64 + u64::from(!system.is_empty()) * 2;
    for m in messages {
        let t = text_of(&m["content"]);
        prompt += t.split_whitespace().count() as u64 + 2;
        all.push_str(m["role"].as_str().unwrap_or(""));
        all.push_str(&t);
    }
    let h = fnv(all.as_bytes());
    let n = (5 + h % 20).min(max_tokens.unwrap_or(u64::MAX)).max(1);
    let words = (0..n)
        .map(|i| WORDS[((h >> (i % 48)) as usize + i as usize) % WORDS.len()])
        .collect();
    let cached = if prompt >= 8 {
        (h >> 16) % (prompt / 2)
    } else {
        0
    };
    let writes = ((h >> 32) % 3).min(prompt - cached);
    Answer {
        words,
        usage: Usage {
            prompt_tokens: prompt,
            cached_tokens: cached,
            cache_write_tokens: writes,
            completion_tokens: n,
            estimated: false,
        },
    }
}

/// Applies the scripted fault, if any: `Err` is the response to send instead.
async fn before(s: &MockState, model: &str) -> Result<Option<Fault>, Response> {
    s.calls.fetch_add(1, Ordering::Relaxed);
    let latency = s.latency_us.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_micros(latency)).await;
    }
    match s.next_fault(model) {
        Some(Fault::Status {
            status,
            retry_after_s,
        }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut h = HeaderMap::new();
            if let Some(r) = retry_after_s {
                if let Ok(v) = r.to_string().parse() {
                    h.insert("retry-after", v);
                }
            }
            let body =
                json!({"error": {"message": format!("mock fault {status}"), "type": "mock_error"}});
            Err((code, h, Json(body)).into_response())
        }
        Some(Fault::Delay { ms }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(None)
        }
        Some(Fault::Reset) => {
            let s = futures_util::stream::once(async {
                Err::<Bytes, _>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "mock reset",
                ))
            });
            Err(Response::builder()
                .header("content-type", "application/json")
                .body(Body::from_stream(s))
                .unwrap_or_default())
        }
        other => Ok(other),
    }
}

fn sse_response(events: Vec<Bytes>, cut_after: Option<usize>, delay_us: u64) -> Response {
    let stream = futures_util::stream::unfold(
        (events.into_iter(), 0usize),
        move |(mut it, i)| async move {
            if cut_after == Some(i) {
                // Let what was sent leave the server's buffer first: a cut mid-way means
                // the client got the beginning.
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                return Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "mock cut",
                    )),
                    (it, usize::MAX - 1),
                ));
            }
            if i == usize::MAX - 1 {
                return None;
            }
            let b = it.next()?;
            if delay_us > 0 && i > 0 {
                tokio::time::sleep(Duration::from_micros(delay_us)).await;
            }
            Some((Ok::<Bytes, std::io::Error>(b), (it, i + 1)))
        },
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

fn bad(msg: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"message": msg, "type": "invalid_request_error"}})),
    )
        .into_response()
}

async fn openai_chat(State(s): State<Arc<MockState>>, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let Some(messages) = body["messages"].as_array() else {
        return bad("messages must be an array");
    };
    let fault = match before(&s, &model).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let max = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64);
    let a = answer("", messages, max);
    let stream = body["stream"].as_bool().unwrap_or(false);
    let id = format!("chatcmpl-mock{:x}", fnv(model.as_bytes()));
    let usage = json!({
        "prompt_tokens": a.usage.prompt_tokens,
        "completion_tokens": a.usage.completion_tokens,
        "total_tokens": a.usage.prompt_tokens + a.usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": a.usage.cached_tokens},
    });
    // OpenAI reports no cache writes.
    let logged = Usage {
        cache_write_tokens: 0,
        ..a.usage
    };
    if !stream {
        s.log(Served {
            protocol: "openai",
            model: model.clone(),
            usage: logged,
            stream,
        });
        return Json(json!({
            "id": id, "object": "chat.completion", "created": 1_700_000_000u64, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": a.words.join(" ")}, "finish_reason": "stop"}],
            "usage": usage,
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Option<&str>| {
        let c = json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000u64, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        regelkreis_gateway::wire::sse_data(c.to_string().as_bytes())
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for (i, w) in a.words.iter().enumerate() {
        let piece = if i == 0 {
            (*w).to_owned()
        } else {
            format!(" {w}")
        };
        events.push(chunk(json!({ "content": piece }), None));
    }
    events.push(chunk(json!({}), Some("stop")));
    if body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true)
    {
        let c = json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000u64, "model": model,
                       "choices": [], "usage": usage});
        events.push(regelkreis_gateway::wire::sse_data(c.to_string().as_bytes()));
    }
    events.push(Bytes::from_static(regelkreis_gateway::wire::DONE));
    let cut = match fault {
        Some(Fault::CutStream { after }) => Some(after),
        _ => {
            s.log(Served {
                protocol: "openai",
                model: model.clone(),
                usage: logged,
                stream,
            });
            None
        }
    };
    sse_response(events, cut, s.chunk_delay_us.load(Ordering::Relaxed))
}

async fn anthropic_messages(State(s): State<Arc<MockState>>, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let Some(messages) = body["messages"].as_array() else {
        return bad("messages must be an array");
    };
    let Some(max) = body["max_tokens"].as_u64() else {
        return bad("max_tokens: Field required");
    };
    let fault = match before(&s, &model).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let system = body["system"].as_str().unwrap_or("");
    let a = answer(system, messages, Some(max));
    let u = a.usage;
    let input = u.prompt_tokens - u.cached_tokens - u.cache_write_tokens;
    let stream = body["stream"].as_bool().unwrap_or(false);
    let id = format!("msg_mock{:x}", fnv(model.as_bytes()));
    if !stream {
        s.log(Served {
            protocol: "anthropic",
            model: model.clone(),
            usage: u,
            stream,
        });
        return Json(json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": a.words.join(" ")}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": u.completion_tokens,
                      "cache_read_input_tokens": u.cached_tokens, "cache_creation_input_tokens": u.cache_write_tokens},
        }))
        .into_response();
    }
    let ev = |name: &str, data: Value| Bytes::from(format!("event: {name}\ndata: {data}\n\n"));
    let mut events = vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "usage": {"input_tokens": input, "output_tokens": 1, "cache_read_input_tokens": u.cached_tokens, "cache_creation_input_tokens": u.cache_write_tokens}}}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ev("ping", json!({"type": "ping"})),
    ];
    for (i, w) in a.words.iter().enumerate() {
        let piece = if i == 0 {
            (*w).to_owned()
        } else {
            format!(" {w}")
        };
        events.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})));
    }
    events.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": u.completion_tokens}})));
    events.push(ev("message_stop", json!({"type": "message_stop"})));
    let cut = match fault {
        Some(Fault::CutStream { after }) => Some(after),
        _ => {
            s.log(Served {
                protocol: "anthropic",
                model: model.clone(),
                usage: u,
                stream,
            });
            None
        }
    };
    sse_response(events, cut, s.chunk_delay_us.load(Ordering::Relaxed))
}

async fn embeddings(State(s): State<Arc<MockState>>, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let inputs: Vec<String> = match &body["input"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_owned())
            .collect(),
        _ => return bad("input must be a string or an array"),
    };
    if let Err(r) = before(&s, &model).await {
        return r;
    }
    let tokens: u64 = inputs
        .iter()
        .map(|t| t.split_whitespace().count() as u64)
        .sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let h = fnv(t.as_bytes());
            let v: Vec<f32> = (0..8)
                .map(|k| ((h >> (k * 8)) & 0xff) as f32 / 255.0)
                .collect();
            json!({"object": "embedding", "index": i, "embedding": v})
        })
        .collect();
    s.log(Served {
        protocol: "openai",
        model: model.clone(),
        usage: Usage {
            prompt_tokens: tokens,
            ..Usage::default()
        },
        stream: false,
    });
    Json(json!({"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}))
    .into_response()
}
