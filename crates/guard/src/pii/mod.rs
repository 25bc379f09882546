//! PII recognizers for English and German text.
//!
//! Structured identifiers are found in one pass of a multi-pattern lazy DFA
//! (`regex-automata`); every candidate is then tried against each type's own
//! anchored pattern in priority order and kept only when its checksum or
//! structure holds. Names, places and addresses come from gazetteers plus
//! context rules. Spans are byte offsets into the input; [`to_char_offsets`]
//! turns them into Unicode code-point offsets for the wire.

pub mod checks;
mod gazetteer;

use regex_automata::meta::Regex;
use regex_automata::{Anchored, Input};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds of personal data the recognizers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntityType {
    /// E-mail address.
    Email,
    /// Telephone number (international, German or North American format).
    Phone,
    /// International bank account number (mod-97 checked).
    Iban,
    /// Payment card number (Luhn checked, known issuer prefix).
    CreditCard,
    /// IPv4 or IPv6 address.
    IpAddress,
    /// Web address.
    Url,
    /// A person's name.
    Person,
    /// A full postal address.
    Address,
    /// A place name on its own.
    Location,
    /// A date introduced as a date of birth.
    DateOfBirth,
    /// German tax identification number (Steuer-IdNr).
    DeTaxId,
    /// German social security (pension insurance) number.
    DeSocialSecurity,
    /// German health insurance number (KVNR).
    DeHealthInsurance,
    /// EU VAT identification number.
    VatId,
    /// Passport or identity card number (by context).
    Passport,
    /// US Social Security or individual taxpayer number (`ddd-dd-dddd`; ITINs, area 9xx,
    /// are personal too).
    UsSsn,
    /// An access credential: AWS access key id, GitHub, Slack, OpenAI, Anthropic, Stripe
    /// or Google API token.
    Secret,
}

impl EntityType {
    /// Every type, in wire-name order of the documentation.
    pub const ALL: [EntityType; 17] = [
        Self::Email,
        Self::Phone,
        Self::Iban,
        Self::CreditCard,
        Self::IpAddress,
        Self::Url,
        Self::Person,
        Self::Address,
        Self::Location,
        Self::DateOfBirth,
        Self::DeTaxId,
        Self::DeSocialSecurity,
        Self::DeHealthInsurance,
        Self::VatId,
        Self::Passport,
        Self::UsSsn,
        Self::Secret,
    ];

    /// The wire name, e.g. `CREDIT_CARD`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::Phone => "PHONE",
            Self::Iban => "IBAN",
            Self::CreditCard => "CREDIT_CARD",
            Self::IpAddress => "IP_ADDRESS",
            Self::Url => "URL",
            Self::Person => "PERSON",
            Self::Address => "ADDRESS",
            Self::Location => "LOCATION",
            Self::DateOfBirth => "DATE_OF_BIRTH",
            Self::DeTaxId => "DE_TAX_ID",
            Self::DeSocialSecurity => "DE_SOCIAL_SECURITY",
            Self::DeHealthInsurance => "DE_HEALTH_INSURANCE",
            Self::VatId => "VAT_ID",
            Self::Passport => "PASSPORT",
            Self::UsSsn => "US_SSN",
            Self::Secret => "SECRET",
        }
    }

    /// Parses a wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Identifiers with a fixed format (as opposed to names and places).
    pub fn is_structured(self) -> bool {
        !matches!(self, Self::Person | Self::Address | Self::Location)
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One recognised piece of personal data. `start..end` are byte offsets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finding {
    /// What was found.
    pub entity: EntityType,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// Confidence in `0..=1`.
    pub score: f32,
}

/// Candidate kinds of the first pass, in the order they are tried at one position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Secret,
    Email,
    Url,
    Iban,
    Vat,
    SocialSecurity,
    HealthInsurance,
    Card,
    TaxId,
    UsSsn,
    Ipv4,
    Ipv6,
    Date,
    Passport,
    Phone,
}

const B: &str = r"(?-u:\b)";
/// Optional extension: "x406", "ext. 12", "-0" style switchboard suffixes.
const EXT: &str = r"(?:[ ]?(?:x|ext\.?|Durchwahl|DW)[ ]?[0-9]{1,6})?";

