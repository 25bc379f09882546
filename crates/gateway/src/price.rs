//! The price catalogue: what a provider charges per million tokens, read from TOML, and the
//! exact cost of one call's usage in integer micro-units.
//!
//! A price is written as a decimal string of the account currency per million tokens
//! (`"0.15"`), parsed exactly into micro-units per million tokens. A call's cost is the sum
//! over its token kinds of `tokens × price`, divided by one million and rounded half up
//! once, so the cost of a call is one integer and roll-ups are sums of integers.

use regelkreis_core::Money;
use serde::Deserialize;
use std::collections::HashMap;

/// The catalogue shipped with the binary.
pub const DEFAULT_PRICES: &str = include_str!("../prices.toml");

/// Tokens of one call, as the provider reported them (or as estimated, see `estimated`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// All prompt tokens, cached and cache writes included (OpenAI's `prompt_tokens`).
    pub prompt_tokens: u64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cached_tokens: u64,
    /// Prompt tokens written to the provider's prompt cache (Anthropic).
    pub cache_write_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// True when the provider reported no usage and the gateway counted the tokens itself.
    pub estimated: bool,
}

impl Usage {
    /// Adds another call's tokens.
    pub fn add(&mut self, other: &Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.cached_tokens += other.cached_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.completion_tokens += other.completion_tokens;
        self.estimated |= other.estimated;
    }
}

/// Prices of one model, in micro-units per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Price {
    /// Uncached prompt tokens.
    pub input: u64,
    /// Prompt tokens read from the provider's cache.
    pub cached_input: u64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write: u64,
    /// Completion tokens.
    pub output: u64,
}

impl Price {
    /// The exact cost of a call's usage.
    pub fn cost(&self, usage: &Usage) -> Money {
        let cached = usage.cached_tokens.min(usage.prompt_tokens);
        let writes = usage.cache_write_tokens.min(usage.prompt_tokens - cached);
        let plain = usage.prompt_tokens - cached - writes;
        let total: u128 = plain as u128 * self.input as u128
            + cached as u128 * self.cached_input as u128
            + writes as u128 * self.cache_write as u128
            + usage.completion_tokens as u128 * self.output as u128;
        let micros = (total + 500_000) / 1_000_000;
        Money::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
    }
}

