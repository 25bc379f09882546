//! Money as integer micro-units of a currency, so sums of costs are exact.

use std::fmt;
use std::ops::{Add, AddAssign};

/// An amount in micro-units (one millionth) of the account currency.
/// Floats never carry money in regelkreis: `0.1 + 0.2` must equal `0.3` in a cost report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i64);

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// An amount from micro-units.
    pub const fn from_micros(micros: i64) -> Self {
        Money(micros)
    }

    /// The amount in micro-units.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Adds, or `None` on overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

impl fmt::Display for Money {
    /// Six decimal places, exact.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_displays_exactly() {
        assert_eq!(Money(1_500_000).to_string(), "1.500000");
        assert_eq!(Money(-42).to_string(), "-0.000042");
        assert_eq!((Money(100_000) + Money(200_000)), Money(300_000));
        assert_eq!(Money(i64::MAX).checked_add(Money(1)), None);
    }
}
