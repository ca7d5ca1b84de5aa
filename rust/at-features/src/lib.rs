//! Feature engine of auction-trader (SPEC §4–§5), in two stages.
//!
//! * **Stage 1** ([`stage1`]) touches every tick once and turns trades and quotes into one
//!   [`MinuteSummary`] per UTC minute: the bar, L1 at the close, order flow, quote imbalance,
//!   the minute's price histogram at base resolution, trade/quote extremes and the fill
//!   reference (first quote of the minute = first quote after the previous minute's close).
//!   It depends only on the stage-1 parameters ([`Stage1Config`]).
//! * **Stage 2** ([`stage2`]) runs from minute summaries only: sigma_240, spread_avg_60m, bin
//!   width with rebucketing, the rolling 240-minute profile, POC / VAH / VAL. A grid search
//!   recomputes it per parameter point without re-reading ticks.
//!
//! [`engine::FeatureEngine`] chains both as one streaming engine (`push_trade`, `push_quote`,
//! `close_minute`); batch mode ([`engine::run_batch`]) is that same engine fed in a loop.
//!
//! Every choice the spec leaves open is documented where it is made and collected in
//! `docs/features.md`.

use serde::{Deserialize, Serialize};

pub mod align;
pub mod columns;
pub mod engine;
pub mod minute;
pub mod profile;
pub mod profile_at;
pub mod side;
pub mod sigma;
pub mod stage1;
pub mod stage2;

pub use at_types::{minute_of, AtError, Quote, Trade, MINUTE_MS};
pub use minute::MinuteSummary;

/// Histogram volumes are fixed-point integers of this many size units (1e-8 BTC).
///
/// Pitfall avoided: a rolling histogram kept in `f64` and maintained by add/subtract leaves
/// residues such as `1e-17` in bins that should be empty (they would count as "bins with
/// volume" for validity) and drifts bit-wise from a from-scratch rebuild; POC ties become
/// float noise. Integer volumes make add/subtract exact, rebuilds bit-identical and ties real.
/// Exchange sizes lie on a `qty_step` grid far coarser than 1e-8, so nothing is lost.
pub const VOLUME_QUANTUM: f64 = 1e-8;

/// Size (BTC) to histogram units, rounding to the nearest quantum.
#[inline]
pub fn size_to_units(size: f64) -> i64 {
    (size / VOLUME_QUANTUM).round() as i64
}

/// Histogram units back to a size.
#[inline]
pub fn units_to_size(units: i64) -> f64 {
    units as f64 * VOLUME_QUANTUM
}

/// Trade-to-quote tie rule for a quote carrying the trade's own millisecond (SPEC §4.4 says
/// "at or before"; the real Binance windows show the quote a trade causes carries the
/// trade's millisecond, so `StrictlyBefore` is the project default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QuoteMatch {
    StrictlyBefore,
    AtOrBefore,
}

impl QuoteMatch {
    pub fn parse(s: &str) -> Result<Self, AtError> {
        match s {
            "strictly_before" => Ok(Self::StrictlyBefore),
            "at_or_before" => Ok(Self::AtOrBefore),
            _ => Err(bad_cfg(
                "quote_match",
                format!("expected strictly_before | at_or_before, got `{s}`"),
            )),
        }
    }
}

/// Where the sign of a trade comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SideSource {
    /// SPEC §5.7: quote rule, tick-rule fallback.
    Inferred,
    /// The venue's aggressor flag; trades without one fall back to the inferred sign.
    Exchange,
}

impl SideSource {
    pub fn parse(s: &str) -> Result<Self, AtError> {
        match s {
            "inferred" => Ok(Self::Inferred),
            "exchange" => Ok(Self::Exchange),
            _ => Err(bad_cfg(
                "side_source",
                format!("expected inferred | exchange, got `{s}`"),
            )),
        }
    }
}

pub(crate) fn bad_cfg(key: &str, message: String) -> AtError {
    AtError::InvalidConfig {
        key: key.into(),
        message,
    }
}

/// Parameters of stage 1 (config keys of the same names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage1Config {
    pub tick_size: f64,
    pub base_bin_ticks: i64,
    pub max_quote_staleness_ms: i64,
    pub quote_match: QuoteMatch,
    pub side_source: SideSource,
    pub use_tick_rule_fallback: bool,
    pub qimb_ema_span_seconds: f64,
    /// Data-gap limit (see [`stage1`]): after this many consecutive minutes without any
    /// event (no trade and no quote) the data is considered to have stopped; the minutes
    /// beyond are not emitted and the next event starts a new segment with fresh state.
    pub max_gap_minutes: i64,
}

