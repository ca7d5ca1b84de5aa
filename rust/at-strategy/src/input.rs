//! The kernel's per-minute input: one finished 1-minute bar plus its features.
//!
//! Everything here must be known at the close of minute `ts_min` (`ts_min + 59_999` ms) and
//! use data at or before that instant only (SPEC §12.4). The feature engine fills it from
//! `bars_1m` + `features_1m`; the glue is field-for-field (see each field).

use serde::{Deserialize, Serialize};

/// One minute as the strategy sees it at the minute's close.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MinuteInput {
    /// Minute start, UTC epoch ms (`bars_1m.ts_min`). Decisions happen at `ts_min + 59_999`.
    pub ts_min: i64,
    /// Trade OHLC of the minute (`bars_1m.open/high/low/close`); NaN when the minute had no
    /// trades. `high`/`low` are real trade prices, which is what boundary-crossing
    /// validation (§6.3) and the stop/target checks need.
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Traded volume of the minute (`bars_1m.volume`).
    pub volume: f64,
    /// Distance (price units) from this minute's `vah` / `val` to the nearest price the
    /// minute traded at (stage 2, from the minute's base-resolution histogram; an upper
    /// bound when `base_bin_ticks > 1`). NaN when the minute had no trades or the VA is not
    /// valid. Decides SPEC §6.3 for the minute's own boundaries: crossed iff `<= dist`.
    pub vah_trade_dist: f64,
    pub val_trade_dist: f64,
    /// Mid at the minute close (`features_1m.mid_close`); used to mark open positions.
    pub mid_close: f64,
    /// Rolling average spread (`bars_1m.spread_avg_60m`), price units.
    pub spread_avg: f64,
    /// Value area of the rolling profile ending at this minute (`features_1m.poc/vah/val`).
    pub poc: f64,
    pub vah: f64,
    pub val: f64,
    /// Whether the VA is valid (≥ `min_va_bins` bins with volume, warm-up complete).
    pub va_valid: bool,
    /// Signed order flow of the minute (`features_1m.of_1m`, base-asset units).
    pub of_1m: f64,
    /// `of_1m / volume` (`features_1m.of_norm_1m`).
    pub of_norm_1m: f64,
    /// Quote imbalance at the minute close (`features_1m.qimb_close`).
    pub qimb_close: f64,
    /// EMA of the quote imbalance (`features_1m.qimb_ema_60s`).
    pub qimb_ema: f64,
    /// Share of the minute's volume whose side was ambiguous (`ambiguous_trade_frac_1m`).
    pub ambiguous_frac: f64,
}

/// Read access to one minute's kernel inputs, field by field (the fields of
/// `MinuteInput`, same meanings). The kernel reads a minute only through this trait, so a
/// caller holding the minutes as columns (the backtester) can hand it a row view instead of
/// gathering all 19 fields of every minute: the kernel touches only the fields its checks
/// reach (most minutes need a handful).
pub trait Bar {
    fn ts_min(&self) -> i64;
    fn open(&self) -> f64;
    fn high(&self) -> f64;
    fn low(&self) -> f64;
    fn close(&self) -> f64;
    fn volume(&self) -> f64;
    fn vah_trade_dist(&self) -> f64;
    fn val_trade_dist(&self) -> f64;
    fn mid_close(&self) -> f64;
    fn spread_avg(&self) -> f64;
    fn poc(&self) -> f64;
    fn vah(&self) -> f64;
    fn val(&self) -> f64;
    fn va_valid(&self) -> bool;
    fn of_1m(&self) -> f64;
    fn of_norm_1m(&self) -> f64;
    fn qimb_close(&self) -> f64;
    fn qimb_ema(&self) -> f64;
    fn ambiguous_frac(&self) -> f64;

    /// Whether the minute had at least one trade.
    #[inline]
    fn has_trades(&self) -> bool {
        self.close().is_finite() && self.high().is_finite() && self.low().is_finite()
    }

