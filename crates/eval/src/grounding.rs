//! Grounding an answer in its sources: each sentence of the answer is matched to the
//! source sentence that supports it best (among the sources it cites with `[n]`, or all
//! of them when it cites none); sentences without enough support are dropped. What is
//! kept carries an exact quote of its source, so its citation can be checked.

use crate::metrics::lexical_support;
use crate::text::sentences;

/// A kept sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Grounded {
    /// The answer's sentence, citation markers removed.
    pub sentence: String,
    /// Index of the supporting source (0-based).
    pub source: usize,
    /// The supporting sentence, verbatim from the source.
    pub quote: String,
    /// Byte offset of the quote in the source.
    pub quote_start: usize,
    /// Lexical support of the sentence by the quote (0..=1).
    pub support: f64,
}

/// The result of grounding an answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verification {
    /// Supported sentences, in answer order.
    pub kept: Vec<Grounded>,
    /// Unsupported sentences and their best support.
    pub dropped: Vec<(String, f64)>,
}

/// `[1]`, `[2, 3]` markers (1-based) and the sentence without them.
pub fn strip_markers(sentence: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(sentence.len());
    let mut cited = Vec::new();
    let mut rest = sentence;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        let inner = &rest[open + 1..close];
        let nums: Option<Vec<usize>> = inner
            .split(',')
            .map(|p| p.trim().parse::<usize>().ok().filter(|n| *n > 0))
            .collect();
        match nums {
            Some(nums) if !inner.trim().is_empty() => {
                out.push_str(&rest[..open]);
                cited.extend(nums);
            }
            _ => out.push_str(&rest[..=close]),
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    let cleaned = out.split_whitespace().collect::<Vec<_>>().join(" ");
    let cleaned = cleaned
        .replace(" .", ".")
        .replace(" ,", ",")
        .replace(" ?", "?")
        .replace(" !", "!");
    (cleaned, cited)
}

/// Grounds `answer` in `sources`; a sentence is kept when some source sentence supports
/// at least `min_support` of its content words (and all of its numbers).
pub fn verify(answer: &str, sources: &[&str], min_support: f64) -> Verification {
    verify_with(answer, sources, min_support, |_, _| None)
}

/// Like [`verify`], with a second chance for paraphrases: a sentence whose best quote holds
/// at least half its content words and all of its numbers is kept when `similarity`
/// (an embedding cosine, say) of the two says they mean the same (`Some(true)`).
pub fn verify_with(
    answer: &str,
    sources: &[&str],
    min_support: f64,
    similar: impl Fn(&str, &str) -> Option<bool>,
) -> Verification {
    let mut v = Verification::default();
    for raw in sentences(answer) {
        let (sentence, cited) = strip_markers(raw);
        if sentence.is_empty() {
            continue;
        }
        let cited: Vec<usize> = cited
            .into_iter()
            .filter(|n| *n <= sources.len())
            .map(|n| n - 1)
            .collect();
        let candidates: Vec<usize> = if cited.is_empty() {
            (0..sources.len()).collect()
        } else {
            cited
        };
        let mut best: Option<(f64, usize, &str)> = None;
        for &i in &candidates {
            for quote in sentences(sources[i]) {
                let s = lexical_support(&sentence, quote);
                if best.is_none_or(|(b, _, _)| s > b) {
                    best = Some((s, i, quote));
                }
            }
        }
        let paraphrase = |b: &Option<(f64, usize, &str)>| {
            b.is_some_and(|(support, _, quote)| {
                support >= 0.5 && support < min_support && similar(&sentence, quote) == Some(true)
            })
        };
        match best {
            Some((support, i, quote)) if support >= min_support || paraphrase(&best) => {
                let quote_start = sources[i].find(quote).unwrap_or(0);
                v.kept.push(Grounded {
                    sentence,
                    source: i,
                    quote: quote.to_owned(),
                    quote_start,
                    support,
                });
            }
            other => v.dropped.push((sentence, other.map_or(0.0, |b| b.0))),
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_read_and_removed() {
        assert_eq!(
            strip_markers("The kettle costs 49 euros [1, 2]."),
            ("The kettle costs 49 euros.".to_owned(), vec![1, 2])
        );
        assert_eq!(
            strip_markers("See [the manual] now [3]"),
            ("See [the manual] now".to_owned(), vec![3])
        );
    }

    #[test]
    fn supported_sentences_are_kept_with_an_exact_quote() {
        let sources = [
            "The Aurora kettle costs 49 euros. It holds 1.7 litres.",
            "Returns are free within 30 days. Sale items are final.",
        ];
        let answer = "The Aurora kettle costs 49 euros [1]. Returns are free within 30 days [2]. \
                      It comes with a lifetime warranty [1].";
        let v = verify(answer, &sources, 0.8);
        assert_eq!(v.kept.len(), 2);
        assert_eq!(v.kept[1].source, 1);
        assert_eq!(v.kept[1].quote, "Returns are free within 30 days.");
        assert!(sources[1][v.kept[1].quote_start..].starts_with(&v.kept[1].quote));
        assert_eq!(v.dropped.len(), 1);
        assert!(v.dropped[0].0.contains("lifetime warranty"));
        // A wrong number is not supported even with every other word in the source.
        let v = verify("The Aurora kettle costs 59 euros [1].", &sources, 0.8);
        assert!(v.kept.is_empty());
        // Citing the wrong source does not borrow support from another one.
        let v = verify("Returns are free within 30 days [1].", &sources, 0.8);
        assert!(v.kept.is_empty());
    }

    #[test]
    fn paraphrases_need_half_the_words_every_number_and_a_similar_meaning() {
        let sources = ["Returns are free within 30 days of delivery."];
        // "charge" and "returning" are not in the source: lexical support 3/6 = 0.5.
        let answer = "Returning is free of charge for 30 days [1].";
        assert!(verify(answer, &sources, 0.8).kept.is_empty());
        let yes = verify_with(answer, &sources, 0.8, |_, _| Some(true));
        assert_eq!(yes.kept.len(), 1);
        assert!(yes.kept[0].support < 0.8);
        assert!(verify_with(answer, &sources, 0.8, |_, _| Some(false))
            .kept
            .is_empty());
        // A changed number is never rescued by similarity.
        let wrong = "Returning is free of charge for 60 days [1].";
        assert!(verify_with(wrong, &sources, 0.8, |_, _| Some(true))
            .kept
            .is_empty());
    }
}