impl Default for Stage1Config {
    fn default() -> Self {
        Self {
            tick_size: 0.1,
            base_bin_ticks: 1,
            max_quote_staleness_ms: 250,
            quote_match: QuoteMatch::StrictlyBefore,
            side_source: SideSource::Inferred,
            use_tick_rule_fallback: true,
            qimb_ema_span_seconds: 60.0,
            max_gap_minutes: 5,
        }
    }
}

impl Stage1Config {
    pub fn validate(&self) -> Result<(), AtError> {
        at_types::TickGrid::new(self.tick_size)?;
        if self.base_bin_ticks < 1 {
            return Err(bad_cfg(
                "base_bin_ticks",
                format!("must be >= 1, got {}", self.base_bin_ticks),
            ));
        }
        if self.max_quote_staleness_ms < 0 {
            return Err(bad_cfg(
                "max_quote_staleness_ms",
                format!("must be >= 0, got {}", self.max_quote_staleness_ms),
            ));
        }
        if !(0..=1440).contains(&self.max_gap_minutes) {
            return Err(bad_cfg(
                "max_gap_minutes",
                format!("must be in 0..=1440, got {}", self.max_gap_minutes),
            ));
        }
        if !(self.qimb_ema_span_seconds.is_finite() && self.qimb_ema_span_seconds > 0.0) {
            return Err(bad_cfg(
                "qimb_ema_span_seconds",
                format!("must be > 0, got {}", self.qimb_ema_span_seconds),
            ));
        }
        Ok(())
    }
}

/// Parameters of stage 2 (config keys of the same names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage2Config {
    pub tick_size: f64,
    pub base_bin_ticks: i64,
    pub rolling_window_minutes: i64,
    pub va_fraction: f64,
    pub alpha_bin: f64,
    pub bin_width_max_ticks: i64,
    pub rebucket_interval_minutes: i64,
    pub rebucket_change_pct: f64,
    pub min_va_bins: i64,
    pub spread_lookback_minutes: i64,
    /// SPEC §5.9 BVC proxy (manual fallback only): computed only when set.
    pub use_bvc_fallback: bool,
    pub bvc_lookback_minutes: i64,
    /// SPEC §16.1: minutes of data before the value area is tradeable. `va_valid` also
    /// requires that `max(warmup_minutes, rolling_window_minutes)` minutes of history end
    /// at the minute (counted from the first minute this engine saw), so a profile holding
    /// 20 minutes of trades never passes for a 4-hour one.
    pub warmup_minutes: i64,
}

impl Default for Stage2Config {
    fn default() -> Self {
        Self {
            tick_size: 0.1,
            base_bin_ticks: 1,
            rolling_window_minutes: 240,
            va_fraction: 0.70,
            alpha_bin: 0.25,
            bin_width_max_ticks: 200,
            rebucket_interval_minutes: 15,
            rebucket_change_pct: 0.25,
            min_va_bins: 20,
            spread_lookback_minutes: 60,
            use_bvc_fallback: false,
            bvc_lookback_minutes: 60,
            warmup_minutes: 240,
        }
    }
}

impl Stage2Config {
    pub fn validate(&self) -> Result<(), AtError> {
        at_types::TickGrid::new(self.tick_size)?;
        let pos = |k: &str, v: i64| {
            if v < 1 {
                Err(bad_cfg(k, format!("must be >= 1, got {v}")))
            } else {
                Ok(())
            }
        };
        pos("base_bin_ticks", self.base_bin_ticks)?;
        pos("rolling_window_minutes", self.rolling_window_minutes)?;
        pos("bin_width_max_ticks", self.bin_width_max_ticks)?;
        pos("rebucket_interval_minutes", self.rebucket_interval_minutes)?;
        pos("min_va_bins", self.min_va_bins)?;
        pos("spread_lookback_minutes", self.spread_lookback_minutes)?;
        pos("bvc_lookback_minutes", self.bvc_lookback_minutes)?;
        if self.warmup_minutes < 0 {
            return Err(bad_cfg(
                "warmup_minutes",
                format!("must be >= 0, got {}", self.warmup_minutes),
            ));
        }
        if !(self.va_fraction > 0.0 && self.va_fraction <= 1.0) {
            return Err(bad_cfg(
                "va_fraction",
                format!("must be in (0, 1], got {}", self.va_fraction),
            ));
        }
        if !(self.alpha_bin.is_finite() && self.alpha_bin > 0.0) {
            return Err(bad_cfg(
                "alpha_bin",
                format!("must be > 0, got {}", self.alpha_bin),
            ));
        }
        if !(self.rebucket_change_pct.is_finite() && self.rebucket_change_pct >= 0.0) {
            return Err(bad_cfg(
                "rebucket_change_pct",
                format!("must be >= 0, got {}", self.rebucket_change_pct),
            ));
        }
        Ok(())
    }
}

