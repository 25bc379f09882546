//! Scopes: what an API key may do. `admin` implies every other scope of its tenant.

use std::fmt;
use std::str::FromStr;

/// One permission carried by an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Everything within the key's tenant: keys, events, audit.
    Admin,
    /// Search and read knowledge bases.
    KbRead,
    /// Ingest into and change knowledge bases.
    KbWrite,
    /// Chat completions and guard checks.
    Chat,
    /// Experiments, bandits and statistics.
    Stats,
    /// Append outcome, exposure and custom events.
    EventsWrite,
}

/// A scope name is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}; known scopes: admin, kb:read, kb:write, chat, stats, events:write")]
pub struct ScopeError(pub String);

impl Scope {
    /// Every scope, in a stable order.
    pub const ALL: [Scope; 6] = [
        Scope::Admin,
        Scope::KbRead,
        Scope::KbWrite,
        Scope::Chat,
        Scope::Stats,
        Scope::EventsWrite,
    ];

    /// The scope's name as written in keys, configs and the CLI.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::KbRead => "kb:read",
            Scope::KbWrite => "kb:write",
            Scope::Chat => "chat",
            Scope::Stats => "stats",
            Scope::EventsWrite => "events:write",
        }
    }
}

impl FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| ScopeError(s.chars().take(64).collect()))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The set of scopes a key carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// A set from scopes; duplicates are removed and the order is normalised.
    pub fn new(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut v: Vec<Scope> = scopes.into_iter().collect();
        v.sort();
        v.dedup();
        Scopes(v)
    }

    /// Parses a space- or comma-separated list, as stored.
    pub fn parse_list(s: &str) -> Result<Self, ScopeError> {
        s.split([' ', ','])
            .filter(|p| !p.is_empty())
            .map(Scope::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Scopes::new)
    }

    /// Whether a key with these scopes may act in `needed`. `admin` allows everything.
    pub fn allows(&self, needed: Scope) -> bool {
        self.0.contains(&Scope::Admin) || self.0.contains(&needed)
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&names.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_admin_implies_all() {
        let s = Scopes::parse_list("kb:read, chat kb:read").unwrap();
        assert_eq!(s.to_string(), "kb:read chat");
        assert!(s.allows(Scope::Chat));
        assert!(!s.allows(Scope::Admin));
        assert!(!s.allows(Scope::KbWrite));
        let admin = Scopes::new([Scope::Admin]);
        assert!(Scope::ALL.iter().all(|&sc| admin.allows(sc)));
        assert!(Scopes::parse_list("kb:delete").is_err());
    }
}
