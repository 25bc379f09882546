//! Pieces of the OpenAI wire format the gateway reads and writes: server-sent events,
//! usage objects, token estimates.

use crate::price::Usage;
use bytes::{Bytes, BytesMut};
use serde_json::Value;

/// The last event of an OpenAI stream.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, when present (Anthropic names its events).
    pub event: Option<String>,
    /// The `data:` lines joined by newlines.
    pub data: String,
}

/// Splits a byte stream into server-sent events, across arbitrary chunk boundaries.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: BytesMut,
}

impl SseParser {
    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, sep)) = find_blank_line(&self.buf) {
            let block = self.buf.split_to(end + sep);
            if let Some(e) = parse_block(&block[..end]) {
                out.push(e);
            }
        }
        out
    }

    /// Bytes held that do not yet form a whole event.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

fn find_blank_line(b: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\n' && b[i + 1] == b'\n' {
            return Some((i, 2));
        }
        if b[i] == b'\r' && b.get(i + 1..i + 4) == Some(b"\n\r\n") {
            return Some((i, 4));
        }
        i += 1;
    }
    None
}

fn parse_block(block: &[u8]) -> Option<SseEvent> {
    let text = String::from_utf8_lossy(block);
    let mut event = None;
    let mut data: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    data.map(|data| SseEvent { event, data })
}

/// `data: <json>\n\n`.
pub fn sse_data(json: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(json.len() + 8);
    b.extend_from_slice(b"data: ");
    b.extend_from_slice(json);
    b.extend_from_slice(b"\n\n");
    b.freeze()
}

/// The usage of an OpenAI response or chunk, when it carries one.
pub fn openai_usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage")?;
    if u.is_null() {
        return None;
    }
    let n = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
    Some(Usage {
        prompt_tokens: n(u.get("prompt_tokens")),
        cached_tokens: n(u.pointer("/prompt_tokens_details/cached_tokens")),
        cache_write_tokens: n(u.pointer("/prompt_tokens_details/cache_creation_tokens")),
        completion_tokens: n(u.get("completion_tokens")),
        estimated: false,
    })
}

/// Usage as an OpenAI `usage` object. Prompt-cache writes (Anthropic's
/// `cache_creation_input_tokens`) go into `prompt_tokens_details.cache_creation_tokens`, a
/// field OpenAI does not send and its clients ignore.
pub fn usage_json(u: &Usage) -> Value {
    serde_json::json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {
            "cached_tokens": u.cached_tokens,
            "cache_creation_tokens": u.cache_write_tokens,
        },
    })
}

/// A token count estimate for text a provider did not count: one token per four bytes,
/// at least one per word (close to BPE tokenizers on English and German prose).
pub fn estimate_tokens(text: &str) -> u64 {
    let words = text.split_whitespace().count() as u64;
    (text.len() as u64).div_ceil(4).max(words)
}

/// The text of a message's `content` (a string, or the text parts of an array).
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Estimated prompt tokens of a chat request's messages (four per message for framing).
pub fn estimate_prompt_tokens(messages: &[Value]) -> u64 {
    messages
        .iter()
        .map(|m| {
            4 + m
                .get("content")
                .map_or(0, |c| estimate_tokens(&content_text(c)))
        })
        .sum()
}

/// The text delta of an OpenAI chunk.
pub fn chunk_text(v: &Value) -> Option<&str> {
    v.pointer("/choices/0/delta/content")
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_events_and_fields() {
        let mut p = SseParser::default();
        let ev = p.push(
            b"event: ping\ndata: {}\n\n: comment\n\ndata: a\ndata: b\r\n\r\ndata: [DONE]\n\n",
        );
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].event.as_deref(), Some("ping"));
        assert_eq!(ev[1].data, "a\nb");
        assert_eq!(ev[2].data, "[DONE]");
        assert_eq!(p.pending(), 0);
    }

    proptest! {
        #[test]
        fn chunk_boundaries_do_not_matter(cuts in proptest::collection::vec(0usize..120, 0..8)) {
            let text = b"data: {\"a\":1}\n\nevent: x\ndata: two words\n\ndata: [DONE]\n\n";
            let whole = SseParser::default().push(text);
            let mut p = SseParser::default();
            let mut got = Vec::new();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(text.len())).collect();
            cuts.sort_unstable();
            let mut last = 0;
            for c in cuts.into_iter().chain([text.len()]) {
                got.extend(p.push(&text[last..c]));
                last = c;
            }
            prop_assert_eq!(got, whole);
        }
    }

    #[test]
    fn usage_reads_cached_tokens() {
        let v: Value = serde_json::from_str(
            r#"{"usage":{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}"#,
        )
        .unwrap();
        let u = openai_usage(&v).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.cached_tokens, u.completion_tokens),
            (10, 4, 3)
        );
        assert!(openai_usage(&serde_json::json!({"usage": null})).is_none());
    }
}
