//! The built-in `local` provider: no network, no weights. Its one chat model,
//! `local-extractive`, is an extractive answerer. It reads the conversation's context
//! (system messages, earlier turns; numbered source blocks `[n] …` keep their numbers),
//! scores each context sentence by the question words it shares, weighted by how rare
//! each word is in the context, keeps up to three of the best that do not repeat one
//! another, and answers with them in their original order, each cited as `[n]` when it
//! came from a numbered source. With no sentence that shares a content word with the
//! question it says it does not know, in German when the question is German.
//! Deterministic: the same request gives the same answer.

use crate::price::Usage;
use crate::provider::{ChunkSource, Upstream, UpstreamError};
use crate::wire::{content_text, estimate_prompt_tokens, estimate_tokens, usage_json};
use bytes::Bytes;
// The answer path verifies this model's sentences with the same splitter, so both agree
// on where a sentence ends.
use regelkreis_eval::text::sentences;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// The model's name.
pub const MODEL: &str = "local-extractive";

/// The answer when nothing in the context overlaps the question.
pub const NO_ANSWER: &str = "I don't know from the given context.";

/// The same in German.
pub const NO_ANSWER_DE: &str = "Das geht aus den vorliegenden Quellen nicht hervor.";

/// Question words that carry no topic.
const STOP: &[&str] = &[
    "what",
    "which",
    "who",
    "whom",
    "when",
    "where",
    "why",
    "how",
    "does",
    "did",
    "the",
    "and",
    "for",
    "are",
    "was",
    "were",
    "can",
    "could",
    "you",
    "your",
    "much",
    "many",
    "there",
    "this",
    "that",
    "with",
    "from",
    "have",
    "has",
    "about",
    "tell",
    "please",
    "any",
    "our",
    "was",
    "wie",
    "wer",
    "wen",
    "wem",
    "wann",
    "warum",
    "welche",
    "welcher",
    "welches",
    "gibt",
    "der",
    "die",
    "das",
    "den",
    "dem",
    "des",
    "und",
    "ist",
    "sind",
    "ich",
    "mir",
    "mich",
    "mein",
    "meine",
    "kann",
    "können",
    "für",
    "mit",
    "von",
    "bei",
    "eine",
    "einen",
    "ein",
    // Generic words a question uses without naming what it asks about.
    "need",
    "use",
    "get",
    "available",
    "long",
    "often",
    "quickly",
    "take",
    "takes",
    "will",
    "should",
    "would",
    "their",
    "they",
    "its",
    "into",
    "also",
    "still",
    "know",
    "want",
    "like",
    "give",
    "some",
    "nordlicht",
    "lange",
    "welchen",
    "welchem",
    "innerhalb",
    "woraus",
    "besteht",
    "gilt",
    "handle",
    "handles",
    "explain",
    "describe",
    "mean",
    "means",
    "say",
    "says",
    "work",
    "works",
    "happen",
    "happens",
];

const GERMAN: &[&str] = &[
    "der", "die", "das", "ist", "wie", "was", "welche", "welcher", "wann", "wo", "wer", "kann",
    "ich", "und", "nicht", "gibt", "es", "mein", "meine", "kostet", "für", "bei",
];

/// A light stem for matching: common English and German endings cut from longer words
/// (`returns` → `return`, `kostet` → `kost`).
fn stem(w: &str) -> String {
    if w.chars().count() > 4 {
        if let Some(r) = w.strip_suffix("ies") {
            return format!("{r}y");
        }
        for suffix in ["ing", "ed", "es", "et", "en", "er", "s", "e"] {
            if let Some(r) = w.strip_suffix(suffix) {
                if r.chars().count() >= 3 {
                    // `shipping` → `shipp` → `ship`, as `ship` itself stems.
                    let b = r.as_bytes();
                    let doubled = b.len() >= 4
                        && b[b.len() - 1] == b[b.len() - 2]
                        && !matches!(
                            b[b.len() - 1],
                            b'a' | b'e' | b'i' | b'o' | b'u' | b's' | b'l'
                        );
                    return if doubled {
                        r[..r.len() - 1].to_owned()
                    } else {
                        r.to_owned()
                    };
                }
            }
        }
    }
    w.to_owned()
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 2 || w.chars().any(|c| c.is_ascii_digit()))
        .map(str::to_lowercase)
        .filter(|w| !STOP.contains(&w.as_str()))
        // Twice, so `registered` and `register` meet at `regist`.
        .map(|w| stem(&stem(&w)))
        .collect()
}

