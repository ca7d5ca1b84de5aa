//! Rolling volatility (SPEC §5.2), rolling mean spread (SPEC §5.3), BVC proxy (SPEC §5.9).
//!
//! Decisions where the spec is silent:
//! * `sigma_240` is the **population** standard deviation (divide by n) of the log returns
//!   of `mid_close` over the return slots of the last `window` minutes. Every minute of the
//!   window that has no return (missing minute, or no quote yet on either side) counts as a
//!   zero return, as the spec says for missing bars. During warm-up the window is the slots
//!   since the first minute (n < 240); the first minute has no slot and sigma is NaN.
//!   Population, because the window is a fixed set of slots rather than a sample of an
//!   unknown series, and a window of 240 identical moves then has sigma exactly 0.
//! * `spread_avg_60m` is the mean of the minute-close spreads of the minutes in the last
//!   `spread_lookback_minutes` that have a quote (integer ticks summed exactly).

use serde::{Deserialize, Serialize};

use std::collections::VecDeque;

/// Rolling window of per-minute returns keyed by minute start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollingSigma {
    window_ms: i64,
    first_min: Option<i64>,
    returns: VecDeque<(i64, f64)>,
}

impl RollingSigma {
    pub fn new(window_minutes: i64) -> Self {
        Self {
            window_ms: window_minutes * at_types::MINUTE_MS,
            first_min: None,
            returns: VecDeque::new(),
        }
    }

    /// Record minute `ts_min` with its return (`None` = zero return / missing) and return
    /// sigma over the window ending at this minute.
    pub fn push(&mut self, ts_min: i64, ret: Option<f64>) -> f64 {
        let first = *self.first_min.get_or_insert(ts_min);
        if let Some(r) = ret {
            if r != 0.0 {
                self.returns.push_back((ts_min, r));
            }
        }
        let start = ts_min - self.window_ms + at_types::MINUTE_MS;
        while self.returns.front().is_some_and(|(t, _)| *t < start) {
            self.returns.pop_front();
        }
        // slots: minutes in [max(start, first + 1min), ts_min]
        let from = start.max(first + at_types::MINUTE_MS);
        if ts_min < from {
            return f64::NAN;
        }
        let n = ((ts_min - from) / at_types::MINUTE_MS + 1) as f64;
        let sum: f64 = self.returns.iter().map(|(_, r)| r).sum();
        let mean = sum / n;
        let zeros = n - self.returns.len() as f64;
        let ss: f64 = self
            .returns
            .iter()
            .map(|(_, r)| (r - mean) * (r - mean))
            .sum::<f64>()
            + zeros * mean * mean;
        (ss / n).sqrt()
    }
}

/// Rolling mean of integer spreads over a time window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollingSpread {
    window_ms: i64,
    vals: VecDeque<(i64, i64)>,
    sum: i64,
}

impl RollingSpread {
    pub fn new(window_minutes: i64) -> Self {
        Self {
            window_ms: window_minutes * at_types::MINUTE_MS,
            vals: VecDeque::new(),
            sum: 0,
        }
    }

    /// Record the close spread (ticks) of minute `ts_min`, return the mean in ticks.
    pub fn push(&mut self, ts_min: i64, spread: Option<i64>) -> f64 {
        if let Some(s) = spread {
            self.vals.push_back((ts_min, s));
            self.sum += s;
        }
        let start = ts_min - self.window_ms + at_types::MINUTE_MS;
        while let Some(&(t, s)) = self.vals.front() {
            if t >= start {
                break;
            }
            self.sum -= s;
            self.vals.pop_front();
        }
        if self.vals.is_empty() {
            f64::NAN
        } else {
            self.sum as f64 / self.vals.len() as f64
        }
    }
}

