//! Guardrails for regelkreis: PII detection and redaction, prompt-injection
//! defence, brand and moderation rules, tool whitelists and the policy library.
//!
//! Pure logic: no HTTP, no storage. The server and the CLI wrap it.

pub mod pii;
pub mod redact;
pub mod normalize;
pub mod injection;