/// Share of a question's topic words (stop words left out, lightly stemmed) that occur
/// in the texts; 0 for a question with none. A grounding signal for any model's answer.
pub fn question_coverage(question: &str, texts: &[&str]) -> f64 {
    let q: HashSet<String> = words(question).into_iter().collect();
    if q.is_empty() {
        return 0.0;
    }
    let seen: HashSet<String> = texts.iter().flat_map(|t| words(t)).collect();
    q.iter().filter(|w| seen.contains(*w)).count() as f64 / q.len() as f64
}

/// Whether a question reads as German.
pub fn is_german(question: &str) -> bool {
    let n = question
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| GERMAN.contains(&w.to_lowercase().as_str()))
        .count();
    n >= 1 && !question.to_lowercase().contains(" the ")
}

/// Splits a context text into blocks, each with its source number when it starts with
/// `[n]` on a line of its own or before text.
fn blocks(text: &str) -> Vec<(Option<usize>, String)> {
    let mut out: Vec<(Option<usize>, String)> = vec![(None, String::new())];
    for line in text.lines() {
        let t = line.trim_start();
        let marker = t.strip_prefix('[').and_then(|r| {
            let close = r.find(']')?;
            r[..close]
                .trim()
                .parse::<usize>()
                .ok()
                .map(|n| (n, &r[close + 1..]))
        });
        match marker {
            Some((n, rest)) => out.push((Some(n), rest.trim().to_owned())),
            None => {
                if let Some(last) = out.last_mut() {
                    if !last.1.is_empty() {
                        last.1.push('\n');
                    }
                    last.1.push_str(line);
                }
            }
        }
    }
    out.retain(|(_, t)| !t.trim().is_empty());
    out
}

struct Candidate {
    text: String,
    /// The numbered source, when the sentence came from one.
    source: Option<usize>,
    /// Index of its block (a source, or one context message).
    block: usize,
    words: HashSet<String>,
    /// Its words and those of its source's section line: what it is about.
    about: HashSet<String>,
}

/// The section line a source may start with (`Section: Warranty › Terms`).
pub const SECTION: &str = "Section:";

