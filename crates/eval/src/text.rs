//! Text normalisation for answer metrics: SQuAD-style tokens (lower case, punctuation and
//! articles dropped), German articles included, and sentence splitting.

use std::collections::HashMap;

const ARTICLES: &[&str] = &[
    "a", "an", "the", "der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem",
    "einer", "eines",
];

/// Lower-cased alphanumeric tokens without articles.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !ARTICLES.contains(&w.as_str()))
        .collect()
}

/// Token F1 between a prediction and a reference (SQuAD's definition: harmonic mean of
/// precision and recall over the multiset of tokens; 1.0 when both are empty).
pub fn token_f1(prediction: &str, reference: &str) -> f64 {
    let p = tokens(prediction);
    let r = tokens(reference);
    if p.is_empty() || r.is_empty() {
        return f64::from(u8::from(p.is_empty() && r.is_empty()));
    }
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for t in &r {
        *counts.entry(t).or_default() += 1;
    }
    let mut common = 0i64;
    for t in &p {
        if let Some(c) = counts.get_mut(t.as_str()) {
            if *c > 0 {
                *c -= 1;
                common += 1;
            }
        }
    }
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / p.len() as f64;
    let recall = common as f64 / r.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Sentences: split after `.`, `!` or `?` followed by white space, and at line breaks.
pub fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = text.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        let end = (matches!(c, b'.' | b'!' | b'?')
            && b.get(i + 1).is_none_or(u8::is_ascii_whitespace))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f1_matches_squad_examples() {
        // SQuAD normalisation drops case, punctuation and articles.
        assert_eq!(token_f1("The Eiffel Tower!", "eiffel tower"), 1.0);
        // prediction "in 1889 in Paris" (4 tokens), reference "1889" (1): P 1/4, R 1 → 0.4.
        assert!((token_f1("in 1889 in Paris", "1889") - 0.4).abs() < 1e-12);
        assert_eq!(token_f1("blue", "red"), 0.0);
        assert_eq!(token_f1("", ""), 1.0);
        assert_eq!(token_f1("", "x"), 0.0);
        // Repeated tokens count once per occurrence in the reference.
        // p = [x, x, y] (3), r = [x, y] (2): common 2 → P 2/3, R 1 → 0.8.
        assert!((token_f1("x x y", "x y") - 0.8).abs() < 1e-12);
        assert_eq!(
            token_f1("Der Preis beträgt 49 Euro", "Preis 49 Euro beträgt"),
            1.0
        );
    }

    #[test]
    fn sentences_split_at_ends_not_inside_numbers() {
        assert_eq!(
            sentences("It costs 4.99 euros. Really? Yes!\nNext line"),
            vec!["It costs 4.99 euros.", "Really?", "Yes!", "Next line"]
        );
    }
}
