//! Strategy and execution parameters of one backtest / live run.
//!
//! One flat `Copy` struct so that a grid of thousands of parameter sets is a plain slice
//! and the batch runner never allocates per set. Field names follow `configs/default.yaml`;
//! the additions (choices the spec leaves open) are documented on their enums.

use at_types::AtError;
use serde::{Deserialize, Serialize};

/// How the raw (`of_*_min`) and normalised (`of_*_min_norm`) order-flow thresholds combine.
///
/// SPEC §17.3 lists both "(either/or logic)" without saying what that means. Default
/// `Either`: the OF leg passes when the raw OR the normalised threshold passes. With the
/// spec defaults (raw 0, norm ±0.1) this is exactly the raw rule written in §6.4 / §20.5
/// (`OF_1m > 0`), because `OF_norm > 0.1` implies `OF_1m > 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OfThresholdMode {
    /// Only `OF_1m` against `of_*_min` (raw, in base-asset units).
    Raw,
    /// Only `OF_norm_1m` against `of_*_min_norm` (scale free).
    Norm,
    /// Raw OR normalised (default).
    Either,
    /// Raw AND normalised.
    Both,
}

/// Price of a limit entry. SPEC §20.5 says "Entry: $49,950 (or limit at $49,900)".
/// Default `Close`: the signal price is the decision bar's close (SPEC §10.2 "limit order
/// at signal price"); `Boundary` rests the order at the VA boundary the setup is about
/// (VAL/VAH), which fills less often but at a better price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitPriceMode {
    Close,
    Boundary,
}

/// Which quote imbalance the initiative rule reads: the L1 snapshot at minute close
/// (default, `qimb_close`, the freshest book state at decision time) or the 60 s EMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QimbSource {
    Close,
    Ema,
}

/// How the backtester decides which level of a minute was touched first.
/// `WorstCase` (default, SPEC §10.5): stop before target. `TickPath`: from the ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopFillMode {
    WorstCase,
    TickPath,
}

/// Every parameter the kernel and the fill model read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Params {
    // instrument
    pub tick_size: f64,
    pub qty_step: f64,
    pub min_qty: f64,
    pub min_notional: f64,
    // acceptance / crossing
    pub accept_outside_k: u32,
    /// Boundary-crossing distance = this × spread_avg_60m (SPEC §6.3: 1×).
    pub crossing_spread_mult: f64,
    /// Retest pullback distance = this × spread_avg_60m (SPEC §6.5: 1×).
    pub pullback_spread_mult: f64,
    // initiative
    pub ambiguous_trade_frac_max: f64,
    pub use_qimb: bool,
    pub qimb_source: QimbSource,
    pub qimb_entry_min: f64,
    pub qimb_breakout_min: f64,
    pub qimb_fail_min: f64,
    pub of_threshold_mode: OfThresholdMode,
    pub of_entry_min: f64,
    pub of_entry_min_norm: f64,
    pub of_breakout_min: f64,
    pub of_breakout_min_norm: f64,
    pub of_fail_min: f64,
    pub of_fail_min_norm: f64,
    // sizing
    pub risk_pct: f64,
    pub max_leverage: f64,
    // exits
    pub tp1_pct: f64,
    pub move_stop_to_breakeven_after_tp1: bool,
    pub max_hold_minutes: u32,
    pub extend_if_profitable: bool,
    pub cooldown_minutes: u32,
    pub stop_buffer_ticks: u32,
    /// Daily-loss kill switch as a fraction of equity at the UTC day start (0 = off).
    pub max_daily_loss_pct: f64,
    // modes
    pub enable_retest_mode: bool,
    pub enable_flip_on_signal: bool,
    // execution
    pub use_limit_for_entry: bool,
    /// Exits at stops/targets as market orders (taker + slippage); off: targets fill as
    /// maker limits at the level (stops stay market).
    pub use_market_for_exit: bool,
    pub limit_price_mode: LimitPriceMode,
    pub limit_order_timeout_minutes: u32,
    pub taker_fee_bps: f64,
    pub maker_fee_bps: f64,
    pub slippage_ticks_entry: f64,
    pub slippage_ticks_exit: f64,
    pub funding_rate_8h_bps: f64,
    pub stop_fill_mode: StopFillMode,
    pub initial_equity: f64,
}

