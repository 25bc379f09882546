//! Which providers a request goes to: routing rules, aliases and tiers resolve a request's
//! model to a chain of targets; a circuit breaker per provider skips providers that keep
//! failing until a trial call succeeds.

use crate::config::{GatewayConfig, RouteRule};
use regelkreis_core::Tags;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One step of a chain: a provider (by index) and its model name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Index into the gateway's providers.
    pub provider: usize,
    /// The provider's model name.
    pub model: String,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The tier, when the model resolved through one.
    pub tier: Option<String>,
    /// Targets in order.
    pub chain: Vec<Target>,
}

/// Tiers, aliases and rules, resolved against the provider list.
#[derive(Debug, Clone)]
pub struct Routes {
    tiers: BTreeMap<String, Vec<Target>>,
    aliases: BTreeMap<String, String>,
    rules: Vec<RouteRule>,
    names: Vec<String>,
    known_models: Vec<Vec<String>>,
}

/// The configuration names something that does not exist.
#[derive(Debug, thiserror::Error)]
#[error("gateway configuration: {0}")]
pub struct RouteConfigError(pub String);

impl Routes {
    /// Resolves the configuration against the providers (by name, in order) and the models
    /// each is known to serve (from the price catalogue).
    pub fn new(
        config: &GatewayConfig,
        names: Vec<String>,
        known_models: Vec<Vec<String>>,
    ) -> Result<Self, RouteConfigError> {
        let target = |s: &str| -> Result<Target, RouteConfigError> {
            let (p, m) = s.split_once('/').ok_or_else(|| {
                RouteConfigError(format!("tier target {s:?} is not 'provider/model'"))
            })?;
            let provider = names
                .iter()
                .position(|n| n == p)
                .ok_or_else(|| RouteConfigError(format!("tier target {s:?}: no provider {p:?}")))?;
            Ok(Target {
                provider,
                model: m.to_owned(),
            })
        };
        let mut tiers = BTreeMap::new();
        for (tier, chain) in &config.tiers {
            if chain.is_empty() {
                return Err(RouteConfigError(format!("tier {tier:?} has no targets")));
            }
            tiers.insert(
                tier.clone(),
                chain.iter().map(|s| target(s)).collect::<Result<_, _>>()?,
            );
        }
        for (alias, tier) in &config.aliases {
            if !tiers.contains_key(tier) {
                return Err(RouteConfigError(format!(
                    "alias {alias:?} names tier {tier:?}, which is not configured"
                )));
            }
        }
        for r in &config.routes {
            if !tiers.contains_key(&r.tier) {
                return Err(RouteConfigError(format!(
                    "a route names tier {:?}, which is not configured",
                    r.tier
                )));
            }
        }
        Ok(Routes {
            tiers,
            aliases: config.aliases.clone(),
            rules: config.routes.clone(),
            names,
            known_models,
        })
    }

    /// The chain for a request naming `model`, tagged `tags`, of about `input_tokens`.
    pub fn resolve(&self, model: &str, tags: &Tags, input_tokens: u64) -> Option<Plan> {
        let tier_plan = |t: &str| {
            self.tiers.get(t).map(|chain| Plan {
                tier: Some(t.to_owned()),
                chain: chain.clone(),
            })
        };
        for r in &self.rules {
            let ok = r.model.as_deref().is_none_or(|m| m == model)
                && r.feature
                    .as_deref()
                    .is_none_or(|f| tags.feature.as_deref() == Some(f))
                && r.campaign
                    .as_deref()
                    .is_none_or(|c| tags.campaign.as_deref() == Some(c))
                && r.min_input_tokens.is_none_or(|n| input_tokens >= n)
                && r.max_input_tokens.is_none_or(|n| input_tokens <= n);
            if ok {
                return tier_plan(&r.tier);
            }
        }
        if let Some(t) = self.aliases.get(model) {
            return tier_plan(t);
        }
        if let Some(p) = tier_plan(model) {
            return Some(p);
        }
        if let Some((p, m)) = model.split_once('/') {
            if let Some(provider) = self.names.iter().position(|n| n == p) {
                return Some(Plan {
                    tier: None,
                    chain: vec![Target {
                        provider,
                        model: m.to_owned(),
                    }],
                });
            }
        }
        let provider = self
            .known_models
            .iter()
            .position(|ms| ms.iter().any(|m| m == model))?;
        Some(Plan {
            tier: None,
            chain: vec![Target {
                provider,
                model: model.to_owned(),
            }],
        })
    }