fn patterns() -> Vec<(Kind, String)> {
    let months = "Jan(?:uar|uary)?|Feb(?:ruar|ruary)?|M(?:ä|ae)rz|March|Mar|Apr(?:il)?|Mai|May|Jun[ie]?|Jul[iy]?|Aug(?:ust)?|Sep(?:t|tember)?|O[ck]t(?:ober)?|Nov(?:ember)?|De[cz](?:ember)?";
    vec![
        (
            Kind::Secret,
            format!(
                r"{B}(?:(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{{16}}|gh[pousr]_[A-Za-z0-9]{{36,255}}|github_pat_[A-Za-z0-9_]{{60,255}}|xox[abposr]-[A-Za-z0-9\-]{{10,250}}|sk-ant-[A-Za-z0-9_\-]{{20,250}}|sk-(?:proj-)?[A-Za-z0-9_\-]{{32,250}}|[sr]k_live_[A-Za-z0-9]{{20,250}}|AIza[0-9A-Za-z_\-]{{35}}){B}"
            ),
        ),
        (
            Kind::Email,
            format!(
                r"{B}[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{{2,24}}{B}"
            ),
        ),
        (
            Kind::Url,
            r#"(?:[hH][tT][tT][pP][sS]?://|www\.)[^ \t\r\n<>"'`]+"#.to_string(),
        ),
        (
            Kind::Iban,
            format!(r"{B}[A-Z]{{2}}[0-9]{{2}}(?:[ ]?[A-Z0-9]{{4}}){{2,7}}(?:[ ]?[A-Z0-9]{{1,3}})?"),
        ),
        (
            Kind::Vat,
            format!(
                r"{B}(?:DE[ ]?[0-9]{{9}}|ATU[ ]?[0-9]{{8}}|BE[ ]?0[0-9]{{9}}|FR[ ]?[0-9A-Z]{{2}}[0-9]{{9}}|IT[ ]?[0-9]{{11}}|NL[ ]?[0-9]{{9}}B[0-9]{{2}}|PL[ ]?[0-9]{{10}}|ES[ ]?[0-9A-Z][0-9]{{7}}[0-9A-Z]|GB[ ]?[0-9]{{9}}(?:[0-9]{{3}})?){B}"
            ),
        ),
        (
            Kind::SocialSecurity,
            format!(r"{B}[0-9]{{2}}[ ]?[0-9]{{6}}[ ]?[A-Z][ ]?[0-9]{{3}}{B}"),
        ),
        (Kind::HealthInsurance, format!(r"{B}[A-Z][0-9]{{9}}{B}")),
        (
            Kind::Card,
            format!(
                r"{B}(?:[0-9]{{4}}[ \-]?[0-9]{{4}}[ \-]?[0-9]{{4}}[ \-]?[0-9]{{1,7}}|3[47][0-9]{{2}}[ \-]?[0-9]{{6}}[ \-]?[0-9]{{5}}|3[068][0-9]{{2}}[ \-]?[0-9]{{6}}[ \-]?[0-9]{{4}}){B}"
            ),
        ),
        (
            Kind::TaxId,
            format!(r"{B}[1-9][0-9](?:[ ]?[0-9]{{3}}){{3}}{B}"),
        ),
        (
            Kind::UsSsn,
            format!(r"{B}(?:[0-9]{{3}}-[0-9]{{2}}-[0-9]{{4}}|[0-9]{{3}} [0-9]{{2}} [0-9]{{4}}){B}"),
        ),
        (
            Kind::Ipv4,
            format!(r"{B}(?:[0-9]{{1,3}}\.){{3}}[0-9]{{1,3}}{B}"),
        ),
        (
            Kind::Ipv6,
            format!(
                r"{B}(?:[0-9A-Fa-f]{{0,4}}:){{2,7}}[0-9A-Fa-f]{{1,4}}{B}|(?:[0-9A-Fa-f]{{1,4}}:){{1,7}}:"
            ),
        ),
        (
            Kind::Date,
            format!(
                r"{B}(?:[0-3]?[0-9][./\-][01]?[0-9][./\-](?:19|20)[0-9]{{2}}|(?:19|20)[0-9]{{2}}-[01][0-9]-[0-3][0-9]|[0-3]?[0-9]\.?[ ](?:{months})\.?[ ](?:19|20)[0-9]{{2}}|(?:{months})\.?[ ][0-3]?[0-9](?:st|nd|rd|th)?,?[ ](?:19|20)[0-9]{{2}}){B}"
            ),
        ),
        (
            Kind::Passport,
            format!(
                r"{B}(?:[CFGHJKLMNPRTVWXYZ][CFGHJKLMNPRTVWXYZ0-9]{{8}}|[A-Z]{{1,2}}[0-9]{{6,8}}|[0-9]{{9}}){B}"
            ),
        ),
        (
            Kind::Phone,
            format!(
                r"(?:\+|{B}00)[1-9][0-9]{{0,2}}[ \-./]?(?:\(0\)[ ]?)?(?:\([0-9]{{1,5}}\)[ ]?)?[0-9]{{1,5}}(?:[ \-./]?[0-9]{{1,8}}){{0,5}}{EXT}{B}|{B}0[1-9][0-9]{{1,4}}(?:[ \-/]|[ ]/[ ])?[0-9]{{2,8}}(?:[ \-][0-9]{{1,6}}){{0,3}}{EXT}{B}|\(0[1-9][0-9]{{1,4}}\)[ ]?[0-9]{{3,8}}(?:[ \-][0-9]{{1,6}}){{0,2}}{EXT}{B}|(?:\([2-9][0-9]{{2}}\)[ ]?|{B}[2-9][0-9]{{2}}[\-. ]?)[2-9][0-9]{{2}}[\-. ]?[0-9]{{4}}{EXT}{B}"
            ),
        ),
    ]
}

