//! The regelkreis command line: configuration loading and one function per mode. `main.rs`
//! only parses arguments and dispatches here.

pub mod bench;
pub mod cli;
pub mod config;
pub mod costs;
pub mod demo;
pub mod eval;
pub mod gateway_bench;
pub mod guard;
pub mod guard_bench;
pub mod kb_bench;
pub mod knowledge;
pub mod logging;
pub mod mmm;
pub mod mmm_bench;
pub mod models;
pub mod stats;
