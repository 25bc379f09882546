//! The built-in `local` provider: no network, no weights. Its one chat model,
//! `local-extractive`, is an extractive answerer: it picks, from the conversation's context
//! (system messages and earlier turns), the sentences that share the most words with the
//! last user message, and answers with them in their original order. With no context that
//! overlaps, it says so. Deterministic: the same request gives the same answer.

use crate::price::Usage;
use crate::provider::{ChunkSource, Upstream, UpstreamError};
use crate::wire::{content_text, estimate_prompt_tokens, estimate_tokens, usage_json};
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashSet;

/// The model's name.
pub const MODEL: &str = "local-extractive";

/// The answer when nothing in the context overlaps the question.
pub const NO_ANSWER: &str = "I don't know from the given context.";

fn words(s: &str) -> HashSet<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 2)
        .map(str::to_lowercase)
        .collect()
}

fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = text.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        let end = matches!(c, b'.' | b'!' | b'?')
            && b.get(i + 1).is_none_or(|n| n.is_ascii_whitespace())
            || c == b'\n';
        if end {
            let s = text[start..=i].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = i + 1;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The answer text for a chat request's messages.
pub fn answer(messages: &[Value]) -> String {
    let Some(last_user) = messages.iter().rposition(|m| m["role"] == "user") else {
        return NO_ANSWER.to_owned();
    };
    let question = content_text(&messages[last_user]["content"]);
    let q = words(&question);
    let context: Vec<String> = messages
        .iter()
        .enumerate()
        .filter(|(i, m)| *i != last_user && m["role"] != "assistant")
        .map(|(_, m)| content_text(&m["content"]))
        .collect();
    let mut scored: Vec<(usize, usize, &str)> = Vec::new();
    let mut n = 0;
    for c in &context {
        for s in sentences(c) {
            let overlap = words(s).intersection(&q).count();
            if overlap > 0 {
                scored.push((overlap, n, s));
            }
            n += 1;
        }
    }
    if scored.is_empty() {
        return NO_ANSWER.to_owned();
    }
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut best: Vec<(usize, &str)> = scored.iter().take(2).map(|&(_, i, s)| (i, s)).collect();
    best.sort_unstable();
    best.into_iter()
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(" ")
}

fn created() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A chat completion from the local provider.
pub fn chat(body: &Value, model: &str, stream: bool) -> Result<Upstream, UpstreamError> {
    if model != MODEL {
        return Err(UpstreamError::Client {
            status: 404,
            message: format!("the local provider has no model {model:?}; it has {MODEL:?}"),
        });
    }
    let messages = body["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let text = answer(messages);
    let usage = Usage {
        prompt_tokens: estimate_prompt_tokens(messages),
        completion_tokens: estimate_tokens(&text),
        ..Usage::default()
    };
    let id = format!("chatcmpl-local-{:016x}", fxhash(text.as_bytes()));
    let created = created();
    if !stream {
        let v = json!({
            "id": id, "object": "chat.completion", "created": created, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage_json(&usage),
        });
        return Ok(Upstream::Complete {
            body: Bytes::from(v.to_string()),
            usage: Some(usage),
        });
    }
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": MODEL,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    let mut piece = String::new();
    for w in text.split_inclusive(' ') {
        piece.push_str(w);
        if piece.len() >= 16 {
            chunks.push(chunk(
                json!({ "content": std::mem::take(&mut piece) }),
                None,
            ));
        }
    }
    if !piece.is_empty() {
        chunks.push(chunk(json!({ "content": piece }), None));
    }
    chunks.push(chunk(json!({}), Some("stop")));
    let mut last = chunk(json!({}), None);
    last["choices"] = json!([]);
    last["usage"] = usage_json(&usage);
    chunks.push(last);
    Ok(Upstream::Stream(ChunkSource::local(chunks)))
}

fn fxhash(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_context_sentences_in_order() {
        let msgs = vec![
            json!({"role": "system", "content": "The Aurora kettle costs 49 euros. It ships in blue. Returns take 30 days."}),
            json!({"role": "user", "content": "How much does the Aurora kettle cost?"}),
        ];
        assert_eq!(answer(&msgs), "The Aurora kettle costs 49 euros.");
        let none = vec![
            json!({"role": "system", "content": "Returns take 30 days."}),
            json!({"role": "user", "content": "What colour is the sky?"}),
        ];
        assert_eq!(answer(&none), NO_ANSWER);
        assert_eq!(answer(&[]), NO_ANSWER);
    }
}
