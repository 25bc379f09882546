//! Translation between OpenAI chat completions and Anthropic's Messages API, both ways,
//! streaming included.

use crate::price::Usage;
use crate::wire::content_text;
use serde_json::{json, Map, Value};

/// Default `max_tokens` when an OpenAI request names none (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// An OpenAI chat request as a Messages API request for `model`.
pub fn request(body: &Value, model: &str, stream: bool) -> Result<Value, String> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages must be an array")?;
    let mut system = Vec::new();
    let mut out: Vec<Value> = Vec::new();
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let text = content_text(m.get("content").unwrap_or(&Value::Null));
        match role {
            "system" | "developer" => system.push(text),
            "user" | "assistant" => {
                // Anthropic wants alternating turns: merge consecutive turns of one role.
                match out.last_mut() {
                    Some(last) if last["role"] == role => {
                        let joined =
                            format!("{}\n\n{}", last["content"].as_str().unwrap_or(""), text);
                        last["content"] = Value::String(joined);
                    }
                    _ => out.push(json!({ "role": role, "content": text })),
                }
            }
            "tool" | "function" => {
                return Err("tool messages are not translated to Anthropic yet".into());
            }
            other => return Err(format!("unknown message role {other:?}")),
        }
    }
    let mut req = Map::new();
    req.insert("model".into(), model.into());
    req.insert("messages".into(), out.into());
    if !system.is_empty() {
        req.insert("system".into(), system.join("\n\n").into());
    }
    let max = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    req.insert("max_tokens".into(), max.into());
    for k in ["temperature", "top_p"] {
        if let Some(v) = body.get(k) {
            req.insert(k.into(), v.clone());
        }
    }
    match body.get("stop") {
        Some(Value::String(s)) => {
            req.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            req.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if stream {
        req.insert("stream".into(), true.into());
    }
    Ok(Value::Object(req))
}

/// Anthropic's stop reason as OpenAI's finish reason.
pub fn finish_reason(stop: Option<&str>) -> &'static str {
    match stop {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Anthropic usage as the gateway's usage (prompt tokens include cache reads and writes).
pub fn usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cached = n("cache_read_input_tokens");
    let writes = n("cache_creation_input_tokens");
    Usage {
        prompt_tokens: n("input_tokens") + cached + writes,
        cached_tokens: cached,
        cache_write_tokens: writes,
        completion_tokens: n("output_tokens"),
        estimated: false,
    }
}

/// A Messages API response as an OpenAI chat completion.
pub fn response(v: &Value, created: u64) -> (Value, Usage) {
    let text: String = v
        .get("content")
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let u = usage(v.get("usage").unwrap_or(&Value::Null));
    let body = json!({
        "id": format!("chatcmpl-{}", v.get("id").and_then(Value::as_str).unwrap_or("anthropic")),
        "object": "chat.completion",
        "created": created,
        "model": v.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": text },
            "finish_reason": finish_reason(v.get("stop_reason").and_then(Value::as_str)),
        }],
        "usage": crate::wire::usage_json(&u),
    });
    (body, u)
}

/// Turns Anthropic stream events into OpenAI chunks.
#[derive(Debug, Default)]
pub struct StreamTranslator {
    id: String,
    model: String,
    created: u64,
    usage: Usage,
    /// Set once `message_stop` arrived.
    pub finished: bool,
}

/// What one Anthropic event became.
#[derive(Debug)]
pub enum Translated {
    /// OpenAI chunks to forward.
    Chunks(Vec<Value>),
    /// The provider reported an error inside the stream.
    Error(String),
}

impl StreamTranslator {
    /// A translator for a stream started at `created`.
    pub fn new(created: u64) -> Self {
        StreamTranslator {
            created,
            ..Self::default()
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        })
    }

    /// The usage seen so far (final after `message_stop`).
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Translates one event (`event:` name and parsed data).
    pub fn event(&mut self, name: &str, data: &Value) -> Translated {
        let kind = data.get("type").and_then(Value::as_str).unwrap_or(name);
        match kind {
            "message_start" => {
                let m = &data["message"];
                self.id = format!("chatcmpl-{}", m["id"].as_str().unwrap_or("anthropic"));
                self.model = m["model"].as_str().unwrap_or("").to_owned();
                self.usage = usage(&m["usage"]);
                Translated::Chunks(vec![
                    self.chunk(json!({ "role": "assistant", "content": "" }), None)
                ])
            }
            "content_block_delta" => match data.pointer("/delta/text").and_then(Value::as_str) {
                Some(t) => Translated::Chunks(vec![self.chunk(json!({ "content": t }), None)]),
                None => Translated::Chunks(Vec::new()),
            },
            "message_delta" => {
                if let Some(u) = data.get("usage") {
                    let late = usage(u);
                    self.usage.completion_tokens = late.completion_tokens;
                    // Newer API versions repeat the input counts here.
                    if late.prompt_tokens > 0 {
                        self.usage.prompt_tokens = late.prompt_tokens;
                        self.usage.cached_tokens = late.cached_tokens;
                        self.usage.cache_write_tokens = late.cache_write_tokens;
                    }
                }
                let reason =
                    finish_reason(data.pointer("/delta/stop_reason").and_then(Value::as_str));
                Translated::Chunks(vec![self.chunk(json!({}), Some(reason))])
            }
            "message_stop" => {
                self.finished = true;
                let mut c = self.chunk(json!({}), None);
                c["choices"] = json!([]);
                c["usage"] = crate::wire::usage_json(&self.usage);
                Translated::Chunks(vec![c])
            }
            "error" => Translated::Error(
                data.pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("error event from Anthropic")
                    .to_owned(),
            ),
            _ => Translated::Chunks(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_moves_system_out_and_merges_turns() {
        let body = json!({
            "model": "x",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "user", "content": [{"type": "text", "text": "there"}]},
            ],
            "max_tokens": 50, "temperature": 0.2, "stop": "END"
        });
        let r = request(&body, "claude-haiku-4-5", true).unwrap();
        assert_eq!(r["system"], "Be brief.");
        assert_eq!(r["messages"].as_array().unwrap().len(), 1);
        assert_eq!(r["messages"][0]["content"], "Hi\n\nthere");
        assert_eq!(r["max_tokens"], 50);
        assert_eq!(r["stop_sequences"], json!(["END"]));
        assert_eq!(r["stream"], true);
        assert!(request(
            &json!({"messages": [{"role": "tool", "content": "x"}]}),
            "m",
            false
        )
        .is_err());
    }

    #[test]
    fn stream_translation_carries_text_and_usage() {
        let mut t = StreamTranslator::new(7);
        let ev = |v: Value| v;
        let mut text = String::new();
        for e in [
            ev(
                json!({"type":"message_start","message":{"id":"msg_1","model":"claude","usage":{"input_tokens":12,"cache_read_input_tokens":5,"output_tokens":1}}}),
            ),
            ev(
                json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
            ),
            ev(
                json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}),
            ),
            ev(
                json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" world"}}),
            ),
            ev(
                json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}),
            ),
            ev(json!({"type":"message_stop"})),
        ] {
            if let Translated::Chunks(cs) = t.event("", &e) {
                for c in cs {
                    if let Some(s) = crate::wire::chunk_text(&c) {
                        text.push_str(s);
                    }
                }
            }
        }
        assert_eq!(text, "Hello world");
        assert!(t.finished);
        let u = t.usage();
        assert_eq!(
            (u.prompt_tokens, u.cached_tokens, u.completion_tokens),
            (17, 5, 9)
        );
    }
}
