//! Cost roll-ups and budgets. Every call's cost is an integer; roll-ups are sums. A budget
//! is checked and reserved before the call (with the call's largest plausible cost) and
//! settled with the real cost after, under one lock, so concurrent calls cannot together
//! spend past a limit by more than one call's under-estimate.

use crate::config::{BudgetConfig, BudgetScope};
use crate::price::{parse_micros, Usage};
use regelkreis_core::{Money, Tags};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

/// Who a call is for: tenant, key and tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Tenant id.
    pub tenant: String,
    /// API key id.
    pub key: String,
    /// Feature and campaign.
    pub tags: Tags,
}

/// Sums over a set of calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Calls answered.
    pub requests: u64,
    /// Of which from the gateway's cache.
    pub cache_hits: u64,
    /// Of which had estimated usage.
    pub estimated: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Prompt tokens read from provider caches.
    pub cached_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Cost in micro-units.
    pub cost_micros: i64,
}

impl Totals {
    fn add(&mut self, u: &Usage, cost: Money, cache_hit: bool) {
        self.requests += 1;
        self.cache_hits += u64::from(cache_hit);
        self.estimated += u64::from(u.estimated);
        self.prompt_tokens += u.prompt_tokens;
        self.cached_tokens += u.cached_tokens;
        self.completion_tokens += u.completion_tokens;
        self.cost_micros += cost.micros();
    }
}

/// A tenant's roll-ups.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CostReport {
    /// All calls.
    pub total: Totals,
    /// By API key id.
    pub by_key: BTreeMap<String, Totals>,
    /// By feature tag (`""` for untagged calls).
    pub by_feature: BTreeMap<String, Totals>,
    /// By campaign tag (`""` for untagged calls).
    pub by_campaign: BTreeMap<String, Totals>,
    /// By `provider/model`.
    pub by_model: BTreeMap<String, Totals>,
    /// Budgets and what is spent of them.
    pub budgets: Vec<BudgetState>,
}

/// One budget's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetState {
    /// What it limits.
    pub scope: BudgetScope,
    /// The key id, feature or campaign.
    pub name: String,
    /// Limit in micro-units.
    pub limit_micros: i64,
    /// Spent.
    pub spent_micros: i64,
    /// Held by calls in flight.
    pub reserved_micros: i64,
}

type BudgetKey = (String, BudgetScope, String);

/// A budget refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("budget exhausted: the {scope} budget{named} allows {limit}, {spent} is spent and {reserved} is held by calls in flight; this call may cost up to {estimate}")]
pub struct BudgetExceeded {
    /// Which budget.
    pub scope: &'static str,
    /// ` 'name'` or empty.
    pub named: String,
    /// Its limit.
    pub limit: Money,
    /// Spent.
    pub spent: Money,
    /// Reserved.
    pub reserved: Money,
    /// The call's estimate.
    pub estimate: Money,
}

/// Money held for a call until it settles.
#[derive(Debug, Default)]
pub struct Reservation {
    keys: Vec<BudgetKey>,
    amount: i64,
}

#[derive(Default)]
struct State {
    reports: HashMap<String, CostReport>,
    budgets: HashMap<BudgetKey, BudgetState>,
}

/// Roll-ups and budgets of every tenant.
#[derive(Default)]
pub struct Accounts {
    state: Mutex<State>,
}

/// A budget's limit could not be read.
#[derive(Debug, thiserror::Error)]
#[error("budget for tenant {tenant}: limit {limit:?} is not a decimal amount with at most six decimal places")]
pub struct BudgetConfigError {
    tenant: String,
    limit: String,
}

fn keys_for(c: &Caller) -> [Option<BudgetKey>; 4] {
    let t = || c.tenant.clone();
    [
        Some((t(), BudgetScope::Tenant, String::new())),
        Some((t(), BudgetScope::Key, c.key.clone())),
        c.tags
            .feature
            .clone()
            .map(|f| (t(), BudgetScope::Feature, f)),
        c.tags
            .campaign
            .clone()
            .map(|f| (t(), BudgetScope::Campaign, f)),
    ]
}