fn address_patterns() -> Vec<String> {
    let up = "[A-ZÄÖÜ]";
    let low = "[a-zäöüß]";
    vec![
        // German: "Hauptstraße 5", "Berliner Str. 12a, 10115 Berlin", "Am Markt 3".
        format!(
            r"(?:{up}{low}+(?:-{up}{low}+)*(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|steig|pfad|markt)|{up}{low}+[ ](?:Straße|Strasse|Str\.|Weg|Allee|Platz|Gasse|Ring|Damm|Ufer|Chaussee)|(?:Am|An[ ]der|Im|Auf[ ]dem|Zum|Zur)[ ]{up}{low}+)[ ]?[0-9]{{1,4}}(?:[ ]?[a-zA-Z]{B})?(?:(?:,[ ]?|[ ]|\n)[0-9]{{5}}[ ]{up}{low}+(?:(?:[ ]|-)(?:an[ ]der|am|im|{up}{low}+))*(?:[ ]\({up}{low}+\))?)?"
        ),
        // English: "1600 Pennsylvania Avenue, Washington, DC 20500".
        format!(
            r"{B}[0-9]{{1,5}}[ ](?:[A-Z][a-z]+[ ]){{1,3}}(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Boulevard|Blvd|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Parkway|Square|Sq)\.?(?:,?[ ](?:Apt|Suite|Unit)\.?[ ][0-9A-Z]+)?(?:(?:,[ ]?|\n)[A-Z][a-z]+(?:[ ][A-Z][a-z]+)*)?(?:,?[ ][A-Z]{{2}}[ ][0-9]{{5}}(?:-[0-9]{{4}})?)?"
        ),
    ]
}

/// The recogniser set. Build once and share; detection takes `&self`.
pub struct Detector {
    candidates: Regex,
    each: Vec<(Kind, Regex)>,
    addresses: Regex,
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector").finish_non_exhaustive()
    }
}

/// A built-in pattern failed to compile: a bug in this crate, caught by its tests.
#[derive(Debug, thiserror::Error)]
#[error("built-in PII pattern does not compile: {0}")]
pub struct PatternError(String);

impl PatternError {
    /// Wraps a compiler message.
    pub fn new(message: String) -> Self {
        Self(message)
    }
}

fn compile(pattern: &str) -> Result<Regex, PatternError> {
    Regex::new(pattern).map_err(|e| PatternError(e.to_string()))
}

impl Detector {
    /// Compiles the recognisers.
    pub fn new() -> Result<Self, PatternError> {
        let pats = patterns();
        let sources: Vec<&str> = pats.iter().map(|(_, p)| p.as_str()).collect();
        // A roomy lazy-DFA cache: the candidate automaton is large, and a cache
        // that keeps being cleared re-determinises states on every text.
        let config = || Regex::config().hybrid_cache_capacity(16 << 20);
        let candidates = Regex::builder()
            .configure(config())
            .build_many(&sources)
            .map_err(|e| PatternError(e.to_string()))?;
        let each = pats
            .iter()
            .map(|(k, p)| compile(p).map(|r| (*k, r)))
            .collect::<Result<_, _>>()?;
        let addr = address_patterns();
        let addresses = Regex::builder()
            .configure(config())
            .build_many(&addr)
            .map_err(|e| PatternError(e.to_string()))?;
        Ok(Self {
            candidates,
            each,
            addresses,
        })
    }

    /// All findings in `text`, sorted by start, never overlapping.
    pub fn detect(&self, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        let windows = windows(text);
        for &(from, to) in &windows {
            self.structured_in(text, from, to, &mut out);
        }
        self.addresses(text, &windows, &mut out);
        self.names(text, &mut out);
        out.sort_by_key(|f| (f.start, f.end));
        out
    }

