//! Redaction of findings: masks, per-tenant pseudonyms, and a per-request
//! vault that restores originals, also across streamed chunks.

use crate::pii::{EntityType, Finding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// How findings are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// `<EMAIL_1>`, numbered per distinct value within one text.
    #[default]
    Mask,
    /// `<EMAIL_3f9a2c1b>`: a keyed hash of the value, the same for a tenant
    /// across requests, so redacted documents and questions still match.
    Pseudonym,
}

/// Originals behind the tokens of one redaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vault {
    originals: HashMap<String, String>,
    longest: usize,
}

/// A redacted text with its vault.
#[derive(Debug, Clone)]
pub struct Redacted {
    /// The text with every finding replaced by its token.
    pub text: String,
    /// Token → original, for restoration in the response.
    pub vault: Vault,
    /// Each replacement as (byte range in the input, byte range of its token in `text`),
    /// in order, so offsets into the input can be carried over to the redacted text.
    pub replacements: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

impl Redacted {
    /// Where byte offset `at` of the input lands in the redacted text. An offset inside
    /// a replaced span lands at the start of its token when `start` is set (the
    /// beginning of a range), else at its end.
    pub fn map_offset(&self, at: usize, start: bool) -> usize {
        let mut shift: isize = 0;
        for (from, to) in &self.replacements {
            if at < from.start || (at == from.start && start) {
                break;
            }
            if at < from.end {
                return if start { to.start } else { to.end };
            }
            shift = to.end as isize - from.end as isize;
        }
        (at as isize + shift) as usize
    }
}

/// Every `<…>` in `text` with no `<` inside, as written.
fn token_shaped(text: &str) -> std::collections::HashSet<&str> {
    let mut out = std::collections::HashSet::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(open) = rest.find('<') {
        let tail = &rest[open..];
        match tail[1..].find(['<', '>']) {
            Some(i) if tail.as_bytes()[i + 1] == b'>' => {
                out.insert(&text[offset + open..offset + open + i + 2]);
                offset += open + i + 2;
                rest = &text[offset..];
            }
            Some(i) => {
                offset += open + 1 + i;
                rest = &text[offset..];
            }
            None => break,
        }
    }
    out
}

/// HMAC-SHA-256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Replaces `findings` (byte spans into `text`, sorted, non-overlapping) with tokens.
/// `key` keys the pseudonyms (a per-tenant secret); it is unused for masks.
pub fn redact(text: &str, findings: &[Finding], mode: Mode, key: &[u8]) -> Redacted {
    // Token-shaped strings already in the text, read once: a new token must not be one
    // of them (restoration would turn the literal into a value). Checking the whole text
    // per new token instead would be quadratic on long documents.
    let present = token_shaped(text);
    let mut out = String::with_capacity(text.len());
    let mut vault = Vault::default();
    let mut by_value: HashMap<(EntityType, &str), String> = HashMap::new();
    let mut counters: HashMap<EntityType, usize> = HashMap::new();
    let mut last = 0;
    let mut replacements = Vec::with_capacity(findings.len());
    for f in findings {
        if f.start < last
            || f.end > text.len()
            || !text.is_char_boundary(f.start)
            || !text.is_char_boundary(f.end)
        {
            continue;
        }
        let value = &text[f.start..f.end];
        let token = by_value
            .entry((f.entity, value))
            .or_insert_with(|| {
                let token = match mode {
                    Mode::Mask => loop {
                        let n = counters.entry(f.entity).or_insert(0);
                        *n += 1;
                        let t = format!("<{}_{}>", f.entity, n);
                        if !present.contains(t.as_str()) {
                            break t;
                        }
                    },
                    Mode::Pseudonym => {
                        let mac =
                            hmac_sha256(key, format!("{}\u{0}{}", f.entity, value).as_bytes());
                        let hex = hex::encode(mac);
                        // Lengthen the token in the unlikely case the text already holds it.
                        (8..=64)
                            .step_by(8)
                            .map(|n| format!("<{}_{}>", f.entity, &hex[..n]))
                            .find(|t| {
                                !present.contains(t.as_str())
                                    && vault.originals.get(t).is_none_or(|o| o == value)
                            })
                            .unwrap_or_else(|| format!("<{}_{}>", f.entity, hex))
                    }
                };
                vault.longest = vault.longest.max(token.len());
                vault.originals.insert(token.clone(), value.to_string());
                token
            })
            .clone();
        out.push_str(&text[last..f.start]);
        let at = out.len();
        out.push_str(&token);
        replacements.push((f.start..f.end, at..out.len()));
        last = f.end;
    }
    out.push_str(&text[last..]);
    Redacted {
        text: out,
        vault,
        replacements,
    }
}

impl Vault {
    /// Number of distinct tokens.
    pub fn len(&self) -> usize {
        self.originals.len()
    }

