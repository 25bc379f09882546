//! The vocabulary every other regelkreis crate speaks: ids, tenants and scopes, money in
//! integer micro-units, timestamps and the typed events of the one append-only log.
//!
//! **Invariant:** this crate does no I/O.

pub mod event;
pub mod ids;
pub mod money;
pub mod scope;
pub mod timestamp;

pub use event::{Event, EventDecodeError, EventKind, EventQuery, NewEvent, Tags};
pub use ids::{EventId, IdError, KeyId, TenantId};
pub use money::Money;
pub use scope::{Scope, ScopeError, Scopes};
pub use timestamp::{Timestamp, TimestampError};