    fn structured_in(&self, text: &str, from: usize, to: usize, out: &mut Vec<Finding>) {
        let mut pos = from.max(out.last().map_or(0, |f| f.end));
        while pos < to {
            let input = Input::new(text).span(pos..to);
            let Some(m) = self.candidates.search(&input) else {
                break;
            };
            let start = m.start();
            let mut next = start + 1;
            // Leftmost-first: no kind before the matched pattern matches at `start`, and
            // the matched one's end is known unless the window cut it; later kinds are
            // searched only when that one fails validation.
            let first = m.pattern().as_usize();
            for (i, (kind, re)) in self.each.iter().enumerate().skip(first) {
                let end = if i == first && m.end() < to {
                    m.end()
                } else {
                    let anchored = Input::new(text)
                        .span(start..text.len())
                        .anchored(Anchored::Yes);
                    let Some(cm) = re.search(&anchored) else {
                        continue;
                    };
                    cm.end()
                };
                if let Some((entity, end, score)) = validate(*kind, text, start, end) {
                    if let Some(entity) = entity {
                        out.push(Finding {
                            entity,
                            start,
                            end,
                            score,
                        });
                    }
                    next = end.max(start + 1);
                    break;
                }
            }
            pos = next;
            while !text.is_char_boundary(pos) {
                pos += 1;
            }
        }
    }

    fn addresses(&self, text: &str, windows: &[(usize, usize)], out: &mut Vec<Finding>) {
        let taken = sorted_spans(out);
        // Every address has a house number, so it ends in a window; street names
        // reach at most a few words back from it.
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for &(from, to) in windows {
            let mut s = from.saturating_sub(48);
            while !text.is_char_boundary(s) {
                s += 1;
            }
            match spans.last_mut() {
                Some(last) if s <= last.1 => last.1 = to,
                _ => spans.push((s, to)),
            }
        }
        let mut found = Vec::new();
        let mut last_end = 0;
        for (from, to) in spans {
            let mut pos = from.max(last_end);
            // A city name may follow the postcode.
            let mut limit = (to + 40).min(text.len());
            while !text.is_char_boundary(limit) {
                limit += 1;
            }
            while pos < to {
                let Some(m) = self.addresses.search(&Input::new(text).span(pos..limit)) else {
                    break;
                };
                if m.start() >= to {
                    break;
                }
                found.push(m);
                pos = m.end().max(pos + 1);
                last_end = m.end();
            }
        }
        for m in found {
            let end = trim_end(text, m.start(), m.end());
            if !overlaps(&taken, m.start(), end) {
                out.push(Finding {
                    entity: EntityType::Address,
                    start: m.start(),
                    end,
                    score: 0.85,
                });
            }
        }
    }

    fn names(&self, text: &str, out: &mut Vec<Finding>) {
        use gazetteer::{kinds, CITY, FIRST, LAST, TITLE};
        let taken = sorted_spans(out);
        let words = words(text);
        let word = |i: usize| &text[words[i].0..words[i].1];
        let cap = |i: usize| i < words.len() && capitalised(word(i));
        let is = |i: usize, flag: u8| i < words.len() && kinds(word(i)) & flag != 0;
        // Two words are one name only when nothing but a space separates them.
        let adjacent = |i: usize| {
            words.get(i + 1).is_some_and(|&(s, _)| {
                text[words[i].1..s].bytes().all(|b| b == b' ') && s - words[i].1 <= 2
            })
        };
        let mut i = 0;
        while i < words.len() {
            let (s, e) = words[i];
            let w = word(i);
            if !capitalised(w) || overlaps(&taken, s, e) {
                i += 1;
                continue;
            }
            let kind = kinds(w);
            let after_title = kind & TITLE != 0 && {
                let dot = text[e..].starts_with('.');
                let gap = &text[e + usize::from(dot)
                    ..words
                        .get(i + 1)
                        .map_or(e, |w| w.0)
                        .max(e + usize::from(dot))];
                gap.bytes().all(|b| b == b' ') && !gap.is_empty()
            };
            if after_title && cap(i + 1) {
                // Title, then one or two capitalised words (another title may follow: "Frau Dr. Weber").
                let mut j = i + 1;
                while is(j, TITLE) && cap(j + 1) {
                    j += 1;
                }
                let mut k = j;
                if adjacent(k) && cap(k + 1) && (is(k, FIRST) || is(k + 1, LAST)) {
                    k += 1;
                }
                push_unless_taken(
                    out,
                    &taken,
                    EntityType::Person,
                    words[j].0,
                    words[k].1,
                    0.85,
                );
                i = k + 1;
                continue;
            }
            if kind & FIRST != 0 {
                let mut k = i;
                // Given names may pair ("Anna Lena"), then an optional particle and a family name.
                while adjacent(k) && cap(k + 1) && is(k + 1, FIRST) && k - i < 2 {
                    k += 1;
                }
                if adjacent(k) {
                    let next = word(k + 1);
                    if matches!(next, "von" | "van" | "de" | "di" | "da" | "del" | "zu")
                        && adjacent(k + 1)
                        && cap(k + 2)
                    {
                        k += 2;
                    } else if capitalised(next)
                        && kinds(next) & (CITY | TITLE) == 0
                        && !is_common_word(next)
                    {
                        k += 1;
                    }
                }
                let score = if k > i { 0.85 } else { 0.6 };
                push_unless_taken(out, &taken, EntityType::Person, s, words[k].1, score);
                i = k + 1;
                continue;
            }
            if kind & CITY != 0 {
                push_unless_taken(out, &taken, EntityType::Location, s, e, 0.7);
            }
            i += 1;
        }
    }
}

