//! Measurement: experiment assignment compatible with GrowthBook's SDKs and the
//! statistics of its stats engine (frequentist, sequential and Bayesian A/B tests, CUPED,
//! sample-ratio mismatch), computed from sufficient statistics; bandits (Thompson, UCB,
//! epsilon-greedy, LinUCB, linear Thompson) and off-policy evaluation; Bayesian marketing
//! mix models sampled with NUTS (`mmm`, `mcmc`), uplift models (`uplift`), geo
//! experiments (`geo`) and drift (`drift`).
//!
//! **Invariant:** this crate does no I/O; every function takes data and returns data.
//! **Invariant:** results match their references (gbstats, ArviZ, PyMC-Marketing,
//! statsmodels, pysyncon, CausalML, scikit-uplift, Evidently, SciPy) as the golden files
//! in `tests/golden/` record, each produced by a committed script under `scripts/`.

pub mod abtest;
pub mod assignment;
pub mod bandit;
pub mod drift;
pub mod geo;
mod linalg;
pub mod mcmc;
pub mod mmm;
pub mod multiple;
pub mod ope;
pub mod power;
pub mod rng;
pub mod special;
pub mod srm;
pub mod uplift;
