//! Shared market-data types for auction-trader.
//!
//! Prices are carried as integer ticks. The domain pitfall this avoids: binning a float
//! price with `floor(price / tick)` mis-bins values such as `50000.1 / 0.1 = 500000.99999…`,
//! which floors to the wrong tick. Converting once, with rounding, at the boundary of the
//! system and doing every later comparison in integers removes the whole class of bugs.

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub mod snapshot;

/// Milliseconds in one minute; `ts_min = floor(ts_ms / 60000) * 60000` (SPEC §4.1).
pub const MINUTE_MS: i64 = 60_000;

/// Errors shared by every domain crate; the bindings map them onto `at_core.errors`.
#[derive(Debug, Error, PartialEq)]
pub enum AtError {
    /// Input data that breaks an invariant, with the position where it was found.
    #[error("invalid input at {location}: {message}")]
    InvalidInput { location: String, message: String },
    /// A configuration value outside its domain.
    #[error("invalid config `{key}`: {message}")]
    InvalidConfig { key: String, message: String },
    /// Input that arrives out of time order where order is required.
    #[error("out of order at {location}: {message}")]
    OutOfOrder { location: String, message: String },
}

/// Floor of a millisecond timestamp to its UTC minute (works for negative times too).
#[inline]
pub fn minute_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(MINUTE_MS) * MINUTE_MS
}

/// Price grid of an instrument: converts between float prices and integer ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickGrid {
    pub tick_size: f64,
}

impl TickGrid {
    pub fn new(tick_size: f64) -> Result<Self, AtError> {
        if !(tick_size.is_finite() && tick_size > 0.0) {
            return Err(AtError::InvalidConfig {
                key: "tick_size".into(),
                message: format!("must be a positive finite number, got {tick_size}"),
            });
        }
        Ok(Self { tick_size })
    }

    /// Nearest tick of a price that is meant to lie on the grid (exchange prints do).
    #[inline]
    pub fn to_ticks(&self, price: f64) -> i64 {
        (price / self.tick_size).round() as i64
    }

    /// Float price of a tick index, formed so that `to_ticks(to_price(t)) == t`.
    #[inline]
    pub fn to_price(&self, ticks: i64) -> f64 {
        ticks as f64 * self.tick_size
    }

    /// Whether a price lies on the grid within a relative tolerance of 1e-6 tick.
    pub fn is_on_grid(&self, price: f64) -> bool {
        let t = price / self.tick_size;
        (t - t.round()).abs() < 1e-6
    }
}

/// One print. `seq` keeps the source order of events within a millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    pub ts_ms: i64,
    pub seq: i64,
    pub price_ticks: i64,
    pub size: f64,
    /// Exchange aggressor side where the source carries it: +1 buy, -1 sell, 0 unknown.
    pub exchange_side: i8,
}

/// One best-bid/offer update.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quote {
    pub ts_ms: i64,
    pub seq: i64,
    pub bid_ticks: i64,
    pub bid_sz: f64,
    pub ask_ticks: i64,
    pub ask_sz: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_floor_handles_boundaries() {
        assert_eq!(minute_of(0), 0);
        assert_eq!(minute_of(59_999), 0);
        assert_eq!(minute_of(60_000), 60_000);
        assert_eq!(minute_of(-1), -60_000);
    }

    #[test]
    fn ticks_round_trip_where_naive_floor_fails() {
        let g = TickGrid::new(0.1).unwrap();
        // The naive floor mis-bins this price by one tick.
        assert_eq!((50000.1f64 / 0.1).floor() as i64, 500_000);
        assert_eq!(g.to_ticks(50000.1), 500_001);
        for t in [1i64, 499_999, 500_001, 10_000_007] {
            assert_eq!(g.to_ticks(g.to_price(t)), t);
        }
        assert!(g.is_on_grid(50000.1));
        assert!(!g.is_on_grid(50000.15));
    }

    #[test]
    fn rejects_bad_tick_size() {
        assert!(TickGrid::new(0.0).is_err());
        assert!(TickGrid::new(f64::NAN).is_err());
    }
}
