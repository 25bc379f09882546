//! Multi-armed bandits that move traffic toward what works: Thompson sampling (Beta for
//! conversions, Gaussian for values), top-two Thompson, UCB1 and epsilon-greedy, and the
//! contextual LinUCB and linear Thompson sampling with online updates. Every policy honours
//! a minimum number of pulls per arm before it exploits.
//!
//! State is plain data ([`ArmState`], [`LinearArm`]) so the server can persist it.

use crate::rng::Rng;

/// What a context-free policy knows about one arm.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArmState {
    /// Times the arm was chosen and rewarded.
    pub pulls: u64,
    /// Σ reward.
    pub reward_sum: f64,
    /// Σ reward².
    pub reward_sq_sum: f64,
}

impl ArmState {
    /// Mean reward so far (0 before the first pull).
    pub fn mean(&self) -> f64 {
        if self.pulls == 0 {
            0.0
        } else {
            self.reward_sum / self.pulls as f64
        }
    }
}

/// A context-free policy.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// Thompson sampling with a Beta(α, β) prior on 0/1 rewards.
    BetaThompson {
        /// Prior successes.
        alpha: f64,
        /// Prior failures.
        beta: f64,
    },
    /// Thompson sampling with a Gaussian posterior on the mean of real-valued rewards.
    GaussianThompson,
    /// Top-two Thompson sampling: with probability `beta` play the first sample's best arm,
    /// else resample until another arm wins.
    TopTwoThompson {
        /// Probability of playing the leader.
        beta: f64,
    },
    /// UCB1: mean + c·√(2 ln t / n).
    Ucb1 {
        /// Exploration scale (1 is the classic UCB1).
        c: f64,
    },
    /// Play a random arm with probability ε, else the best mean.
    EpsilonGreedy {
        /// Exploration probability.
        epsilon: f64,
    },
}

/// A bandit: a policy, its arms and the minimum pulls per arm.
#[derive(Debug, Clone, PartialEq)]
pub struct Bandit {
    /// How arms are chosen.
    pub policy: Policy,
    /// One state per arm.
    pub arms: Vec<ArmState>,
    /// Every arm is pulled this often before the policy decides.
    pub min_pulls: u64,
}

impl Bandit {
    /// A bandit with `arms` fresh arms.
    pub fn new(policy: Policy, arms: usize, min_pulls: u64) -> Self {
        Bandit {
            policy,
            arms: vec![ArmState::default(); arms],
            min_pulls,
        }
    }

    /// Chooses an arm.
    pub fn decide(&self, rng: &mut Rng) -> usize {
        let k = self.arms.len();
        if k <= 1 {
            return 0;
        }
        if let Some((i, _)) = self
            .arms
            .iter()
            .enumerate()
            .filter(|(_, a)| a.pulls < self.min_pulls)
            .min_by_key(|(_, a)| a.pulls)
        {
            return i;
        }
        match &self.policy {
            Policy::BetaThompson { alpha, beta } => self.beta_sample_argmax(rng, *alpha, *beta),
            Policy::GaussianThompson => self.gaussian_sample_argmax(rng),
            Policy::TopTwoThompson { beta } => {
                let leader = self.beta_sample_argmax(rng, 1.0, 1.0);
                if rng.uniform() < *beta {
                    return leader;
                }
                for _ in 0..1_000 {
                    let challenger = self.beta_sample_argmax(rng, 1.0, 1.0);
                    if challenger != leader {
                        return challenger;
                    }
                }
                leader
            }
            Policy::Ucb1 { c } => {
                if let Some(i) = self.arms.iter().position(|a| a.pulls == 0) {
                    return i;
                }
                let total: u64 = self.arms.iter().map(|a| a.pulls).sum();
                let ln_t = (total as f64).ln();
                argmax(
                    self.arms
                        .iter()
                        .map(|a| a.mean() + c * (2.0 * ln_t / a.pulls as f64).sqrt()),
                )
            }
            Policy::EpsilonGreedy { epsilon } => {
                if rng.uniform() < *epsilon {
                    rng.below(k)
                } else {
                    argmax(self.arms.iter().map(ArmState::mean))
                }
            }
        }
    }

    fn beta_sample_argmax(&self, rng: &mut Rng, alpha: f64, beta: f64) -> usize {
        argmax(self.arms.iter().map(|a| {
            let s = a.reward_sum.clamp(0.0, a.pulls as f64);
            rng.beta(alpha + s, beta + a.pulls as f64 - s)
        }))
    }