/// Regions that can hold a structured identifier: runs of whitespace-separated
/// tokens with a digit (one word without digits may bridge two such tokens, as
/// in "12. März 1985"), each with the token before it ("IBAN", "March"), and
/// tokens with `@`, `://` or `www.`. Everything else is prose the candidate
/// automaton never needs to read; the scan below runs at memory speed.
fn windows(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut prev_token: Option<usize> = None;
    // (window start, end of last digit token, pending bridge token allowed)
    let mut open: Option<(usize, usize, bool)> = None;
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let (mut digit, mut special) = (false, false);
        while i < b.len() && !b[i].is_ascii_whitespace() {
            match b[i] {
                b'0'..=b'9' => digit = true,
                b'@' => special = true,
                b'/' if b.get(i + 1) == Some(&b'/') => special = true,
                b'w' | b'W' if b[i..].len() >= 4 && b[i..i + 4].eq_ignore_ascii_case(b"www.") => {
                    special = true
                }
                _ => {}
            }
            i += 1;
        }
        let end = i;
        // Long tokens may be credentials, which need not hold a digit.
        special |= end - start >= 20;
        if digit || special {
            match open.as_mut() {
                Some((_, last, bridge)) => {
                    *last = end;
                    *bridge = true;
                }
                None => open = Some((prev_token.unwrap_or(start), end, true)),
            }
        } else if let Some((ws, last, bridge)) = open {
            if bridge && end - start <= 12 {
                open = Some((ws, last, false));
            } else {
                out.push((ws, last));
                open = None;
            }
        }
        prev_token = Some(start);
    }
    if let Some((ws, last, _)) = open {
        out.push((ws, last));
    }
    out
}

/// Capitalised sentence words that follow a first name without being a family name.
fn is_common_word(w: &str) -> bool {
    matches!(
        w,
        "Und"
            | "And"
            | "Or"
            | "Oder"
            | "The"
            | "Der"
            | "Die"
            | "Das"
            | "Sie"
            | "Ich"
            | "Wir"
            | "We"
            | "I"
            | "You"
            | "Hi"
            | "Hallo"
            | "Dear"
            | "Liebe"
            | "Lieber"
            | "Team"
            | "GmbH"
            | "AG"
            | "Inc"
            | "Ltd"
    )
}

fn push_unless_taken(
    out: &mut Vec<Finding>,
    taken: &[(usize, usize)],
    entity: EntityType,
    start: usize,
    end: usize,
    score: f32,
) {
    if !overlaps(taken, start, end) {
        out.push(Finding {
            entity,
            start,
            end,
            score,
        });
    }
}

/// Whether `start..end` overlaps any span of `taken` (sorted by start, non-overlapping).
fn overlaps(taken: &[(usize, usize)], start: usize, end: usize) -> bool {
    // The first span that ends after `start` is the only candidate.
    let i = taken.partition_point(|&(_, e)| e <= start);
    taken.get(i).is_some_and(|&(s, _)| s < end)
}

fn sorted_spans(out: &[Finding]) -> Vec<(usize, usize)> {
    let mut v: Vec<(usize, usize)> = out.iter().map(|f| (f.start, f.end)).collect();
    v.sort_unstable();
    v
}

fn capitalised(w: &str) -> bool {
    let mut chars = w.chars();
    chars.next().is_some_and(char::is_uppercase) && chars.next().is_some_and(char::is_lowercase)
}

/// Byte spans of words: letters, with inner hyphens and apostrophes.
pub(crate) fn words(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let b = text.as_bytes();
    let mut it = text.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        let inner = (c == '-' || c == '\'')
            && start.is_some()
            && it.peek().is_some_and(|(_, n)| n.is_alphabetic());
        if c.is_alphabetic() || inner {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push((s, i));
        }
    }
    if let Some(s) = start {
        out.push((s, b.len()));
    }
    out
}

/// Trailing punctuation is not part of a URL or address.
fn trim_end(text: &str, start: usize, mut end: usize) -> usize {
    while end > start {
        let Some(c) = text[..end].chars().next_back() else {
            break;
        };
        if matches!(
            c,
            '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '\'' | '"' | ' ' | '\n'
        ) {
            if c == ')' && text[start..end].contains('(') {
                break;
            }
            end -= c.len_utf8();
        } else {
            break;
        }
    }
    end
}