    /// Every model name a client may send.
    pub fn model_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.tiers.keys().cloned().collect();
        ids.extend(self.aliases.keys().cloned());
        for chain in self.tiers.values() {
            for t in chain {
                ids.push(format!("{}/{}", self.names[t.provider], t.model));
            }
        }
        ids.sort();
        ids.dedup();
        ids
    }
}

/// A provider's circuit: closed (calls pass), open (calls skip it until the cooldown ends),
/// half-open (one trial call passes; its result closes or re-opens the circuit).
#[derive(Debug, Default)]
pub struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    trial: bool,
}

impl Breaker {
    /// Whether a call may go to the provider now.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.open_until {
            None => true,
            Some(t) if now < t => false,
            Some(_) if self.trial => false,
            Some(_) => {
                self.trial = true;
                true
            }
        }
    }

    /// A call succeeded.
    pub fn success(&mut self) {
        *self = Breaker::default();
    }

    /// A call failed in a way that counts against the provider.
    pub fn failure(&mut self, threshold: u32, cooldown: Duration, now: Instant) {
        self.failures += 1;
        self.trial = false;
        if self.failures >= threshold.max(1) {
            self.open_until = Some(now + cooldown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteRule;

    fn routes() -> Routes {
        let mut c = GatewayConfig::default();
        c.tiers.insert(
            "cheap".into(),
            vec!["a/small".into(), "local/local-extractive".into()],
        );
        c.tiers.insert("critical".into(), vec!["b/big".into()]);
        c.aliases.insert("fast".into(), "cheap".into());
        c.routes.push(RouteRule {
            feature: Some("legal".into()),
            tier: "critical".into(),
            ..RouteRule::default()
        });
        c.routes.push(RouteRule {
            model: Some("fast".into()),
            min_input_tokens: Some(1000),
            tier: "critical".into(),
            ..RouteRule::default()
        });
        Routes::new(
            &c,
            vec!["local".into(), "a".into(), "b".into()],
            vec![
                vec![],
                vec!["small".into()],
                vec!["big".into(), "other".into()],
            ],
        )
        .unwrap()
    }

    #[test]
    fn rules_then_aliases_then_tiers_then_names() {
        let r = routes();
        let none = Tags::default();
        let legal = Tags {
            feature: Some("legal".into()),
            campaign: None,
        };
        assert_eq!(
            r.resolve("fast", &none, 10).unwrap().tier.as_deref(),
            Some("cheap")
        );
        assert_eq!(
            r.resolve("fast", &none, 5000).unwrap().tier.as_deref(),
            Some("critical")
        );
        assert_eq!(
            r.resolve("fast", &legal, 10).unwrap().tier.as_deref(),
            Some("critical")
        );
        assert_eq!(r.resolve("cheap", &none, 10).unwrap().chain.len(), 2);
        let direct = r.resolve("b/other", &none, 10).unwrap();
        assert_eq!(
            (direct.chain[0].provider, direct.chain[0].model.as_str()),
            (2, "other")
        );
        assert_eq!(r.resolve("other", &none, 10).unwrap().chain[0].provider, 2);
        assert!(r.resolve("nope", &none, 10).is_none());
        assert!(r.model_ids().contains(&"a/small".to_owned()));
    }

    #[test]
    fn unknown_names_fail_at_start() {
        let mut c = GatewayConfig::default();
        c.tiers.insert("x".into(), vec!["missing/m".into()]);
        assert!(Routes::new(&c, vec!["local".into()], vec![vec![]]).is_err());
        let mut c = GatewayConfig::default();
        c.aliases.insert("a".into(), "nope".into());
        assert!(Routes::new(&c, vec!["local".into()], vec![vec![]]).is_err());
    }

    #[test]
    fn breaker_opens_and_half_opens() {
        let mut b = Breaker::default();
        let t0 = Instant::now();
        let cd = Duration::from_secs(10);
        for _ in 0..3 {
            assert!(b.allow(t0));
            b.failure(3, cd, t0);
        }
        assert!(!b.allow(t0 + Duration::from_secs(1)));
        let later = t0 + Duration::from_secs(11);
        assert!(b.allow(later), "one trial after the cooldown");
        assert!(!b.allow(later), "only one");
        b.failure(3, cd, later);
        assert!(!b.allow(later + Duration::from_secs(1)));
        let much_later = later + Duration::from_secs(11);
        assert!(b.allow(much_later));
        b.success();
        assert!(b.allow(much_later) && b.allow(much_later));
    }
}