    fn gaussian_sample_argmax(&self, rng: &mut Rng) -> usize {
        argmax(self.arms.iter().map(|a| {
            let n = a.pulls as f64;
            if a.pulls < 2 {
                return rng.normal() * 1e6;
            }
            let var = ((a.reward_sq_sum - a.reward_sum * a.reward_sum / n) / (n - 1.0)).max(1e-12);
            a.mean() + rng.normal() * (var / n).sqrt()
        }))
    }

    /// Records a reward for an arm. Out-of-range arms and non-finite rewards are ignored
    /// and reported as `false`.
    pub fn reward(&mut self, arm: usize, reward: f64) -> bool {
        match self.arms.get_mut(arm) {
            Some(a) if reward.is_finite() => {
                a.pulls += 1;
                a.reward_sum += reward;
                a.reward_sq_sum += reward * reward;
                true
            }
            _ => false,
        }
    }
}

fn argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Ridge-regression state of one arm of a linear contextual bandit: `A = λI + Σ x xᵀ`
/// (kept as its inverse, updated by Sherman–Morrison) and `b = Σ r x`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearArm {
    /// A⁻¹, row-major d×d.
    pub a_inv: Vec<f64>,
    /// b.
    pub b: Vec<f64>,
}

impl LinearArm {
    /// A fresh arm for `d` features with ridge `lambda`.
    pub fn new(d: usize, lambda: f64) -> Self {
        let mut a_inv = vec![0.0; d * d];
        for i in 0..d {
            a_inv[i * d + i] = 1.0 / lambda;
        }
        LinearArm {
            a_inv,
            b: vec![0.0; d],
        }
    }

    fn dim(&self) -> usize {
        self.b.len()
    }

    /// θ = A⁻¹ b.
    pub fn theta(&self) -> Vec<f64> {
        let d = self.dim();
        (0..d)
            .map(|i| (0..d).map(|j| self.a_inv[i * d + j] * self.b[j]).sum())
            .collect()
    }

    fn a_inv_x(&self, x: &[f64]) -> Vec<f64> {
        let d = self.dim();
        (0..d)
            .map(|i| (0..d).map(|j| self.a_inv[i * d + j] * x[j]).sum())
            .collect()
    }

    /// Adds one observation.
    pub fn update(&mut self, x: &[f64], reward: f64) {
        let d = self.dim();
        let ax = self.a_inv_x(x);
        let denom = 1.0 + x.iter().zip(&ax).map(|(a, b)| a * b).sum::<f64>();
        for i in 0..d {
            for j in 0..d {
                self.a_inv[i * d + j] -= ax[i] * ax[j] / denom;
            }
            self.b[i] += reward * x[i];
        }
    }
}

/// A linear contextual policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinearPolicy {
    /// LinUCB: θᵀx + α √(xᵀA⁻¹x).
    LinUcb {
        /// Exploration width.
        alpha: f64,
    },
    /// Linear Thompson sampling: θ̃ ~ N(θ, v² A⁻¹), play argmax θ̃ᵀx.
    LinThompson {
        /// Posterior scale.
        v: f64,
    },
}

/// A contextual bandit over feature vectors of a fixed dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearBandit {
    /// How arms are chosen.
    pub policy: LinearPolicy,
    /// One ridge state per arm.
    pub arms: Vec<LinearArm>,
}

/// A context has the wrong dimension.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("context has {got} features; this bandit takes {expected}")]
pub struct DimensionError {
    /// Features given.
    pub got: usize,
    /// Features expected.
    pub expected: usize,
}

impl LinearBandit {
    /// A bandit with `arms` arms over `d` features, ridge `lambda`.
    pub fn new(policy: LinearPolicy, arms: usize, d: usize, lambda: f64) -> Self {
        LinearBandit {
            policy,
            arms: vec![LinearArm::new(d, lambda); arms],
        }
    }

    fn check(&self, x: &[f64]) -> Result<(), DimensionError> {
        let expected = self.arms.first().map_or(0, LinearArm::dim);
        if x.len() == expected {
            Ok(())
        } else {
            Err(DimensionError {
                got: x.len(),
                expected,
            })
        }
    }