impl Accounts {
    /// Accounts with these budgets.
    pub fn new(budgets: &[BudgetConfig]) -> Result<Self, BudgetConfigError> {
        let mut state = State::default();
        for b in budgets {
            let limit = parse_micros(&b.limit).ok_or_else(|| BudgetConfigError {
                tenant: b.tenant.clone(),
                limit: b.limit.clone(),
            })?;
            let name = match b.scope {
                BudgetScope::Tenant => String::new(),
                _ => b.name.clone().unwrap_or_default(),
            };
            state.budgets.insert(
                (b.tenant.clone(), b.scope, name.clone()),
                BudgetState {
                    scope: b.scope,
                    name,
                    limit_micros: i64::try_from(limit).unwrap_or(i64::MAX),
                    spent_micros: 0,
                    reserved_micros: 0,
                },
            );
        }
        Ok(Accounts {
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds `estimate` on every budget the caller falls under, or refuses.
    pub fn reserve(&self, caller: &Caller, estimate: Money) -> Result<Reservation, BudgetExceeded> {
        let mut g = self.lock();
        let keys: Vec<BudgetKey> = keys_for(caller)
            .into_iter()
            .flatten()
            .filter(|k| g.budgets.contains_key(k))
            .collect();
        for k in &keys {
            let b = &g.budgets[k];
            if b.spent_micros + b.reserved_micros + estimate.micros() > b.limit_micros {
                return Err(BudgetExceeded {
                    scope: b.scope.as_str(),
                    named: if b.name.is_empty() {
                        String::new()
                    } else {
                        format!(" '{}'", b.name)
                    },
                    limit: Money(b.limit_micros),
                    spent: Money(b.spent_micros),
                    reserved: Money(b.reserved_micros),
                    estimate,
                });
            }
        }
        for k in &keys {
            if let Some(b) = g.budgets.get_mut(k) {
                b.reserved_micros += estimate.micros();
            }
        }
        Ok(Reservation {
            keys,
            amount: estimate.micros(),
        })
    }

    /// Records a call: releases its reservation, adds its cost to budgets and roll-ups.
    pub fn record(
        &self,
        caller: &Caller,
        reservation: Reservation,
        model: &str,
        usage: &Usage,
        cost: Money,
        cache_hit: bool,
    ) {
        let mut g = self.lock();
        for k in &reservation.keys {
            if let Some(b) = g.budgets.get_mut(k) {
                b.reserved_micros -= reservation.amount;
            }
        }
        for k in keys_for(caller).into_iter().flatten() {
            if let Some(b) = g.budgets.get_mut(&k) {
                b.spent_micros += cost.micros();
            }
        }
        let r = g.reports.entry(caller.tenant.clone()).or_default();
        r.total.add(usage, cost, cache_hit);
        r.by_key
            .entry(caller.key.clone())
            .or_default()
            .add(usage, cost, cache_hit);
        r.by_feature
            .entry(caller.tags.feature.clone().unwrap_or_default())
            .or_default()
            .add(usage, cost, cache_hit);
        r.by_campaign
            .entry(caller.tags.campaign.clone().unwrap_or_default())
            .or_default()
            .add(usage, cost, cache_hit);
        r.by_model
            .entry(model.to_owned())
            .or_default()
            .add(usage, cost, cache_hit);
    }

    /// Gives a reservation back without spending (the call failed).
    pub fn release(&self, reservation: Reservation) {
        let mut g = self.lock();
        for k in &reservation.keys {
            if let Some(b) = g.budgets.get_mut(k) {
                b.reserved_micros -= reservation.amount;
            }
        }
    }

    /// A tenant's roll-ups and budgets.
    pub fn report(&self, tenant: &str) -> CostReport {
        let g = self.lock();
        let mut r = g.reports.get(tenant).cloned().unwrap_or_default();
        let mut budgets: Vec<BudgetState> = g
            .budgets
            .iter()
            .filter(|(k, _)| k.0 == tenant)
            .map(|(_, b)| b.clone())
            .collect();
        budgets.sort_by(|a, b| (a.scope, &a.name).cmp(&(b.scope, &b.name)));
        r.budgets = budgets;
        r
    }
}

/// `total` split into `n` integer shares that sum to it exactly; share `i` of them.
pub fn share(total: Money, n: u32, i: u32) -> Money {
    let n = i64::from(n.max(1));
    let base = total.micros().div_euclid(n);
    let rest = total.micros().rem_euclid(n);
    Money(base + i64::from(i64::from(i) < rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn caller(feature: Option<&str>) -> Caller {
        Caller {
            tenant: "t1".into(),
            key: "k1".into(),
            tags: Tags {
                feature: feature.map(str::to_owned),
                campaign: None,
            },
        }
    }

    proptest! {
        #[test]
        fn shares_sum_exactly(total in 0i64..10_000_000, n in 1u32..50) {
            let sum: i64 = (0..n).map(|i| share(Money(total), n, i).micros()).sum();
            prop_assert_eq!(sum, total);
        }
    }

    #[test]
    fn budgets_hold_and_settle() {
        let a = Accounts::new(&[BudgetConfig {
            tenant: "t1".into(),
            scope: BudgetScope::Feature,
            name: Some("chat".into()),
            limit: "0.000100".into(),
        }])
        .unwrap();
        let c = caller(Some("chat"));
        let r1 = a.reserve(&c, Money(60)).unwrap();
        // A second call would pass the limit while the first is in flight.
        let e = a.reserve(&c, Money(60)).unwrap_err();
        assert!(e.to_string().contains("feature budget 'chat'"), "{e}");
        // Other features are not limited.
        a.release(a.reserve(&caller(Some("other")), Money(1_000)).unwrap());
        a.record(&c, r1, "m", &Usage::default(), Money(30), false);
        let r2 = a.reserve(&c, Money(60)).unwrap();
        a.record(&c, r2, "m", &Usage::default(), Money(60), false);
        assert!(a.reserve(&c, Money(11)).is_err());
        let rep = a.report("t1");
        assert_eq!(rep.total.cost_micros, 90);
        assert_eq!(rep.budgets[0].spent_micros, 90);
        assert_eq!(rep.budgets[0].reserved_micros, 0);
        assert_eq!(rep.by_feature["chat"].requests, 2);
        assert_eq!(a.report("t2").total.requests, 0);
    }
}