    /// Whether nothing was redacted.
    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }

    /// The original behind one token.
    pub fn original(&self, token: &str) -> Option<&str> {
        self.originals.get(token).map(String::as_str)
    }

    /// Replaces every known token in `text` by its original.
    pub fn restore(&self, text: &str) -> String {
        if self.originals.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            let close = tail
                .char_indices()
                .take_while(|(i, _)| *i < self.longest)
                .find(|(_, c)| *c == '>');
            match close.and_then(|(i, _)| self.originals.get(&tail[..=i]).map(|o| (i, o))) {
                Some((i, original)) => {
                    out.push_str(original);
                    rest = &tail[i + 1..];
                }
                None => {
                    out.push('<');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// A restorer for streamed output: tokens split across chunks are held
    /// back until they are complete.
    pub fn stream(&self) -> StreamRestorer<&Vault> {
        StreamRestorer::new(self)
    }
}

/// Restores tokens in a stream of chunks; see [`Vault::stream`]. `V` is a borrowed or
/// shared vault (`&Vault`, `Arc<Vault>`), so a restorer can live inside a response stream.
#[derive(Debug)]
pub struct StreamRestorer<V: std::ops::Deref<Target = Vault>> {
    vault: V,
    pending: String,
}

impl<V: std::ops::Deref<Target = Vault>> StreamRestorer<V> {
    /// A restorer over `vault`.
    pub fn new(vault: V) -> Self {
        StreamRestorer {
            vault,
            pending: String::new(),
        }
    }

    /// Feeds one chunk; returns the restored text that is safe to emit now.
    pub fn push(&mut self, chunk: &str) -> String {
        self.pending.push_str(chunk);
        // Hold back from the last '<' that may still grow into a token.
        let hold = self.pending.rfind('<').filter(|&i| {
            let tail = &self.pending[i..];
            !tail.contains('>') && tail.len() < self.vault.longest
        });
        let cut = hold.unwrap_or(self.pending.len());
        let ready: String = self.pending.drain(..cut).collect();
        self.vault.restore(&ready)
    }

    /// Flushes whatever is held back at the end of the stream.
    pub fn finish(mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        self.vault.restore(&rest)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn offsets_carry_over_to_the_redacted_text() {
        let text = "Mail anna@example.com or call +49 30 1234567 today.";
        let a = text.find("anna").unwrap_or(0);
        let p = text.find("+49").unwrap_or(0);
        let findings = [
            Finding {
                entity: EntityType::Email,
                start: a,
                end: a + 16,
                score: 1.0,
            },
            Finding {
                entity: EntityType::Phone,
                start: p,
                end: p + 14,
                score: 1.0,
            },
        ];
        let r = redact(text, &findings, Mode::Mask, b"");
        assert_eq!(r.text, "Mail <EMAIL_1> or call <PHONE_1> today.");
        let today = text.find("today").unwrap_or(0);
        assert_eq!(&r.text[r.map_offset(today, true)..], "today.");
        assert_eq!(r.map_offset(0, true), 0);
        assert_eq!(r.map_offset(text.len(), false), r.text.len());
        // A range that begins inside a replaced value starts at its token.
        assert_eq!(r.map_offset(a + 3, true), 5);
        assert_eq!(r.map_offset(a + 3, false), 5 + "<EMAIL_1>".len());
        assert_eq!(
            &r.text[r.map_offset(a, true)..r.map_offset(a + 16, false)],
            "<EMAIL_1>"
        );
    }

    use super::*;
    use crate::pii::Detector;
    use proptest::prelude::*;

    fn detector() -> &'static Detector {
        static D: std::sync::OnceLock<Detector> = std::sync::OnceLock::new();
        D.get_or_init(|| Detector::new().unwrap())
    }

    #[test]
    fn masks_number_distinct_values() {
        let t = "a@example.com, b@example.com, again a@example.com";
        let r = redact(t, &detector().detect(t), Mode::Mask, b"");
        assert_eq!(r.text, "<EMAIL_1>, <EMAIL_2>, again <EMAIL_1>");
        assert_eq!(r.vault.restore(&r.text), t);
    }

    #[test]
    fn pseudonyms_are_stable_per_key_and_differ_across_keys() {
        let t = "Mail anna@example.de";
        let a = redact(t, &detector().detect(t), Mode::Pseudonym, b"tenant-a");
        let a2 = redact(
            "anna@example.de!",
            &detector().detect("anna@example.de!"),
            Mode::Pseudonym,
            b"tenant-a",
        );
        let b = redact(t, &detector().detect(t), Mode::Pseudonym, b"tenant-b");
        assert!(a.text.starts_with("Mail <EMAIL_"));
        assert_eq!(
            a.text.trim_start_matches("Mail "),
            a2.text.trim_end_matches('!')
        );
        assert_ne!(a.text, b.text);
    }

    #[test]
    fn text_that_already_holds_a_token_is_not_confused() {
        let t = "literal <EMAIL_1> and x@example.com";
        let r = redact(t, &detector().detect(t), Mode::Mask, b"");
        assert_eq!(r.text, "literal <EMAIL_1> and <EMAIL_2>");
        assert_eq!(r.vault.restore(&r.text), t);
    }

    #[test]
    fn streamed_restoration_handles_split_tokens() {
        let t = "Schreiben Sie an anna@example.de oder +49 30 1234567.";
        let r = redact(t, &detector().detect(t), Mode::Mask, b"");
        for size in 1..8 {
            let mut s = r.vault.stream();
            let mut out = String::new();
            let chars: Vec<char> = r.text.chars().collect();
            for chunk in chars.chunks(size) {
                out.push_str(&s.push(&chunk.iter().collect::<String>()));
            }
            out.push_str(&s.finish());
            assert_eq!(out, t, "chunk size {size}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn no_detector_panics_and_restoration_is_exact(
            text in r"(\PC|[<>@.+ 0-9A-Z\n]){0,200}",
            pseudo in any::<bool>(),
            cuts in proptest::collection::vec(0usize..220, 0..6),
        ) {
            let findings = detector().detect(&text);
            for f in &findings {
                prop_assert!(f.start < f.end && f.end <= text.len());
            }
            let mode = if pseudo { Mode::Pseudonym } else { Mode::Mask };
            let r = redact(&text, &findings, mode, b"k");
            prop_assert_eq!(r.vault.restore(&r.text), text.clone());
            // Streamed in arbitrary pieces (on char boundaries).
            let mut points: Vec<usize> = cuts.into_iter().filter(|c| *c < r.text.len() && r.text.is_char_boundary(*c)).collect();
            points.sort_unstable();
            let mut s = r.vault.stream();
            let mut out = String::new();
            let mut last = 0;
            for p in points {
                out.push_str(&s.push(&r.text[last..p]));
                last = p;
            }
            out.push_str(&s.push(&r.text[last..]));
            out.push_str(&s.finish());
            prop_assert_eq!(out, text);
        }
    }
}