    /// Chooses an arm for a context.
    pub fn decide(&self, x: &[f64], rng: &mut Rng) -> Result<usize, DimensionError> {
        self.check(x)?;
        Ok(match self.policy {
            LinearPolicy::LinUcb { alpha } => argmax(self.arms.iter().map(|arm| {
                let theta = arm.theta();
                let ax = arm.a_inv_x(x);
                let mean: f64 = theta.iter().zip(x).map(|(t, xi)| t * xi).sum();
                let width: f64 = x.iter().zip(&ax).map(|(a, b)| a * b).sum::<f64>().max(0.0);
                mean + alpha * width.sqrt()
            })),
            LinearPolicy::LinThompson { v } => argmax(self.arms.iter().map(|arm| {
                let theta = arm.theta();
                let l = crate::linalg::cholesky(&arm.a_inv, arm.dim());
                let z: Vec<f64> = (0..arm.dim()).map(|_| rng.normal()).collect();
                let d = arm.dim();
                (0..d)
                    .map(|i| {
                        let noise: f64 = (0..=i).map(|j| l[i * d + j] * z[j]).sum();
                        (theta[i] + v * noise) * x[i]
                    })
                    .sum::<f64>()
            })),
        })
    }

    /// Records the reward of an arm played in a context.
    pub fn reward(&mut self, arm: usize, x: &[f64], reward: f64) -> Result<bool, DimensionError> {
        self.check(x)?;
        Ok(match self.arms.get_mut(arm) {
            Some(a) if reward.is_finite() => {
                a.update(x, reward);
                true
            }
            _ => false,
        })
    }
}

/// Cumulative regret of a policy on Bernoulli arms with known rates, over `steps`.
pub fn simulate_bernoulli(bandit: &mut Bandit, rates: &[f64], steps: usize, rng: &mut Rng) -> f64 {
    let best = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut regret = 0.0;
    for _ in 0..steps {
        let arm = bandit.decide(rng);
        let reward = f64::from(u8::from(rng.uniform() < rates[arm]));
        bandit.reward(arm, reward);
        regret += best - rates[arm];
    }
    regret
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates() -> Vec<f64> {
        (0..10).map(|i| 0.01 + 0.04 * i as f64 / 9.0).collect()
    }

    #[test]
    fn every_policy_learns_and_thompson_beats_uniform_play() {
        let uniform_regret: f64 = rates().iter().map(|r| 0.05 - r).sum::<f64>() / 10.0 * 20_000.0;
        for policy in [
            Policy::BetaThompson {
                alpha: 1.0,
                beta: 1.0,
            },
            Policy::GaussianThompson,
            Policy::TopTwoThompson { beta: 0.5 },
            Policy::Ucb1 { c: 1.0 },
            Policy::EpsilonGreedy { epsilon: 0.1 },
        ] {
            let mut b = Bandit::new(policy.clone(), 10, 10);
            let regret = simulate_bernoulli(&mut b, &rates(), 20_000, &mut Rng::seeded(3));
            assert!(
                regret < uniform_regret,
                "{policy:?}: {regret} vs uniform {uniform_regret}"
            );
            assert!(
                b.arms.iter().all(|a| a.pulls >= 10),
                "minimum traffic per arm"
            );
        }
        let mut ts = Bandit::new(
            Policy::BetaThompson {
                alpha: 1.0,
                beta: 1.0,
            },
            10,
            0,
        );
        let regret = simulate_bernoulli(&mut ts, &rates(), 20_000, &mut Rng::seeded(3));
        assert!(regret < 0.5 * uniform_regret, "{regret}");
    }

    #[test]
    fn linear_bandits_find_the_arm_that_fits_the_context() {
        for policy in [
            LinearPolicy::LinUcb { alpha: 0.5 },
            LinearPolicy::LinThompson { v: 0.2 },
        ] {
            let mut b = LinearBandit::new(policy, 2, 2, 1.0);
            let mut rng = Rng::seeded(5);
            let mut right = 0;
            for step in 0..4_000 {
                let x = if rng.uniform() < 0.5 {
                    [1.0, 0.0]
                } else {
                    [0.0, 1.0]
                };
                let arm = b.decide(&x, &mut rng).unwrap();
                let good = (x[0] == 1.0) == (arm == 0);
                let p = if good { 0.6 } else { 0.2 };
                b.reward(arm, &x, f64::from(u8::from(rng.uniform() < p)))
                    .unwrap();
                if step >= 3_000 && good {
                    right += 1;
                }
            }
            assert!(
                right > 850,
                "{policy:?}: {right} of 1000 right in the last 1000 steps"
            );
            assert!(b.decide(&[1.0], &mut rng).is_err());
        }
    }
}
