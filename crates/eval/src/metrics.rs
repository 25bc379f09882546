//! The metrics, each a pure function: retrieval (recall@k, reciprocal rank, nDCG@k with
//! binary relevance), sentence support and faithfulness, citation validity, percentiles,
//! and a bootstrap interval for a mean.

use crate::text::{sentences, tokens};
use std::collections::HashSet;

/// Share of the relevant documents found in the first `k` results (documents counted
/// once). `None` when nothing is relevant (the case does not count).
pub fn recall_at_k(ranked: &[&str], relevant: &HashSet<&str>, k: usize) -> Option<f64> {
    if relevant.is_empty() {
        return None;
    }
    let mut seen = HashSet::new();
    let hits = ranked
        .iter()
        .take(k)
        .filter(|d| relevant.contains(*d) && seen.insert(**d))
        .count();
    Some(hits as f64 / relevant.len() as f64)
}

/// 1 / rank of the first relevant result within `k`, 0 when none.
pub fn reciprocal_rank(ranked: &[&str], relevant: &HashSet<&str>, k: usize) -> Option<f64> {
    if relevant.is_empty() {
        return None;
    }
    Some(
        ranked
            .iter()
            .take(k)
            .position(|d| relevant.contains(d))
            .map_or(0.0, |i| 1.0 / (i + 1) as f64),
    )
}

/// nDCG@k with binary relevance: DCG = Σ rel_i / log2(i + 1) over ranks i = 1..k, a
/// document counted at its first rank only; IDCG puts every relevant document first.
pub fn ndcg_at_k(ranked: &[&str], relevant: &HashSet<&str>, k: usize) -> Option<f64> {
    if relevant.is_empty() {
        return None;
    }
    let mut seen = HashSet::new();
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, d)| relevant.contains(*d) && seen.insert(**d))
        .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(k))
        .map(|i| 1.0 / ((i + 2) as f64).log2())
        .sum();
    Some(dcg / ideal)
}

/// Words that carry no claim, left out when a sentence's support is measured.
const STOP: &[&str] = &[
    "is", "are", "was", "were", "be", "been", "of", "to", "in", "on", "for", "and", "or", "it",
    "its", "this", "that", "with", "at", "by", "as", "from", "you", "your", "we", "our", "can",
    "ist", "sind", "war", "und", "oder", "zu", "im", "in", "auf", "für", "mit", "von", "es", "sie",
    "wir", "unser", "unsere", "ihr", "ihre", "kann", "können",
];

/// Share of a sentence's content words that appear in the source text (0..=1; 1 for a
/// sentence with no content words). A number is a claim of its own: when any number of
/// the sentence is missing from the source, the support is 0.
pub fn lexical_support(sentence: &str, source: &str) -> f64 {
    let content: Vec<String> = tokens(sentence)
        .into_iter()
        .filter(|t| !STOP.contains(&t.as_str()))
        .collect();
    if content.is_empty() {
        return 1.0;
    }
    let src: HashSet<String> = tokens(source).into_iter().collect();
    let numbers_hold = content
        .iter()
        .filter(|t| t.chars().any(|c| c.is_ascii_digit()))
        .all(|t| src.contains(t));
    if !numbers_hold {
        return 0.0;
    }
    content.iter().filter(|t| src.contains(*t)).count() as f64 / content.len() as f64
}

/// Whether a sentence is supported by its sources: lexical support at or above
/// `min_lexical`, or, when the caller measured it, an embedding similarity at or above
/// `min_similarity` together with at least half the content words.
pub fn supported(
    sentence: &str,
    sources: &[&str],
    similarity: Option<f64>,
    min_lexical: f64,
    min_similarity: f64,
) -> bool {
    let best = sources
        .iter()
        .map(|s| lexical_support(sentence, s))
        .fold(0.0, f64::max);
    best >= min_lexical || (best >= 0.5 && similarity.is_some_and(|s| s >= min_similarity))
}

/// Faithfulness of an answer: the share of its sentences supported by the cited sources
/// (lexical check only, threshold 0.8). An empty answer is fully faithful.
pub fn faithfulness(answer: &str, cited_sources: &[&str]) -> f64 {
    let s = sentences(answer);
    if s.is_empty() {
        return 1.0;
    }
    s.iter()
        .filter(|x| supported(x, cited_sources, None, 0.8, 1.0))
        .count() as f64
        / s.len() as f64
}

/// A citation as an answer gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citation<'a> {
    /// The quoted span.
    pub quote: &'a str,
    /// The text of the chunk it points at, when that chunk exists.
    pub chunk_text: Option<&'a str>,
}

