//! Evals that need no LLM: the dataset format, retrieval metrics (recall@k, MRR, nDCG),
//! answer metrics (token F1, citation validity, faithfulness by sentence support,
//! abstention precision), latency percentiles, bootstrap intervals, and the gate that
//! compares a run with a baseline, and the calibration of answer confidence.
//!
//! **Boundary:** pure functions of data; the answer path, the knowledge base and the CLI
//! feed it results and print what it returns.

pub mod calibration;
pub mod dataset;
pub mod gate;
pub mod grounding;
pub mod metrics;
pub mod report;
pub mod text;

pub use dataset::{Case, DatasetError};
pub use gate::{Floor, GateViolation};
pub use report::{CaseResult, Report};