/// The answer text for a chat request's messages.
pub fn answer(messages: &[Value]) -> String {
    let Some(last_user) = messages.iter().rposition(|m| m["role"] == "user") else {
        return NO_ANSWER.to_owned();
    };
    let question = content_text(&messages[last_user]["content"]);
    let abstain = if is_german(&question) {
        NO_ANSWER_DE
    } else {
        NO_ANSWER
    };
    let q: HashSet<String> = words(&question).into_iter().collect();
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut mentioned: HashSet<String> = HashSet::new();
    let mut block_no = 0;
    let context: Vec<Vec<(Option<usize>, String)>> = messages
        .iter()
        .enumerate()
        .filter(|(i, m)| *i != last_user && m["role"] != "assistant")
        .map(|(_, m)| blocks(&content_text(&m["content"])))
        .collect();
    // With numbered sources, answers come from them only: the instructions around them
    // are not facts.
    let numbered = context.iter().flatten().any(|(n, _)| n.is_some());
    for (source, block) in context.into_iter().flatten() {
        if numbered && source.is_none() {
            continue;
        }
        block_no += 1;
        // A first line `Section: …` is context: its words count as mentioned, but it
        // is never an answer.
        let (section, body): (HashSet<String>, &str) = match block.split_once('\n') {
            Some((first, rest)) if first.trim_start().starts_with(SECTION) => {
                (words(first).into_iter().collect(), rest)
            }
            _ if block.trim_start().starts_with(SECTION) => continue,
            _ => (HashSet::new(), block.as_str()),
        };
        mentioned.extend(section.iter().cloned());
        for s in sentences(body) {
            let own: HashSet<String> = words(s).into_iter().collect();
            candidates.push(Candidate {
                text: s.to_owned(),
                source,
                block: block_no,
                about: own.union(&section).cloned().collect(),
                words: own,
            });
        }
    }
    // Rare words weigh more: ln(1 + N / df).
    let mut df: HashMap<&str, usize> = HashMap::new();
    for c in &candidates {
        for w in &c.words {
            *df.entry(w.as_str()).or_default() += 1;
        }
    }
    // A question word no source mentions at all is a part of the question the sources
    // cannot answer ("What does the kettle weigh?" with no weight anywhere): decline
    // rather than answer a neighbouring question. A number is not a topic: a question that quotes a wrong figure ("still 45
    // euros?") is answered with the right one, which the verifier then checks.
    let missing = q
        .iter()
        .filter(|w| !w.chars().all(|c| c.is_ascii_digit()))
        .filter(|w| !df.contains_key(w.as_str()) && !mentioned.contains(*w))
        .count();
    if q.is_empty() || missing > 0 {
        return abstain.to_owned();
    }
    let n = candidates.len().max(1) as f64;
    let weight = |w: &str| (1.0 + n / df.get(w).copied().unwrap_or(1) as f64).ln();
    // Greedy coverage: each pick must add question words the earlier picks lack, worth at
    // least a fifth of the first pick's score (twice that from another block);
    // near-repeats of a pick are skipped.
    let mut covered: HashSet<String> = HashSet::new();
    let mut chosen: Vec<usize> = Vec::new();
    let mut top = 0.0;
    while chosen.len() < 3 {
        let best = candidates
            .iter()
            .enumerate()
            // A sentence must say something itself, not only sit in the right section.
            .filter(|(i, c)| !chosen.contains(i) && c.words.intersection(&q).next().is_some())
            .filter(|(_, c)| {
                !chosen.iter().any(|&j| {
                    let o = &candidates[j].words;
                    let inter = o.intersection(&c.words).count() as f64;
                    let union = o.union(&c.words).count().max(1) as f64;
                    inter / union > 0.6
                })
            })
            .map(|(i, c)| {
                let gain: f64 = c
                    .about
                    .intersection(&q)
                    .filter(|w| !covered.contains(*w))
                    .map(|w| weight(w))
                    .sum();
                // Later picks from another block must be worth twice as much.
                let local =
                    chosen.is_empty() || chosen.iter().any(|&j| candidates[j].block == c.block);
                (if local { gain } else { gain / 2.0 }, i)
            })
            .filter(|(g, _)| *g > 0.0)
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
        let Some((gain, i)) = best else { break };
        if chosen.is_empty() {
            top = gain;
        } else if gain < top / 5.0 {
            break;
        }
        covered.extend(candidates[i].about.intersection(&q).cloned());
        chosen.push(i);
    }
    if chosen.is_empty() {
        return abstain.to_owned();
    }
    chosen.sort_unstable();
    chosen
        .into_iter()
        .map(|i| {
            let c = &candidates[i];
            match c.source {
                Some(n) => cite(&c.text, n),
                None => c.text.clone(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Returns are free [2].` from `Returns are free.` and 2.
fn cite(sentence: &str, n: usize) -> String {
    match sentence.char_indices().last() {
        Some((i, c)) if matches!(c, '.' | '!' | '?') => {
            format!("{} [{n}]{c}", sentence[..i].trim_end())
        }
        _ => format!("{sentence} [{n}]"),
    }
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
        // The kettle is in the context, its weight is not: decline.
        let part = vec![
            json!({"role": "system", "content": "The Aurora kettle costs 49 euros."}),
            json!({"role": "user", "content": "How much does the Aurora kettle weigh?"}),
        ];
        assert_eq!(answer(&part), NO_ANSWER);
        let de = vec![json!({"role": "user", "content": "Wie spät ist es auf dem Mars?"})];
        assert_eq!(answer(&de), NO_ANSWER_DE);
        assert_eq!(answer(&[]), NO_ANSWER);
    }

    #[test]
    fn numbered_sources_are_cited_and_repeats_skipped() {
        let msgs = vec![
            json!({"role": "system", "content": "Answer from the sources."}),
            json!({"role": "user", "content": "Sources:\n[1] Section: Aurora kettle\nThe Aurora kettle costs 49 euros. It holds 1.7 litres. Returns of the kettle are free within 30 days.\n[2] The Aurora kettle costs 49 euros in every shop.\n[3] Section: Toaster\nThe Polar toaster costs 59 euros."}),
            json!({"role": "user", "content": "What does the Aurora kettle cost, and can I return it?"}),
        ];
        let a = answer(&msgs);
        assert!(a.contains("costs 49 euros [1]."), "{a}");
        assert!(
            a.contains("Returns of the kettle are free within 30 days [1]."),
            "{a}"
        );
        assert!(!a.contains("[2]"), "the near-duplicate is skipped: {a}");
        assert!(
            !a.contains("Polar"),
            "another product's price is not an answer: {a}"
        );
        assert!(
            !a.contains("Section"),
            "section lines are context, never answers: {a}"
        );
    }
}
