//! Trade-side inference (SPEC §5.7): quote rule, tick-rule fallback with zero-tick
//! continuation, trades sharing a timestamp treated as one group.
//!
//! Why groups: most prints are fills of one aggressive order against several resting orders,
//! all stamped with the same millisecond. A tick rule that compared each fill with the fill
//! just before it in the same millisecond would read the order's own walk through the book
//! as new information. So the tick rule compares every trade of a millisecond with the last
//! price of the *previous* millisecond group, and zero-tick continuation carries the sign of
//! the previous group (the sign of its net signed size; a group netting to zero keeps the
//! sign carried before it). The quote rule is applied per trade, all trades of a group using
//! the same quote (the alignment rule guarantees this), so two opposite aggressors inside one
//! millisecond are both signed correctly. OF sums are unchanged by grouping.

use serde::{Deserialize, Serialize};

/// Quote rule: `+1` at or above the ask, `-1` at or below the bid, `0` strictly inside.
/// The ask test comes first, as in the spec (matters only for a locked book).
#[inline]
pub fn quote_sign(price_ticks: i64, bid_ticks: i64, ask_ticks: i64) -> i8 {
    if price_ticks >= ask_ticks {
        1
    } else if price_ticks <= bid_ticks {
        -1
    } else {
        0
    }
}

/// Tick-rule state carried across trades, minutes and days.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TickRule {
    /// Last price of the previous timestamp group.
    prev_price: Option<i64>,
    /// Sign carried by zero-tick continuation.
    prev_sign: i8,
}

impl TickRule {
    pub fn new() -> Self {
        Self::default()
    }

    /// Tick-rule sign of a trade of the current group: up-tick `+1`, down-tick `-1`,
    /// zero-tick the carried sign (0 before any signed group, or with no previous trade).
    #[inline]
    pub fn sign(&self, price_ticks: i64) -> i8 {
        match self.prev_price {
            None => 0,
            Some(p) if price_ticks > p => 1,
            Some(p) if price_ticks < p => -1,
            Some(_) => self.prev_sign,
        }
    }

    /// Close a timestamp group: its last price and its net signed size.
    #[inline]
    pub fn end_group(&mut self, last_price_ticks: i64, net_signed_size: f64) {
        self.prev_price = Some(last_price_ticks);
        if net_signed_size > 0.0 {
            self.prev_sign = 1;
        } else if net_signed_size < 0.0 {
            self.prev_sign = -1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_rule_boundaries() {
        // bid 500000, ask 500010 (ticks)
        assert_eq!(quote_sign(500_010, 500_000, 500_010), 1); // at ask
        assert_eq!(quote_sign(500_011, 500_000, 500_010), 1); // through ask
        assert_eq!(quote_sign(500_000, 500_000, 500_010), -1); // at bid
        assert_eq!(quote_sign(499_999, 500_000, 500_010), -1); // through bid
        assert_eq!(quote_sign(500_005, 500_000, 500_010), 0); // inside
        assert_eq!(quote_sign(500_001, 500_000, 500_010), 0); // one tick inside
        assert_eq!(quote_sign(500_000, 500_000, 500_000), 1); // locked book: ask test first
    }

    #[test]
    fn tick_rule_with_zero_tick_continuation() {
        let mut t = TickRule::new();
        assert_eq!(t.sign(100), 0, "no previous trade");
        t.end_group(100, 0.0);
        assert_eq!(t.sign(101), 1);
        assert_eq!(t.sign(99), -1);
        assert_eq!(t.sign(100), 0, "zero tick before any signed group");
        t.end_group(101, 0.5); // an up group
        assert_eq!(t.sign(101), 1, "zero tick continues the previous sign");
        t.end_group(101, 0.0); // a group netting to zero keeps the carried sign
        assert_eq!(t.sign(101), 1);
        t.end_group(100, -0.2);
        assert_eq!(t.sign(100), -1);
    }
}