/// Up to `n` bytes before `at`, lower-cased ASCII, starting on a char boundary.
fn before(text: &str, at: usize, n: usize) -> String {
    let mut s = at.saturating_sub(n);
    while !text.is_char_boundary(s) {
        s += 1;
    }
    text[s..at].to_lowercase()
}

/// Whether a needle starts a word somewhere in `hay` ("tel" in "Tel.:" but not in "Bestellung").
fn contains_any(hay: &str, needles: &[&str]) -> bool {
    // One walk over the word starts: a substring searcher per needle costs more to
    // build than these few dozen bytes of context take to read.
    let mut prev_alnum = false;
    for (i, c) in hay.char_indices() {
        let b = hay.as_bytes()[i];
        if !prev_alnum
            && needles
                .iter()
                .any(|n| n.as_bytes().first() == Some(&b) && hay[i..].starts_with(n))
        {
            return true;
        }
        prev_alnum = c.is_alphanumeric();
    }
    false
}

const DOB_CONTEXT: &[&str] = &[
    "born",
    "birth",
    "dob",
    "d.o.b",
    "geboren",
    "geb.",
    "geburtsdatum",
    "geburtstag",
    "né ",
    "née",
    "naissance",
    "nacido",
    "nacida",
    "nato",
    "nata",
    "nascita",
    "fecha de nacimiento",
];
const PASSPORT_CONTEXT: &[&str] = &[
    "passport",
    "reisepass",
    "pass-nr",
    "passnummer",
    "pass nr",
    "ausweis",
    "personalausweis",
    "id card",
    "id number",
    "id no",
    "id-nr",
    "passeport",
    "pasaporte",
    "passaporto",
    "document number",
    "dokumentennummer",
];
const PHONE_CONTEXT: &[&str] = &[
    "tel",
    "phone",
    "mobil",
    "handy",
    "fax",
    "call",
    "ruf",
    "anruf",
    "whatsapp",
    "contact",
    "kontakt",
    "erreichbar",
    "reach",
];
const NOT_PHONE_CONTEXT: &[&str] = &[
    "bestell", "order", "rechnung", "invoice", "artikel", "article", "sku", "kunden", "customer",
    "ticket", "ref", "auftrag", "tracking", "sendung", "plz", "nr.", "no.", "eur", "€",
];