/// Share of citations that resolve to a real chunk whose text contains the quote (1.0
/// when there are none).
pub fn citation_validity(citations: &[Citation<'_>]) -> f64 {
    if citations.is_empty() {
        return 1.0;
    }
    citations
        .iter()
        .filter(|c| !c.quote.is_empty() && c.chunk_text.is_some_and(|t| t.contains(c.quote)))
        .count() as f64
        / citations.len() as f64
}

/// The `q` quantile (nearest rank) of values; 0 for none.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Mean of values (0 for none).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// A percentile bootstrap interval of a statistic: `resamples` resamples drawn with a
/// seeded generator, the `(1 - level) / 2` and `(1 + level) / 2` quantiles of the
/// statistic over them.
pub fn bootstrap_interval(
    values: &[f64],
    stat: impl Fn(&[f64]) -> f64,
    level: f64,
    resamples: usize,
    seed: u64,
) -> (f64, f64) {
    if values.len() < 2 {
        let m = stat(values);
        return (m, m);
    }
    let mut state = seed | 1;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let n = values.len();
    let mut sample = vec![0.0; n];
    let mut stats: Vec<f64> = (0..resamples.max(1))
        .map(|_| {
            for x in sample.iter_mut() {
                *x = values[(next() % n as u64) as usize];
            }
            stat(&sample)
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    let at = |q: f64| stats[((q * (stats.len() - 1) as f64).round() as usize).min(stats.len() - 1)];
    (at((1.0 - level) / 2.0), at((1.0 + level) / 2.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set<'a>(v: &[&'a str]) -> HashSet<&'a str> {
        v.iter().copied().collect()
    }

    #[test]
    fn retrieval_metrics_match_hand_computed_values() {
        let ranked = ["d3", "d1", "d7", "d2", "d1"];
        let rel = set(&["d1", "d2"]);
        assert_eq!(recall_at_k(&ranked, &rel, 3), Some(0.5));
        assert_eq!(recall_at_k(&ranked, &rel, 10), Some(1.0));
        assert_eq!(reciprocal_rank(&ranked, &rel, 10), Some(0.5));
        assert_eq!(reciprocal_rank(&ranked, &rel, 1), Some(0.0));
        // DCG = 1/log2(3) + 1/log2(5) (the second d1 does not count again);
        // IDCG = 1 + 1/log2(3).
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!((ndcg_at_k(&ranked, &rel, 10).unwrap() - dcg / idcg).abs() < 1e-12);
        assert_eq!(ndcg_at_k(&["d1", "d2"], &rel, 10), Some(1.0));
        assert_eq!(ndcg_at_k(&ranked, &set(&[]), 10), None);
    }

    #[test]
    fn support_needs_the_claims_words_in_the_source() {
        let src = "The Aurora kettle costs 49 euros and ships in blue.";
        assert!(supported(
            "The Aurora kettle costs 49 euros.",
            &[src],
            None,
            0.8,
            0.9
        ));
        assert!(!supported(
            "The Aurora kettle costs 59 euros.",
            &[src],
            None,
            0.8,
            0.9
        ));
        assert!(!supported("It is made in Italy.", &[src], None, 0.8, 0.9));
        let answer = "The Aurora kettle costs 49 euros. It is made in Italy.";
        assert_eq!(faithfulness(answer, &[src]), 0.5);
        assert_eq!(faithfulness("", &[src]), 1.0);
    }

    #[test]
    fn citations_must_resolve_and_quote_exactly() {
        let chunk = "Returns are free within 30 days.";
        let ok = Citation {
            quote: "free within 30 days",
            chunk_text: Some(chunk),
        };
        let wrong = Citation {
            quote: "free within 60 days",
            chunk_text: Some(chunk),
        };
        let missing = Citation {
            quote: "free",
            chunk_text: None,
        };
        assert_eq!(citation_validity(std::slice::from_ref(&ok)), 1.0);
        assert!((citation_validity(&[ok, wrong, missing]) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(citation_validity(&[]), 1.0);
    }

    #[test]
    fn percentiles_and_bootstrap() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        let (lo, hi) = bootstrap_interval(&v, mean, 0.95, 2000, 7);
        // Mean 50.5, standard error 2.90: the interval is about ±5.7 around it.
        assert!(lo < 50.5 && hi > 50.5, "{lo} {hi}");
        assert!((hi - lo) > 9.0 && (hi - lo) < 13.5, "{lo} {hi}");
        assert_eq!(bootstrap_interval(&[1.0], mean, 0.95, 100, 1), (1.0, 1.0));
    }
}
