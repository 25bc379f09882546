//! Brand and moderation rules: banned words and claims, required
//! disclaimers, German formality, reading level, tonality, exclamation
//! marks, competitor names. Each violation has a span and a suggested fix;
//! rules with the `rewrite` action are applied to produce a rewritten text.

use regex_automata::meta::Regex;
use serde::{Deserialize, Serialize};

/// What a violated rule does to the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Report and pass.
    #[default]
    Flag,
    /// Replace with the suggested fix.
    Rewrite,
    /// Refuse the text.
    Block,
}

/// A term or pattern with its fix, as written in a policy.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TermRule {
    /// A literal term (case-insensitive, whole words).
    #[serde(default)]
    pub term: Option<String>,
    /// Or a regular expression (case-insensitive).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Suggested replacement; empty means delete.
    #[serde(default)]
    pub fix: Option<String>,
    /// Overrides the section's action.
    #[serde(default)]
    pub action: Option<Action>,
    /// Why the rule exists (shown in the violation).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A disclaimer that must appear when a trigger does.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Disclaimer {
    /// Regular expression that makes the disclaimer necessary.
    pub when: String,
    /// The disclaimer text (appended on rewrite).
    pub text: String,
    /// Action when missing.
    #[serde(default)]
    pub action: Option<Action>,
}

/// Formal or informal German address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Formality {
    /// Formal "Sie".
    Sie,
    /// Informal "du".
    Du,
}

/// The `[brand]` section of a policy.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BrandRules {
    /// Default action of this section's rules.
    #[serde(default)]
    pub action: Action,
    /// Banned words.
    #[serde(default)]
    pub banned: Vec<TermRule>,
    /// Banned claims (health promises, guarantees).
    #[serde(default)]
    pub claims: Vec<TermRule>,
    /// Disclaimers required by triggers.
    #[serde(default)]
    pub disclaimers: Vec<Disclaimer>,
    /// German form of address.
    #[serde(default)]
    pub formality: Option<Formality>,
    /// Lowest acceptable Flesch reading ease (Amstad's formula for German).
    #[serde(default)]
    pub min_reading_ease: Option<f64>,
    /// Words to replace for tone.
    #[serde(default)]
    pub tonality: Vec<TermRule>,
    /// Most exclamation marks allowed in one text.
    #[serde(default)]
    pub max_exclamation_marks: Option<usize>,
    /// Competitor names that may not appear.
    #[serde(default)]
    pub competitors: Vec<String>,
}

/// One broken rule. Offsets are Unicode code points, end exclusive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// Rule kind: `banned_term`, `banned_claim`, `missing_disclaimer`,
    /// `formality`, `reading_level`, `tonality`, `exclamation_marks`, `competitor`.
    pub rule: String,
    /// Start (code points).
    pub start: usize,
    /// End (code points, exclusive).
    pub end: usize,
    /// The offending text.
    pub text: String,
    /// What is wrong.
    pub message: String,
    /// Suggested replacement (empty = delete), when there is one.
    pub fix: Option<String>,
    /// What the policy does about it.
    pub action: Action,
}

/// Errors in a policy's brand section.
#[derive(Debug, thiserror::Error)]
pub enum BrandError {
    /// A rule has neither or both of `term` and `pattern`.
    #[error("{section}[{index}]: give exactly one of `term` or `pattern`")]
    TermOrPattern {
        /// Section name.
        section: &'static str,
        /// Index of the rule.
        index: usize,
    },
    /// A pattern does not compile.
    #[error("{section}[{index}]: invalid pattern: {message}")]
    Pattern {
        /// Section name.
        section: &'static str,
        /// Index of the rule.
        index: usize,
        /// Compiler message.
        message: String,
    },
}

struct Compiled {
    rule: &'static str,
    re: Regex,
    fix: Option<String>,
    action: Action,
    message: String,
    whole_words: bool,
}

/// Brand rules compiled for checking.
pub struct BrandChecker {
    rules: BrandRules,
    terms: Vec<Compiled>,
    disclaimers: Vec<(Regex, Disclaimer)>,
}

impl std::fmt::Debug for BrandChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrandChecker")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