impl Default for Params {
    /// The defaults of `configs/default.yaml`.
    fn default() -> Self {
        Self {
            tick_size: 0.1,
            qty_step: 0.001,
            min_qty: 0.001,
            min_notional: 5.0,
            accept_outside_k: 3,
            crossing_spread_mult: 1.0,
            pullback_spread_mult: 1.0,
            ambiguous_trade_frac_max: 0.35,
            use_qimb: true,
            qimb_source: QimbSource::Close,
            qimb_entry_min: 0.10,
            qimb_breakout_min: 0.10,
            qimb_fail_min: -0.10,
            of_threshold_mode: OfThresholdMode::Either,
            of_entry_min: 0.0,
            of_entry_min_norm: 0.1,
            of_breakout_min: 0.0,
            of_breakout_min_norm: 0.1,
            of_fail_min: 0.0,
            of_fail_min_norm: -0.1,
            risk_pct: 0.02,
            max_leverage: 10.0,
            tp1_pct: 0.30,
            move_stop_to_breakeven_after_tp1: true,
            max_hold_minutes: 60,
            extend_if_profitable: true,
            cooldown_minutes: 3,
            stop_buffer_ticks: 2,
            max_daily_loss_pct: 0.06,
            enable_retest_mode: true,
            enable_flip_on_signal: true,
            use_limit_for_entry: true,
            use_market_for_exit: true,
            limit_price_mode: LimitPriceMode::Close,
            limit_order_timeout_minutes: 1,
            taker_fee_bps: 5.0,
            maker_fee_bps: -1.0,
            slippage_ticks_entry: 1.0,
            slippage_ticks_exit: 1.0,
            funding_rate_8h_bps: 1.0,
            stop_fill_mode: StopFillMode::WorstCase,
            initial_equity: 10_000.0,
        }
    }
}

fn bad(key: &str, message: String) -> AtError {
    AtError::InvalidConfig {
        key: key.into(),
        message,
    }
}

impl Params {
    /// Check every value's domain; the error names the key.
    pub fn validate(&self) -> Result<(), AtError> {
        let pos = [
            ("tick_size", self.tick_size),
            ("qty_step", self.qty_step),
            ("min_qty", self.min_qty),
            ("max_leverage", self.max_leverage),
            ("initial_equity", self.initial_equity),
        ];
        for (k, v) in pos {
            if !(v.is_finite() && v > 0.0) {
                return Err(bad(k, format!("must be a positive finite number, got {v}")));
            }
        }
        let finite = [
            ("min_notional", self.min_notional),
            ("crossing_spread_mult", self.crossing_spread_mult),
            ("pullback_spread_mult", self.pullback_spread_mult),
            ("ambiguous_trade_frac_max", self.ambiguous_trade_frac_max),
            ("qimb_entry_min", self.qimb_entry_min),
            ("qimb_breakout_min", self.qimb_breakout_min),
            ("qimb_fail_min", self.qimb_fail_min),
            ("of_entry_min", self.of_entry_min),
            ("of_entry_min_norm", self.of_entry_min_norm),
            ("of_breakout_min", self.of_breakout_min),
            ("of_breakout_min_norm", self.of_breakout_min_norm),
            ("of_fail_min", self.of_fail_min),
            ("of_fail_min_norm", self.of_fail_min_norm),
            ("taker_fee_bps", self.taker_fee_bps),
            ("maker_fee_bps", self.maker_fee_bps),
            ("slippage_ticks_entry", self.slippage_ticks_entry),
            ("slippage_ticks_exit", self.slippage_ticks_exit),
            ("funding_rate_8h_bps", self.funding_rate_8h_bps),
            ("max_daily_loss_pct", self.max_daily_loss_pct),
        ];
        for (k, v) in finite {
            if !v.is_finite() {
                return Err(bad(k, format!("must be finite, got {v}")));
            }
        }
        if !(self.risk_pct > 0.0 && self.risk_pct <= 1.0) {
            return Err(bad(
                "risk_pct",
                format!("must be in (0, 1], got {}", self.risk_pct),
            ));
        }
        if !(0.0..=1.0).contains(&self.tp1_pct) {
            return Err(bad(
                "tp1_pct",
                format!("must be in [0, 1], got {}", self.tp1_pct),
            ));
        }
        if self.accept_outside_k == 0 {
            return Err(bad("accept_outside_k", "must be >= 1".into()));
        }
        if self.max_hold_minutes == 0 {
            return Err(bad("max_hold_minutes", "must be >= 1".into()));
        }
        if self.slippage_ticks_entry < 0.0 || self.slippage_ticks_exit < 0.0 {
            return Err(bad("slippage_ticks_*", "must be >= 0".into()));
        }
        if !(0.0..1.0).contains(&self.max_daily_loss_pct) {
            return Err(bad(
                "max_daily_loss_pct",
                format!("must be in [0, 1), got {}", self.max_daily_loss_pct),
            ));
        }
        if self.min_qty < self.qty_step * (1.0 - 1e-9) {
            return Err(bad("min_qty", "must be >= qty_step".into()));
        }
        Ok(())
    }

    /// The parameters as JSON (reports, grid result rows).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("params serialise")
    }

    /// Minimum quantity expressed in qty steps (at least 1).
    pub fn min_qty_steps(&self) -> i64 {
        ((self.min_qty / self.qty_step) - 1e-9).ceil().max(1.0) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_key() {
        Params::default().validate().unwrap();
        let p = Params {
            risk_pct: 0.0,
            ..Params::default()
        };
        let e = p.validate().unwrap_err();
        assert!(e.to_string().contains("risk_pct"), "{e}");
        let p = Params {
            tick_size: f64::NAN,
            ..Params::default()
        };
        assert!(p.validate().unwrap_err().to_string().contains("tick_size"));
        assert_eq!(Params::default().min_qty_steps(), 1);
    }
}