/// The catalogue could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    /// Not TOML of the expected shape.
    #[error("price catalogue: {0}")]
    Toml(#[from] toml::de::Error),
    /// A price is not a non-negative decimal with at most six places.
    #[error("price catalogue: {provider}/{model}: {field} = {value:?} is not a decimal amount with at most six decimal places")]
    Amount {
        /// The provider table.
        provider: String,
        /// The model.
        model: String,
        /// The field.
        field: &'static str,
        /// What was written.
        value: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceEntry {
    input: String,
    output: String,
    #[serde(default)]
    cached_input: Option<String>,
    #[serde(default)]
    cache_write: Option<String>,
}

/// Prices by provider name and model name.
#[derive(Debug, Clone, Default)]
pub struct PriceCatalogue {
    prices: HashMap<String, HashMap<String, Price>>,
}

impl PriceCatalogue {
    /// Parses `[provider."model"] input = "0.15" output = "0.60" cached_input = "0.075"`
    /// (amounts per million tokens). Cached input defaults to the input price, cache writes
    /// to the input price too.
    pub fn from_toml(text: &str) -> Result<Self, PriceError> {
        let raw: HashMap<String, HashMap<String, PriceEntry>> = toml::from_str(text)?;
        let mut prices = HashMap::new();
        for (provider, models) in raw {
            let mut table = HashMap::new();
            for (model, e) in models {
                let amount = |field: &'static str, v: &str| {
                    parse_micros(v).ok_or_else(|| PriceError::Amount {
                        provider: provider.clone(),
                        model: model.clone(),
                        field,
                        value: v.chars().take(40).collect(),
                    })
                };
                let input = amount("input", &e.input)?;
                let price = Price {
                    input,
                    output: amount("output", &e.output)?,
                    cached_input: match &e.cached_input {
                        Some(v) => amount("cached_input", v)?,
                        None => input,
                    },
                    cache_write: match &e.cache_write {
                        Some(v) => amount("cache_write", v)?,
                        None => input,
                    },
                };
                table.insert(model, price);
            }
            prices.insert(provider, table);
        }
        Ok(PriceCatalogue { prices })
    }

    /// The shipped catalogue.
    pub fn builtin() -> Self {
        // The shipped file is checked by a test; an error here cannot happen at run time.
        Self::from_toml(DEFAULT_PRICES).unwrap_or_default()
    }

    /// Entries of `other` replace or extend this catalogue's.
    pub fn merge(&mut self, other: PriceCatalogue) {
        for (provider, models) in other.prices {
            self.prices.entry(provider).or_default().extend(models);
        }
    }

    /// The price of a model at a provider kind or name, if listed.
    pub fn get(&self, provider: &str, model: &str) -> Option<Price> {
        self.prices.get(provider)?.get(model).copied()
    }

    /// Every model listed for a provider.
    pub fn models(&self, provider: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .prices
            .get(provider)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

/// `"1.5"` → 1_500_000. At most six decimal places, no sign, no exponent.
pub fn parse_micros(s: &str) -> Option<u64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if frac.len() > 6
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let w: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut f: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..6 {
        f *= 10;
    }
    w.checked_mul(1_000_000)?.checked_add(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_exactly() {
        assert_eq!(parse_micros("0.15"), Some(150_000));
        assert_eq!(parse_micros("15"), Some(15_000_000));
        assert_eq!(parse_micros(".075"), Some(75_000));
        assert_eq!(parse_micros("0.0000001"), None);
        assert_eq!(parse_micros("-1"), None);
        assert_eq!(parse_micros("1e3"), None);
        assert_eq!(parse_micros(""), None);
    }

    #[test]
    fn cost_is_exact_and_rounds_once() {
        let p = Price {
            input: 150_000,
            cached_input: 75_000,
            cache_write: 187_500,
            output: 600_000,
        };
        // 1,000 prompt (200 cached), 500 completion:
        // 800 × 0.15 + 200 × 0.075 + 500 × 0.60 = 120 + 15 + 300 = 435 micro-units.
        let u = Usage {
            prompt_tokens: 1000,
            cached_tokens: 200,
            completion_tokens: 500,
            ..Usage::default()
        };
        assert_eq!(p.cost(&u), Money(435));
        // 3 tokens × 0.15 = 0.45 micro → 0; 4 × 0.15 = 0.6 → 1 (half up once, not per kind).
        let u = |n| Usage {
            prompt_tokens: n,
            ..Usage::default()
        };
        assert_eq!(p.cost(&u(3)), Money(0));
        assert_eq!(p.cost(&u(4)), Money(1));
        // Cached tokens beyond the prompt cannot make a negative count.
        let odd = Usage {
            prompt_tokens: 10,
            cached_tokens: 50,
            cache_write_tokens: 50,
            ..Usage::default()
        };
        assert_eq!(p.cost(&odd), Money(1));
    }

    #[test]
    fn shipped_catalogue_parses() {
        let c = PriceCatalogue::from_toml(DEFAULT_PRICES).unwrap();
        assert!(c.get("openai", "gpt-4o-mini").is_some());
        assert!(c.get("anthropic", "claude-sonnet-4-5").is_some());
        assert_eq!(
            c.get("local", "local-extractive").map(|p| p.output),
            Some(0)
        );
    }

    #[test]
    fn bad_amounts_name_their_place() {
        let e = PriceCatalogue::from_toml("[openai.\"m\"]\ninput = \"abc\"\noutput = \"1\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("openai/m") && e.contains("input"), "{e}");
    }
}
