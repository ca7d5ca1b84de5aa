//! Position sizing (SPEC §7) and the TP1 split (SPEC §8), in integer quantity steps.
//!
//! Pitfall: SPEC §7.1 writes `position_value = margin * risk / |entry - stop|`, which is
//! dimensionally a *quantity* (USD / USD-per-BTC = BTC); the worked example §20.1 divides
//! the risk by the stop distance as a fraction of price to get a value (0.4 BTC = $20,000).
//! Both give `qty = margin * risk_pct / |entry - stop|`, which is what is used here.
//! Quantities are whole `qty_step`s, rounded DOWN so the loss at the stop never exceeds the
//! risk budget (a float like 400.0000000001 steps is snapped first so 0.4 BTC stays 0.4).

/// Outcome of sizing one entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sized {
    /// Quantity in qty steps (0 = do not enter).
    pub qty_steps: i64,
    /// Risk-based quantity exceeded `max_leverage` and was reduced (SPEC §7.3 / §15.2 alert).
    pub leverage_cap_hit: bool,
    /// Why the size is zero, if it is.
    pub reject: Option<SizeReject>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeReject {
    /// Entry and stop coincide or the stop is on the wrong side.
    InvalidStop,
    /// Below the instrument's minimum quantity or notional.
    BelowMinimum,
    /// No available margin.
    NoMargin,
}

/// Steps of `x / step`, snapping values within 1e-9 step of the next integer up to it.
#[inline]
fn floor_steps(x: f64, step: f64) -> i64 {
    let s = x / step;
    let f = s.floor();
    if f + 1.0 - s < 1e-9 {
        (f + 1.0) as i64
    } else {
        f as i64
    }
}

/// Size an entry: `dir` is +1 long / -1 short.
#[allow(clippy::too_many_arguments)]
pub fn size_position(
    available_margin: f64,
    risk_pct: f64,
    entry: f64,
    stop: f64,
    dir: i8,
    max_leverage: f64,
    qty_step: f64,
    min_qty_steps: i64,
    min_notional: f64,
) -> Sized {
    let mut out = Sized {
        qty_steps: 0,
        leverage_cap_hit: false,
        reject: None,
    };
    if !(available_margin.is_finite() && available_margin > 0.0) {
        out.reject = Some(SizeReject::NoMargin);
        return out;
    }
    let dist = (entry - stop) * dir as f64;
    if !(dist.is_finite() && dist > 0.0 && entry > 0.0) {
        out.reject = Some(SizeReject::InvalidStop);
        return out;
    }
    let mut steps = floor_steps(available_margin * risk_pct / dist, qty_step);
    let cap_steps = floor_steps(available_margin * max_leverage / entry, qty_step);
    if steps > cap_steps {
        steps = cap_steps;
        out.leverage_cap_hit = true;
    }
    if steps < min_qty_steps || (steps as f64) * qty_step * entry < min_notional {
        out.reject = Some(SizeReject::BelowMinimum);
        return out;
    }
    out.qty_steps = steps;
    out
}

/// TP1 quantity (SPEC §8.2): `tp1_pct` of the position rounded to the nearest step, at
/// least one step, never the whole position; a one-step position skips TP1 (returns 0).
pub fn tp1_steps(qty_steps: i64, tp1_pct: f64) -> i64 {
    if qty_steps <= 1 || tp1_pct <= 0.0 {
        return 0;
    }
    let raw = (qty_steps as f64 * tp1_pct + 1e-9).round() as i64;
    raw.clamp(1, qty_steps - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC §20.1, exactly: $10,000 margin, 2 %, entry 50,000, stop 49,500 → 0.4 BTC, 2x.
    #[test]
    fn golden_20_1_sizing() {
        let s = size_position(10_000.0, 0.02, 50_000.0, 49_500.0, 1, 10.0, 0.001, 1, 5.0);
        assert_eq!(s.qty_steps, 400);
        assert!(!s.leverage_cap_hit);
        assert_eq!(s.reject, None);
        let value = s.qty_steps as f64 * 0.001 * 50_000.0;
        assert!((value - 20_000.0).abs() < 1e-6);
        assert!((value / 10_000.0 - 2.0).abs() < 1e-9); // actual leverage 2x < 10x
    }

    /// SPEC §20.2, exactly: 0.4 BTC → 0.12 at TP1, 0.28 remain.
    #[test]
    fn golden_20_2_partial_exit() {
        let tp1 = tp1_steps(400, 0.30);
        assert_eq!(tp1, 120);
        assert_eq!(400 - tp1, 280);
    }

    #[test]
    fn leverage_cap_reduces_to_ten_x() {
        // Stop 10 $ away: risk qty = 200/10 = 20 BTC = $1M, cap = $100k = 2 BTC.
        let s = size_position(10_000.0, 0.02, 50_000.0, 49_990.0, 1, 10.0, 0.001, 1, 5.0);
        assert!(s.leverage_cap_hit);
        assert_eq!(s.qty_steps, 2_000);
    }

    #[test]
    fn rounds_down_never_above_risk_budget_and_respects_min() {
        // 200 / 301 = 0.66445... BTC → 0.664 (down), loss at stop 199.86 <= 200.
        let s = size_position(10_000.0, 0.02, 50_000.0, 49_699.0, 1, 10.0, 0.001, 1, 5.0);
        assert_eq!(s.qty_steps, 664);
        let loss_at_stop = s.qty_steps as f64 * 0.001 * 301.0;
        assert!(loss_at_stop <= 200.0, "{loss_at_stop}");
        // Short side symmetric.
        let s = size_position(10_000.0, 0.02, 50_000.0, 50_301.0, -1, 10.0, 0.001, 1, 5.0);
        assert_eq!(s.qty_steps, 664);
        // Stop on the wrong side.
        let s = size_position(10_000.0, 0.02, 50_000.0, 50_100.0, 1, 10.0, 0.001, 1, 5.0);
        assert_eq!(s.reject, Some(SizeReject::InvalidStop));
        // Tiny account: 1 $ * 2 % / 500 = 0.00004 BTC < min qty.
        let s = size_position(1.0, 0.02, 50_000.0, 49_500.0, 1, 10.0, 0.001, 1, 5.0);
        assert_eq!(s.reject, Some(SizeReject::BelowMinimum));
        assert_eq!(s.qty_steps, 0);
    }

    #[test]
    fn tp1_rounding_edges() {
        assert_eq!(tp1_steps(1, 0.3), 0); // one step: straight to TP2
        assert_eq!(tp1_steps(2, 0.3), 1); // 0.6 -> 1
        assert_eq!(tp1_steps(3, 0.3), 1); // 0.9 -> 1
        assert_eq!(tp1_steps(5, 0.3), 2); // 1.5 -> 2 (half away from zero)
        assert_eq!(tp1_steps(4, 0.1), 1); // 0.4 rounds to 0 but at least one step
        assert_eq!(tp1_steps(2, 0.9), 1); // never the whole position
        assert_eq!(tp1_steps(10, 0.0), 0);
    }
}
