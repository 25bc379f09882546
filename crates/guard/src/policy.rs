//! Versioned TOML policies; a default one is built in.

use crate::brand::BrandRules;
use crate::pii::EntityType;
use crate::redact::Mode;
use crate::tools::ToolRule;
use serde::{Deserialize, Serialize};

/// The built-in policy's source text.
pub const DEFAULT_POLICY: &str = include_str!("../policies/default.toml");

/// A guard policy.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Policy name.
    pub name: String,
    /// Version, raised on every change; recorded with every verdict.
    pub version: u32,
    /// What the policy is for.
    #[serde(default)]
    pub description: String,
    /// PII handling.
    #[serde(default)]
    pub pii: PiiRules,
    /// Injection handling.
    #[serde(default)]
    pub injection: InjectionRules,
    /// Brand and moderation rules.
    #[serde(default)]
    pub brand: BrandRules,
    /// Whitelisted tools.
    #[serde(default)]
    pub tools: Vec<ToolRule>,
}

/// The `[pii]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PiiRules {
    /// Redaction mode.
    #[serde(default)]
    pub mode: Mode,
    /// Entity types to act on (wire names); empty means all.
    #[serde(default)]
    pub entities: Vec<String>,
    /// Findings below this score are ignored.
    #[serde(default = "half")]
    pub min_score: f32,
}

impl Default for PiiRules {
    fn default() -> Self {
        Self {
            mode: Mode::Mask,
            entities: Vec::new(),
            min_score: 0.5,
        }
    }
}

/// The `[injection]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InjectionRules {
    /// Scores at or above block.
    #[serde(default = "half")]
    pub threshold: f32,
}

impl Default for InjectionRules {
    fn default() -> Self {
        Self { threshold: 0.5 }
    }
}

fn half() -> f32 {
    0.5
}

/// A policy that does not parse or does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// TOML syntax or an unknown field.
    #[error("policy: {0}")]
    Toml(String),
    /// An entity name that does not exist.
    #[error("policy: unknown entity type {0:?} in [pii] entities")]
    Entity(String),
    /// A threshold outside 0..=1.
    #[error("policy: {0} must be between 0 and 1")]
    Range(&'static str),
    /// Brand section errors.
    #[error("policy [brand] {0}")]
    Brand(#[from] crate::brand::BrandError),
    /// Tool section errors.
    #[error("policy [[tools]] {0}")]
    Tools(#[from] crate::tools::ToolError),
}

impl Policy {
    /// Parses and checks a policy, compiling its brand patterns and tool schemas once,
    /// so a policy that loads is one a [`crate::Guard`] can be built from: a bad
    /// pattern stops start-up instead of failing the first request.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let p: Policy = toml::from_str(text).map_err(|e| PolicyError::Toml(e.to_string()))?;
        for e in &p.pii.entities {
            if EntityType::from_name(e).is_none() {
                return Err(PolicyError::Entity(e.clone()));
            }
        }
        if !(0.0..=1.0).contains(&p.pii.min_score) {
            return Err(PolicyError::Range("pii.min_score"));
        }
        if !(0.0..=1.0).contains(&p.injection.threshold) {
            return Err(PolicyError::Range("injection.threshold"));
        }
        crate::brand::BrandChecker::new(p.brand.clone())?;
        crate::tools::Whitelist::new(p.tools.clone())?;
        Ok(p)
    }

    /// The built-in default policy.
    pub fn builtin() -> Result<Self, PolicyError> {
        Self::from_toml(DEFAULT_POLICY)
    }

    /// Whether findings of `t` are acted on.
    pub fn covers(&self, t: EntityType) -> bool {
        self.pii.entities.is_empty() || self.pii.entities.iter().any(|e| e == t.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses_and_errors_name_the_problem() {
        let p = Policy::builtin().unwrap();
        assert_eq!((p.name.as_str(), p.version), ("default", 1));
        let e = Policy::from_toml("name = \"x\"\nversion = 1\nbogus = 2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = Policy::from_toml("name = \"x\"\nversion = 1\n[pii]\nentities = [\"SSN\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("SSN"), "{e}");
        assert!(
            Policy::from_toml("name = \"x\"\nversion = 1\n[injection]\nthreshold = 2.0").is_err()
        );
        let e =
            Policy::from_toml("name = \"x\"\nversion = 1\n[brand]\nclaims = [{ pattern = \"(\" }]")
                .unwrap_err()
                .to_string();
        assert!(e.contains("claims[0]"), "{e}");
        let e =
            Policy::from_toml("name = \"x\"\nversion = 1\n[[tools]]\nname = \"t\"\nschema = \"{\"")
                .unwrap_err()
                .to_string();
        assert!(e.contains("not JSON"), "{e}");
    }
}