    /// SPEC §6.3 at this minute's VAH: did one of its trades print within `dist` of it?
    /// Decided exactly from the distance to the nearest traded price (NaN: not crossed).
    #[inline]
    fn crossed_vah(&self, dist: f64) -> bool {
        self.vah_trade_dist() <= dist
    }

    /// SPEC §6.3 at this minute's VAL (see [`Bar::crossed_vah`]).
    #[inline]
    fn crossed_val(&self, dist: f64) -> bool {
        self.val_trade_dist() <= dist
    }
}

macro_rules! bar_fields {
    ($($f:ident: $t:ty),* $(,)?) => {
        impl Bar for MinuteInput {
            $(
                #[inline(always)]
                fn $f(&self) -> $t {
                    self.$f
                }
            )*
        }
    };
}

/// Calls the macro `$m` with every field of [`Bar`] as `name: type`: the one list that
/// every implementor of `Bar` (here and in the backtester's table rows) expands.
#[macro_export]
macro_rules! with_bar_fields {
    ($m:ident) => {
        $m!(
        ts_min: i64,
        open: f64,
        high: f64,
        low: f64,
        close: f64,
        volume: f64,
        vah_trade_dist: f64,
        val_trade_dist: f64,
        mid_close: f64,
        spread_avg: f64,
        poc: f64,
        vah: f64,
        val: f64,
        va_valid: bool,
        of_1m: f64,
        of_norm_1m: f64,
        qimb_close: f64,
        qimb_ema: f64,
        ambiguous_frac: f64,
        );
    };
}

with_bar_fields!(bar_fields);

impl MinuteInput {
    /// A minute with no trades and no valid VA (used to build test fixtures).
    pub fn empty(ts_min: i64) -> Self {
        Self {
            ts_min,
            open: f64::NAN,
            high: f64::NAN,
            low: f64::NAN,
            close: f64::NAN,
            volume: 0.0,
            vah_trade_dist: f64::NAN,
            val_trade_dist: f64::NAN,
            mid_close: f64::NAN,
            spread_avg: f64::NAN,
            poc: f64::NAN,
            vah: f64::NAN,
            val: f64::NAN,
            va_valid: false,
            of_1m: 0.0,
            of_norm_1m: 0.0,
            qimb_close: 0.0,
            qimb_ema: 0.0,
            ambiguous_frac: 0.0,
        }
    }

    /// The minute as JSON (`signals_1m.feature_snapshot`; NaN becomes null).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("minute serialises")
    }

    /// Whether the minute had at least one trade (`Bar::has_trades`).
    #[inline]
    pub fn has_trades(&self) -> bool {
        Bar::has_trades(self)
    }

    /// SPEC §6.3 boundary crossing at VAH (`Bar::crossed_vah`).
    #[inline]
    pub fn crossed_vah(&self, dist: f64) -> bool {
        Bar::crossed_vah(self, dist)
    }

    /// SPEC §6.3 boundary crossing at VAL (`Bar::crossed_val`).
    #[inline]
    pub fn crossed_val(&self, dist: f64) -> bool {
        Bar::crossed_val(self, dist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(vah_trade_dist: f64, val_trade_dist: f64) -> MinuteInput {
        MinuteInput {
            open: 100.0,
            high: 101.0,
            low: 100.0,
            close: 101.0,
            vah_trade_dist,
            val_trade_dist,
            ..MinuteInput::empty(0)
        }
    }

    #[test]
    fn crossing_compares_the_nearest_trade_distance() {
        let b = bar(0.1, 0.0);
        assert!(b.crossed_vah(0.1));
        assert!(!b.crossed_vah(0.099));
        assert!(b.crossed_val(0.0));
        // Each level reads its own distance.
        let b = bar(5.0, 0.2);
        assert!(!b.crossed_vah(1.0) && b.crossed_val(1.0));
        // Unknown distance (no trades, no valid VA): never crossed.
        assert!(!bar(f64::NAN, f64::NAN).crossed_vah(f64::INFINITY));
        assert!(!MinuteInput::empty(0).crossed_val(1.0));
    }
}