fn digit_count(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

/// Keeps a candidate: `Some((Some(entity), end, score))` to report,
/// `Some((None, end, _))` to consume the span without reporting it (a plain date),
/// `None` when this kind does not hold here.
fn validate(
    kind: Kind,
    text: &str,
    start: usize,
    end: usize,
) -> Option<(Option<EntityType>, usize, f32)> {
    let s = &text[start..end];
    let report = |e: EntityType, end: usize, score: f32| Some((Some(e), end, score));
    match kind {
        Kind::Secret => report(EntityType::Secret, end, 1.0),
        Kind::UsSsn => checks::us_ssn(s).then_some((Some(EntityType::UsSsn), end, 0.9)),
        Kind::Email => report(EntityType::Email, end, 1.0),
        Kind::Url => {
            let end = trim_end(text, start, end);
            (end - start > 7).then_some((Some(EntityType::Url), end, 0.95))
        }
        Kind::Iban => match checks::iban_prefix(s) {
            Some(n) => report(EntityType::Iban, start + n, 1.0),
            // IBAN-shaped with a wrong check: consumed, so its digit groups are not read as a phone.
            None if checks::iban_shaped(s) => Some((None, end, 0.0)),
            None => None,
        },
        Kind::Vat => checks::vat_id(s).then_some((Some(EntityType::VatId), end, 1.0)),
        Kind::SocialSecurity => {
            checks::de_social_security(s).then_some((Some(EntityType::DeSocialSecurity), end, 1.0))
        }
        Kind::HealthInsurance => checks::de_health_insurance(s).then_some((
            Some(EntityType::DeHealthInsurance),
            end,
            0.95,
        )),
        Kind::Card => {
            if checks::credit_card(s) {
                report(EntityType::CreditCard, end, 1.0)
            } else if s.len() >= 19
                && s.as_bytes()[4] == s.as_bytes()[9]
                && matches!(s.as_bytes()[4], b' ' | b'-')
            {
                // Four groups of four with a wrong check digit: a broken card number,
                // consumed so its groups are not read as a phone number.
                Some((None, end, 0.0))
            } else {
                None
            }
        }
        Kind::TaxId => {
            // Eleven digits pass the check by chance 1 in 11 times; a phone context wins.
            (checks::de_tax_id(s) && !contains_any(&before(text, start, 24), PHONE_CONTEXT))
                .then_some((Some(EntityType::DeTaxId), end, 0.95))
        }
        Kind::Ipv4 => {
            let followed = text[end..].starts_with('.')
                && text[end + 1..].starts_with(|c: char| c.is_ascii_digit());
            let preceded = text[..start].ends_with('.');
            (checks::ipv4(s) && !followed && !preceded).then_some((
                Some(EntityType::IpAddress),
                end,
                0.95,
            ))
        }
        Kind::Ipv6 => checks::ipv6(s).then_some((Some(EntityType::IpAddress), end, 0.95)),
        Kind::Date => {
            let valid = parse_date(s).is_some_and(|(d, m, y)| checks::plausible_date(d, m, y));
            if !valid {
                return None;
            }
            let ctx = before(text, start, 40);
            let mut after_end = (end + 24).min(text.len());
            while !text.is_char_boundary(after_end) {
                after_end -= 1;
            }
            let after = text[end..after_end].to_lowercase();
            if contains_any(&ctx, DOB_CONTEXT)
                || contains_any(&after, &["geboren", "born", "né", "nacido", "nato"])
            {
                report(EntityType::DateOfBirth, end, 0.9)
            } else {
                Some((None, end, 0.0))
            }
        }
        Kind::Passport => {
            let ctx = before(text, start, 40);
            let mixed = s.bytes().any(|b| b.is_ascii_digit());
            (mixed && contains_any(&ctx, PASSPORT_CONTEXT)).then_some((
                Some(EntityType::Passport),
                end,
                0.85,
            ))
        }
        Kind::Phone => {
            // The extension does not count towards the number's length.
            let main = s.find(['x', 'e', 'D']).map_or(s, |i| &s[..i]);
            let n = digit_count(main);
            let international = s.starts_with('+');
            let ok_len = if international {
                (8..=15).contains(&n)
            } else {
                (7..=13).contains(&n)
            };
            if !ok_len {
                return None;
            }
            let ctx = before(text, start, 24);
            let positive = contains_any(&ctx, PHONE_CONTEXT);
            if !positive && contains_any(&ctx, NOT_PHONE_CONTEXT) {
                return None;
            }
            // A bare run of digits not starting with 0 or + is a phone number only when introduced as one.
            let bare = s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0');
            if bare && !positive {
                return None;
            }
            // A bare run of digits without a leading 0 or + is not a phone number.
            let score = if international || positive {
                0.95
            } else {
                0.75
            };
            report(EntityType::Phone, end, score)
        }
    }
}

/// Day, month, four-digit year of a date the Date pattern matched.
fn parse_date(s: &str) -> Option<(u32, u32, u32)> {
    let nums: Vec<u32> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect();
    let month_name = month_of(s);
    match (nums.as_slice(), month_name) {
        ([y, m, d], None) if *y >= 1000 => Some((*d, *m, *y)),
        ([d, m, y], None) => Some((*d, *m, *y)),
        ([a, y], Some(m)) => Some((*a, m, *y)),
        _ => None,
    }
}

fn month_of(s: &str) -> Option<u32> {
    let l = s.to_lowercase();
    const NAMES: [(&str, u32); 14] = [
        ("jan", 1),
        ("feb", 2),
        ("mär", 3),
        ("mae", 3),
        ("mar", 3),
        ("apr", 4),
        ("mai", 5),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("nov", 11),
        ("de", 12),
    ];
    if l.contains("oct") || l.contains("okt") {
        return Some(10);
    }
    NAMES.iter().find(|(n, _)| l.contains(n)).map(|(_, m)| *m)
}

/// Converts byte spans of `text` into Unicode code-point offsets, one pass.
pub fn to_char_offsets(text: &str, spans: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut points: Vec<usize> = spans.iter().flat_map(|&(s, e)| [s, e]).collect();
    points.sort_unstable();
    points.dedup();
    let mut map = std::collections::HashMap::with_capacity(points.len());
    let (mut byte, mut chars) = (0usize, 0usize);
    for p in points {
        chars += text.get(byte..p).map_or(0, |t| t.chars().count());
        byte = p;
        map.insert(p, chars);
    }
    spans.iter().map(|(s, e)| (map[s], map[e])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(EntityType, &str)> {
        let d = Detector::new().unwrap();
        d.detect(text)
            .into_iter()
            .map(|f| (f.entity, &text[f.start..f.end]))
            .collect()
    }

    #[test]
    fn structured_types() {
        let t = "Mail anna.schmidt@example.de, IBAN DE89 3704 0044 0532 0130 00, Karte 4111 1111 1111 1111, \
                 Server 192.168.10.1, USt-IdNr. DE136695976, Tel. +49 30 1234567, https://example.org/a?b=1.";
        let f = found(t);
        assert!(
            f.contains(&(EntityType::Email, "anna.schmidt@example.de")),
            "{f:?}"
        );
        assert!(
            f.contains(&(EntityType::Iban, "DE89 3704 0044 0532 0130 00")),
            "{f:?}"
        );
        assert!(
            f.contains(&(EntityType::CreditCard, "4111 1111 1111 1111")),
            "{f:?}"
        );
        assert!(
            f.contains(&(EntityType::IpAddress, "192.168.10.1")),
            "{f:?}"
        );
        assert!(f.contains(&(EntityType::VatId, "DE136695976")), "{f:?}");
        assert!(f.contains(&(EntityType::Phone, "+49 30 1234567")), "{f:?}");
        assert!(
            f.contains(&(EntityType::Url, "https://example.org/a?b=1")),
            "{f:?}"
        );
        let f = found("Mobile 220.737.2076x83231, or call (731)321-5819.");
        assert!(
            f.contains(&(EntityType::Phone, "220.737.2076x83231")),
            "{f:?}"
        );
        assert!(f.contains(&(EntityType::Phone, "(731)321-5819")), "{f:?}");
    }

    #[test]
    fn us_numbers_and_credentials() {
        let t = "SSN 536-22-1450, ITIN 912-34-5678, key AKIAIOSFODNN7EXAMPLE, \
                 token ghp_EXAMPLENOTAREALGITHUBTOKEN0000000000 and xoxb-00000-00000-EXAMPLENOTAREALTOKEN, \
                 OpenAI sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD.";
        let f = found(t);
        for (e, v) in [
            (EntityType::UsSsn, "536-22-1450"),
            (EntityType::UsSsn, "912-34-5678"),
            (EntityType::Secret, "AKIAIOSFODNN7EXAMPLE"),
            (
                EntityType::Secret,
                "ghp_EXAMPLENOTAREALGITHUBTOKEN0000000000",
            ),
            (EntityType::Secret, "xoxb-00000-00000-EXAMPLENOTAREALTOKEN"),
            (
                EntityType::Secret,
                "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
            ),
        ] {
            assert!(f.contains(&(e, v)), "{v}: {f:?}");
        }
        // Not SSNs: impossible areas, groups and serials, the textbook examples, dates.
        for t in [
            "000-12-3456",
            "666-12-3456",
            "536-00-1450",
            "536-22-0000",
            "123-45-6789",
            "078-05-1120",
            "2024-11-28",
        ] {
            assert!(
                !found(t).iter().any(|(e, _)| *e == EntityType::UsSsn),
                "{t}"
            );
        }
        // Ordinary long words are not credentials.
        assert!(found("internationalisation-and-localisation-guidelines")
            .iter()
            .all(|(e, _)| *e != EntityType::Secret));
    }

    #[test]
    fn german_identifiers_and_context() {
        let f = found("Steuer-ID 86095742719, RV-Nummer 15070649C103, KVNR A123456780, geboren am 12.03.1985, Reisepass C01X00T47");
        assert!(f.contains(&(EntityType::DeTaxId, "86095742719")), "{f:?}");
        assert!(
            f.contains(&(EntityType::DeSocialSecurity, "15070649C103")),
            "{f:?}"
        );
        assert!(
            f.contains(&(EntityType::DeHealthInsurance, "A123456780")),
            "{f:?}"
        );
        assert!(
            f.contains(&(EntityType::DateOfBirth, "12.03.1985")),
            "{f:?}"
        );
        assert!(f.contains(&(EntityType::Passport, "C01X00T47")), "{f:?}");
    }

    #[test]
    fn invalid_checksums_and_plain_numbers_are_not_pii() {
        let f = found("Card 4111 1111 1111 1112, IBAN DE89 3704 0044 0532 0130 01, Bestellnummer 0123456789, Termin am 12.03.2025, Version 1.2.3.4.5");
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn names_and_addresses() {
        let f = found("Sehr geehrte Frau Dr. Weber, Ihr Termin bei Thomas Müller in der Hauptstraße 5, 10115 Berlin.");
        assert!(f.contains(&(EntityType::Person, "Weber")), "{f:?}");
        assert!(f.contains(&(EntityType::Person, "Thomas Müller")), "{f:?}");
        assert!(
            f.contains(&(EntityType::Address, "Hauptstraße 5, 10115 Berlin")),
            "{f:?}"
        );
        let f = found("Ship to 1600 Pennsylvania Avenue, Washington, DC 20500 for Mr. John Smith.");
        assert!(
            f.contains(&(
                EntityType::Address,
                "1600 Pennsylvania Avenue, Washington, DC 20500"
            )),
            "{f:?}"
        );
        assert!(f.contains(&(EntityType::Person, "John Smith")), "{f:?}");
    }

    #[test]
    fn code_point_offsets() {
        let t = "Grüße an anna@example.de";
        let d = Detector::new().unwrap();
        let f = d.detect(t);
        let spans: Vec<_> = f.iter().map(|f| (f.start, f.end)).collect();
        assert_eq!(to_char_offsets(t, &spans), vec![(9, 24)]);
    }
}
