//! Measurement: experiment assignment compatible with GrowthBook's SDKs and the
//! statistics of its stats engine (frequentist, sequential and Bayesian A/B tests, CUPED,
//! sample-ratio mismatch), computed from sufficient statistics; bandits (Thompson, UCB,
//! epsilon-greedy, LinUCB, linear Thompson) and off-policy evaluation.
//!
//! **Invariant:** this crate does no I/O; every function takes data and returns data.
//! **Invariant:** results match `gbstats` 0.8.0 to 1e-9 relative (golden files in
//! `tests/golden/`, produced by `scripts/gbstats_golden.py`).

pub mod abtest;
pub mod assignment;
pub mod bandit;
pub mod drift;
pub mod geo;
pub mod mcmc;
pub mod mmm;
pub mod multiple;
pub mod ope;
pub mod power;
pub mod rng;
pub mod special;
pub mod srm;
pub mod uplift;
