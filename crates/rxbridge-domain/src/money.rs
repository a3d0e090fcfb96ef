//! Money in integer pence. Never a float: every penny reconciles.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount in pence (GBP). May be negative for refunds and differences.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);
    pub const fn pence(p: i64) -> Self {
        Self(p)
    }
    pub const fn as_pence(self) -> i64 {
        self.0
    }
    pub fn checked_add(self, o: Money) -> Option<Money> {
        self.0.checked_add(o.0).map(Money)
    }
    pub fn checked_mul(self, n: i64) -> Option<Money> {
        self.0.checked_mul(n).map(Money)
    }
}

impl fmt::Display for Money {
    /// `£9.90`, `-£0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        write!(f, "{sign}£{}.{:02}", a / 100, a % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn display_and_arithmetic() {
        assert_eq!(Money::pence(990).to_string(), "£9.90");
        assert_eq!(Money::pence(5).to_string(), "£0.05");
        assert_eq!(Money::pence(-5).to_string(), "-£0.05");
        assert_eq!(Money::pence(990).checked_mul(3), Some(Money::pence(2970)));
        assert_eq!(Money::pence(i64::MAX).checked_add(Money::pence(1)), None);
    }
}