/// Converts integer ticks to float prices so that they print as the exchange wrote them.
///
/// Pitfall: `500001 as f64 * 0.1` is `50000.100000000006`, not the double nearest to
/// `50000.1`. When `1 / tick_size` is an integer (0.1, 0.01, 0.5, ...) dividing by it is
/// correctly rounded and yields exactly the value a parser gives for "50000.1".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PriceScale {
    tick: f64,
    inv: Option<f64>,
}

impl PriceScale {
    pub fn new(tick: f64) -> Self {
        let inv = 1.0 / tick;
        let r = inv.round();
        let inv = if r >= 1.0 && (inv - r).abs() < 1e-9 * r {
            Some(r)
        } else {
            None
        };
        Self { tick, inv }
    }
    #[inline]
    pub fn price(&self, ticks: i64) -> f64 {
        self.price_f(ticks as f64)
    }
    /// Price of a fractional tick value (e.g. a VWAP in ticks).
    #[inline]
    pub fn price_f(&self, ticks: f64) -> f64 {
        match self.inv {
            Some(inv) => ticks / inv,
            None => ticks * self.tick,
        }
    }
    /// Nearest tick (half away from zero). Written with a truncating cast instead of
    /// `f64::round`, which is a libm call on baseline x86-64 and dominated the bindings'
    /// conversion of float prices; identical for every price within 2^52 ticks.
    #[inline]
    pub fn ticks(&self, price: f64) -> i64 {
        round_half_away(self.in_ticks(price))
    }
    /// A price in (fractional) ticks.
    #[inline]
    pub fn in_ticks(&self, price: f64) -> f64 {
        match self.inv {
            Some(inv) => price * inv,
            None => price / self.tick,
        }
    }
    pub fn tick(&self) -> f64 {
        self.tick
    }
}

/// `x.round() as i64` (half away from zero) without the libm call: truncate with a cast
/// (one instruction), then correct by the exact fractional part (`x - trunc(x)` is exact
/// for every finite double).
#[inline]
pub fn round_half_away(x: f64) -> i64 {
    let t = x as i64;
    let frac = x - t as f64;
    if frac >= 0.5 {
        t + 1
    } else if frac <= -0.5 {
        t - 1
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_half_away_matches_std_round() {
        for x in [
            0.0,
            0.49999999999999994,
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.5,
            -0.49999999999999994,
            500_000.99999999994,
            1e15 + 0.5,
        ] {
            assert_eq!(round_half_away(x), x.round() as i64, "{x}");
        }
        let mut v = 0.123_f64;
        for _ in 0..100_000 {
            v = (v * 1.000_37 + 0.77).rem_euclid(2e7) - 1e7;
            assert_eq!(round_half_away(v), v.round() as i64, "{v}");
        }
    }

    #[test]
    fn price_scale_prints_exchange_decimals() {
        let s = PriceScale::new(0.1);
        assert_eq!(s.price(500_001), 50000.1);
        assert_eq!(s.ticks(50000.1), 500_001);
        assert_eq!(s.price(500_000), 50000.0);
        let odd = PriceScale::new(0.3);
        assert_eq!(odd.ticks(odd.price(7)), 7);
    }

    #[test]
    fn units_round_trip() {
        assert_eq!(size_to_units(0.001), 100_000);
        assert_eq!(size_to_units(0.15), 15_000_000);
        assert_eq!(units_to_size(15_000_000), 0.15);
    }

    #[test]
    fn parses_enums_and_rejects_unknown() {
        assert_eq!(
            QuoteMatch::parse("at_or_before").unwrap(),
            QuoteMatch::AtOrBefore
        );
        assert!(QuoteMatch::parse("before").is_err());
        assert_eq!(SideSource::parse("exchange").unwrap(), SideSource::Exchange);
        assert!(SideSource::parse("x").is_err());
        assert!(Stage2Config {
            va_fraction: 0.0,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(Stage1Config {
            base_bin_ticks: 0,
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