fn escape_term(term: &str) -> String {
    term.split_whitespace()
        .map(|w| {
            w.chars()
                .map(|c| {
                    if c.is_alphanumeric() {
                        c.to_string()
                    } else {
                        format!("\\x{{{:x}}}", c as u32)
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(r"\s*")
}

fn compile_ci(p: &str) -> Result<Regex, String> {
    Regex::new(&format!("(?i:{p})")).map_err(|e| e.to_string())
}

impl BrandChecker {
    /// Compiles `rules`.
    pub fn new(rules: BrandRules) -> Result<Self, BrandError> {
        let mut terms = Vec::new();
        let sections: [(&'static str, &'static str, &Vec<TermRule>, &str); 3] = [
            ("banned", "banned_term", &rules.banned, "banned word"),
            (
                "claims",
                "banned_claim",
                &rules.claims,
                "claim the brand may not make",
            ),
            ("tonality", "tonality", &rules.tonality, "off-tone word"),
        ];
        for (section, rule, list, what) in sections {
            for (index, t) in list.iter().enumerate() {
                let (pattern, whole_words) = match (&t.term, &t.pattern) {
                    (Some(term), None) => (escape_term(term), true),
                    (None, Some(p)) => (p.clone(), false),
                    _ => return Err(BrandError::TermOrPattern { section, index }),
                };
                let re = compile_ci(&pattern).map_err(|message| BrandError::Pattern {
                    section,
                    index,
                    message,
                })?;
                let default_action = if rule == "tonality" && t.fix.is_some() {
                    Action::Rewrite
                } else {
                    rules.action
                };
                terms.push(Compiled {
                    rule,
                    re,
                    fix: t.fix.clone(),
                    action: t.action.unwrap_or(default_action),
                    message: t.reason.clone().unwrap_or_else(|| what.to_string()),
                    whole_words,
                });
            }
        }
        for (index, name) in rules.competitors.iter().enumerate() {
            let re = compile_ci(&escape_term(name)).map_err(|message| BrandError::Pattern {
                section: "competitors",
                index,
                message,
            })?;
            terms.push(Compiled {
                rule: "competitor",
                re,
                fix: None,
                action: rules.action,
                message: format!("names the competitor {name}"),
                whole_words: true,
            });
        }
        let disclaimers = rules
            .disclaimers
            .iter()
            .enumerate()
            .map(|(index, d)| {
                compile_ci(&d.when)
                    .map(|re| (re, d.clone()))
                    .map_err(|message| BrandError::Pattern {
                        section: "disclaimers",
                        index,
                        message,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            rules,
            terms,
            disclaimers,
        })
    }

    /// Every violation in `text`, in order of position.
    pub fn check(&self, text: &str) -> Vec<Violation> {
        let mut out: Vec<(usize, usize, Violation)> = Vec::new();
        let mut push = |s: usize,
                        e: usize,
                        rule: &str,
                        message: String,
                        fix: Option<String>,
                        action: Action| {
            out.push((
                s,
                e,
                Violation {
                    rule: rule.to_string(),
                    start: 0,
                    end: 0,
                    text: text[s..e].to_string(),
                    message,
                    fix,
                    action,
                },
            ));
        };
        for c in &self.terms {
            for m in c.re.find_iter(text) {
                if m.is_empty() || (c.whole_words && !whole_word(text, m.start(), m.end())) {
                    continue;
                }
                push(
                    m.start(),
                    m.end(),
                    c.rule,
                    c.message.clone(),
                    c.fix.clone(),
                    c.action,
                );
            }
        }
        for (re, d) in &self.disclaimers {
            if re.is_match(text) && !normalised(text).contains(&normalised(&d.text)) {
                push(
                    text.len(),
                    text.len(),
                    "missing_disclaimer",
                    format!("required disclaimer missing: {}", d.text),
                    Some(d.text.clone()),
                    d.action.unwrap_or(self.rules.action),
                );
            }
        }
        if let Some(want) = self.rules.formality {
            if looks_german(text) {
                for (s, e, fix) in formality_breaks(text, want) {
                    let msg = match want {
                        Formality::Sie => "informal address (du) where the brand says Sie",
                        Formality::Du => "formal address (Sie) where the brand says du",
                    };
                    push(
                        s,
                        e,
                        "formality",
                        msg.to_string(),
                        Some(fix),
                        self.rules.action.max(Action::Flag),
                    );
                }
            }
        }
        if let Some(min) = self.rules.min_reading_ease {
            let ease = reading_ease(text);
            if let Some(ease) = ease.filter(|e| *e < min) {
                push(
                    0,
                    text.len(),
                    "reading_level",
                    format!(
                        "reading ease {ease:.0} is below {min:.0}: use shorter sentences and words"
                    ),
                    None,
                    Action::Flag,
                );
            }
        }
        if let Some(max) = self.rules.max_exclamation_marks {
            for (i, (pos, _)) in text.match_indices('!').enumerate() {
                if i >= max {
                    push(
                        pos,
                        pos + 1,
                        "exclamation_marks",
                        format!("more than {max} exclamation mark(s)"),
                        Some(".".into()),
                        Action::Rewrite,
                    );
                }
            }
        }
        out.sort_by_key(|(s, e, _)| (*s, *e));
        let spans: Vec<(usize, usize)> = out.iter().map(|(s, e, _)| (*s, *e)).collect();
        let chars = crate::pii::to_char_offsets(text, &spans);
        out.into_iter()
            .zip(chars)
            .map(|((_, _, mut v), (cs, ce))| {
                v.start = cs;
                v.end = ce;
                v
            })
            .collect()
    }

    /// Applies every `rewrite` fix (non-overlapping, left to right) and appends
    /// missing disclaimers that are to be rewritten.
    pub fn rewrite(&self, text: &str, violations: &[Violation]) -> String {
        let chars: Vec<char> = text.chars().collect();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        let mut tail = Vec::new();
        for v in violations.iter().filter(|v| v.action == Action::Rewrite) {
            let Some(fix) = &v.fix else { continue };
            if v.rule == "missing_disclaimer" {
                tail.push(fix.clone());
                continue;
            }
            if v.start < at || v.end > chars.len() {
                continue;
            }
            out.extend(&chars[at..v.start]);
            out.push_str(&match_case(&v.text, fix));
            at = v.end;
        }
        out.extend(&chars[at.min(chars.len())..]);
        for d in tail {
            if !out.ends_with(char::is_whitespace) && !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&d);
        }
        out
    }
}

/// Keeps a leading capital when the replaced text had one.
fn match_case(original: &str, fix: &str) -> String {
    let upper = original.chars().next().is_some_and(char::is_uppercase);
    let mut c = fix.chars();
    match c.next() {
        Some(f) if upper => f.to_uppercase().chain(c).collect(),
        _ => fix.to_string(),
    }
}

fn normalised(s: &str) -> String {
    s.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn whole_word(text: &str, s: usize, e: usize) -> bool {
    let before = text[..s]
        .chars()
        .next_back()
        .is_none_or(|c| !c.is_alphanumeric());
    let after = text[e..]
        .chars()
        .next()
        .is_none_or(|c| !c.is_alphanumeric());
    before && after
}

/// Byte offset and text of each word (the PII recognizers' word splitter).
fn words_with_spans(text: &str) -> Vec<(usize, &str)> {
    crate::pii::words(text)
        .into_iter()
        .map(|(s, e)| (s, &text[s..e]))
        .collect()
}

/// At least two of a language's most common short words.
fn uses_words(text: &str, common: &[&str]) -> bool {
    words_with_spans(text)
        .iter()
        .filter(|(_, w)| common.contains(&w.to_lowercase().as_str()))
        .take(2)
        .count()
        >= 2
}

fn looks_german(text: &str) -> bool {
    uses_words(
        text,
        &[
            "der", "die", "das", "und", "ist", "nicht", "mit", "für", "sie", "du", "wir", "ihr",
            "ein", "eine", "zu", "auf",
        ],
    )
}

fn looks_english(text: &str) -> bool {
    uses_words(
        text,
        &[
            "the", "and", "is", "are", "to", "of", "in", "for", "you", "with", "our", "your", "it",
            "on", "this", "that",
        ],
    )
}

fn formality_breaks(text: &str, want: Formality) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut sentence_start = true;
    let mut last_end = 0;
    for (s, w) in words_with_spans(text) {
        if text[last_end..s].contains(['.', '!', '?', ':', '\n']) {
            sentence_start = true;
        }
        last_end = s + w.len();
        let fix = match want {
            Formality::Sie => match w.to_lowercase().as_str() {
                "du" => Some("Sie"),
                "dich" => Some("Sie"),
                "dir" => Some("Ihnen"),
                "dein" => Some("Ihr"),
                "deine" => Some("Ihre"),
                "deinen" => Some("Ihren"),
                "deinem" => Some("Ihrem"),
                "deiner" => Some("Ihrer"),
                "deines" => Some("Ihres"),
                "euch" => Some("Sie"),
                _ => None,
            },
            // "Sie" at a sentence start may be "she/they": only mid-sentence capitals count.
            Formality::Du if !sentence_start => match w {
                "Sie" => Some("du"),
                "Ihnen" => Some("dir"),
                "Ihr" => Some("dein"),
                "Ihre" => Some("deine"),
                "Ihren" => Some("deinen"),
                "Ihrem" => Some("deinem"),
                "Ihrer" => Some("deiner"),
                _ => None,
            },
            Formality::Du => None,
        };
        if let Some(f) = fix {
            out.push((s, s + w.len(), f.to_string()));
        }
        sentence_start = false;
    }
    out
}

fn syllables(word: &str) -> usize {
    let mut n = 0;
    let mut prev_vowel = false;
    for c in word.chars().flat_map(char::to_lowercase) {
        let v = matches!(
            c,
            'a' | 'e' | 'i' | 'o' | 'u' | 'y' | 'ä' | 'ö' | 'ü' | 'é' | 'è' | 'à'
        );
        if v && !prev_vowel {
            n += 1;
        }
        prev_vowel = v;
    }
    n.max(1)
}

/// Flesch reading ease: Amstad's constants for German text, Flesch's for English.
/// `None` for texts too short to grade (fewer than 10 words) and for other
/// languages, whose syllable counts these constants do not fit.
pub fn reading_ease(text: &str) -> Option<f64> {
    let words: Vec<&str> = words_with_spans(text).into_iter().map(|(_, w)| w).collect();
    if words.len() < 10 {
        return None;
    }
    let sentences = text
        .split(['.', '!', '?', '\n'])
        .filter(|s| s.chars().any(char::is_alphabetic))
        .count()
        .max(1) as f64;
    let n = words.len() as f64;
    let syl = words.iter().map(|w| syllables(w)).sum::<usize>() as f64;
    let asl = n / sentences;
    let asw = syl / n;
    if looks_german(text) {
        Some(180.0 - asl - 58.5 * asw)
    } else if looks_english(text) {
        Some(206.835 - 1.015 * asl - 84.6 * asw)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker() -> BrandChecker {
        let rules: BrandRules = toml::from_str(
            r#"
            action = "flag"
            banned = [{ term = "garantiert", fix = "in der Regel", action = "rewrite" }]
            claims = [{ pattern = "100\\s*%\\s*sicher", action = "block" }, { term = "heilt", reason = "health promise" }]
            disclaimers = [{ when = "rendite", text = "Kapitalanlagen sind mit Risiken verbunden.", action = "rewrite" }]
            formality = "sie"
            tonality = [{ term = "billig", fix = "günstig" }]
            max_exclamation_marks = 1
            competitors = ["Acme"]
            "#,
        )
        .unwrap();
        BrandChecker::new(rules).unwrap()
    }

    #[test]
    fn finds_each_rule_with_spans_and_fixes() {
        let c = checker();
        let t =
            "Garantiert billig! Das ist 100 % sicher und besser als Acme! Hol dir deine Rendite!";
        let v = c.check(t);
        let rules: Vec<&str> = v.iter().map(|v| v.rule.as_str()).collect();
        for r in [
            "banned_term",
            "tonality",
            "banned_claim",
            "competitor",
            "formality",
            "exclamation_marks",
            "missing_disclaimer",
        ] {
            assert!(rules.contains(&r), "{r} missing in {v:?}");
        }
        let g = v.iter().find(|v| v.rule == "banned_term").unwrap();
        assert_eq!((g.start, g.end, g.text.as_str()), (0, 10, "Garantiert"));
        let rewritten = c.rewrite(t, &v);
        assert!(
            rewritten.starts_with("In der Regel günstig! Das ist 100 % sicher"),
            "{rewritten}"
        );
        assert!(
            rewritten.ends_with("Kapitalanlagen sind mit Risiken verbunden."),
            "{rewritten}"
        );
        assert!(!rewritten.contains("Rendite!"), "{rewritten}");
    }

    #[test]
    fn whole_words_only_and_clean_text_passes() {
        let c = checker();
        assert!(c
            .check("Die Garantiebedingungen finden Sie online. Wir beraten Sie gern.")
            .is_empty());
    }

    #[test]
    fn reading_ease_orders_easy_before_hard() {
        let easy =
            reading_ease("The cat sat on the mat. It was warm. The sun was out. We had tea.")
                .unwrap();
        let hard = reading_ease("Notwithstanding the institutional considerations, the organisational interdependencies necessitate comprehensive reconceptualisation of operational methodologies.").unwrap();
        assert!(easy > 80.0 && hard < 20.0, "{easy} {hard}");
        assert_eq!(
            reading_ease(
                "Prix imbattables. Note importante : les retours sont gratuits sous trente jours."
            ),
            None,
            "French is not graded with English constants"
        );
    }

    #[test]
    fn bad_patterns_are_reported() {
        let rules = BrandRules {
            claims: vec![TermRule {
                term: None,
                pattern: Some("(".into()),
                fix: None,
                action: None,
                reason: None,
            }],
            ..BrandRules::default()
        };
        assert!(matches!(
            BrandChecker::new(rules),
            Err(BrandError::Pattern { .. })
        ));
    }
}