/// Standard normal CDF via the complementary error function
/// (Chebyshev-fitted `erfc` of Numerical Recipes,
/// relative error < 1.2e-7 everywhere).
pub fn normal_cdf(x: f64) -> f64 {
    let z = -x / std::f64::consts::SQRT_2;
    let a = z.abs();
    let t = 1.0 / (1.0 + 0.5 * a);
    let r = t
        * (-a * a - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    let erfc = if z >= 0.0 { r } else { 2.0 - r };
    0.5 * erfc
}

/// BVC proxy (SPEC §5.9): `bvc_net = volume * (2 * Phi(delta / std_delta) - 1)`, with
/// `delta = close_t - close_{t-1}` (a minute without trades carries its close: delta 0)
/// and `std_delta` the population stdev of the deltas of the last `lookback` minutes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bvc {
    lookback_ms: i64,
    last_close: Option<f64>,
    deltas: VecDeque<(i64, f64)>,
}

impl Bvc {
    pub fn new(lookback_minutes: i64) -> Self {
        Self {
            lookback_ms: lookback_minutes * at_types::MINUTE_MS,
            last_close: None,
            deltas: VecDeque::new(),
        }
    }

    pub fn push(&mut self, ts_min: i64, close: Option<f64>, volume: f64) -> f64 {
        let delta = match (close, self.last_close) {
            (Some(c), Some(p)) => Some(c - p),
            _ => None,
        };
        if let Some(c) = close {
            self.last_close = Some(c);
        }
        let d = delta.unwrap_or(0.0);
        if self.last_close.is_some() {
            self.deltas.push_back((ts_min, d));
        }
        let start = ts_min - self.lookback_ms + at_types::MINUTE_MS;
        while self.deltas.front().is_some_and(|(t, _)| *t < start) {
            self.deltas.pop_front();
        }
        let n = self.deltas.len() as f64;
        if n < 2.0 {
            return f64::NAN;
        }
        let mean = self.deltas.iter().map(|(_, v)| v).sum::<f64>() / n;
        let var = self
            .deltas
            .iter()
            .map(|(_, v)| (v - mean) * (v - mean))
            .sum::<f64>()
            / n;
        let sd = var.sqrt();
        if sd == 0.0 {
            return 0.0;
        }
        volume * (2.0 * normal_cdf(d / sd) - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const M: i64 = 60_000;

    #[test]
    fn missing_bars_are_zero_returns() {
        // window 4: minutes 0..; returns at 1 = +0.01, 2 missing, 3 = -0.01, 4 missing
        let mut s = RollingSigma::new(4);
        assert!(s.push(0, None).is_nan(), "first minute has no return");
        let s1 = s.push(M, Some(0.01));
        assert!((s1 - 0.0).abs() < 1e-18, "one slot: stdev 0");
        s.push(2 * M, None);
        s.push(3 * M, Some(-0.01));
        let s4 = s.push(4 * M, None);
        // window slots minutes 1..4: [0.01, 0, -0.01, 0], mean 0, pop var = 0.0002/4
        assert!((s4 - (0.0002f64 / 4.0).sqrt()).abs() < 1e-15, "{s4}");
        // a gap: minutes 5..9 absent, minute 10 has a return 0.02; window 7..10 = [0,0,0,0.02]
        let s10 = s.push(10 * M, Some(0.02));
        let mean: f64 = 0.005;
        let var = (3.0 * mean * mean + (0.02 - mean) * (0.02 - mean)) / 4.0;
        assert!((s10 - var.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn spread_mean_over_time_window() {
        let mut s = RollingSpread::new(2);
        assert!(s.push(0, None).is_nan());
        assert_eq!(s.push(M, Some(1)), 1.0);
        assert_eq!(s.push(2 * M, Some(3)), 2.0);
        assert_eq!(s.push(3 * M, None), 3.0);
        assert!(s.push(10 * M, None).is_nan());
    }

    #[test]
    fn normal_cdf_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.0) - 0.841_344_746).abs() < 1e-6);
        assert!((normal_cdf(-1.96) - 0.024_997_895).abs() < 1e-6);
    }

    #[test]
    fn bvc_signs_with_price_change() {
        let mut b = Bvc::new(10);
        assert!(b.push(0, Some(100.0), 1.0).is_nan());
        b.push(M, Some(101.0), 1.0);
        let up = b.push(2 * M, Some(103.0), 2.0);
        assert!(up > 0.0 && up < 2.0);
        let down = b.push(3 * M, Some(99.0), 2.0);
        assert!(down < 0.0);
    }
}
