//! The stage-1 record of one UTC minute and the dense accumulator of its price histogram.

use serde::{Deserialize, Serialize};

use at_types::Quote;

/// Everything later stages need from one minute, so that they never re-read ticks.
///
/// Prices are integer ticks. A minute with no trade has no bar prices (`open..close` are
/// `None`, volume 0); L1 at close is the last quote seen at or before the close, however old
/// (SPEC §4.3 "use last available"), and `None` only before the first quote ever.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MinuteSummary {
    /// Minute start (UTC ms, multiple of 60 000).
    pub ts_min: i64,
    pub open: Option<i64>,
    pub high: Option<i64>,
    pub low: Option<i64>,
    pub close: Option<i64>,
    /// Sum of trade sizes.
    pub volume: f64,
    /// Sum of `price_ticks * size` (VWAP numerator, in ticks).
    pub pv_ticks: f64,
    pub trade_count: u32,
    /// Distinct trade timestamps (same-millisecond groups, SPEC §5.7).
    pub group_count: u32,
    pub first_trade_ts: Option<i64>,
    pub last_trade_ts: Option<i64>,
    /// Timestamp of the minute's first trade at its low / high (the moment a resting order
    /// at that extreme could first have been traded through; the backtester's fill-time
    /// bound for limits, stops and targets).
    pub low_ts: Option<i64>,
    pub high_ts: Option<i64>,
    /// Latest quote at or before `ts_min + 59 999` (SPEC §4.3).
    pub l1_close: Option<Quote>,
    /// Signed order flow: sum of sign * size (SPEC §5.7).
    pub of: f64,
    pub buy_volume: f64,
    pub sell_volume: f64,
    /// Volume not signed by the primary source (quote rule for `inferred`, the exchange flag
    /// for `exchange`), whether or not a fallback then signed it.
    pub ambiguous_volume: f64,
    /// Trades matched to a quote older than `max_quote_staleness_ms` (the quote is used).
    pub stale_trades: u32,
    /// Trades with no quote to match at all (before the first quote).
    pub unmatched_trades: u32,
    /// Trades with an exchange side and a quote-rule sign, and how many of them agree.
    pub side_cmp_quote: u32,
    pub side_agree_quote: u32,
    /// Same with the final inferred sign (quote rule, then tick rule), nonzero.
    pub side_cmp_final: u32,
    pub side_agree_final: u32,
    /// Quote updates inside the minute and their extremes.
    pub quote_count: u32,
    pub bid_hi: Option<i64>,
    pub bid_lo: Option<i64>,
    pub ask_hi: Option<i64>,
    pub ask_lo: Option<i64>,
    /// First quote of the minute = first quote after the previous minute's close: the fill
    /// reference of a decision taken at the previous close (SPEC §12.4).
    pub first_quote: Option<Quote>,
    /// (bid_sz - ask_sz) / (bid_sz + ask_sz) of `l1_close`; NaN without a quote or sizes.
    pub qimb_close: f64,
    /// Time EMA of qimb evaluated at the minute's end (see `stage1` docs); NaN before quotes.
    pub qimb_ema: f64,
    /// Price histogram at base resolution: (lower edge of the base bin in ticks, volume in
    /// [`crate::VOLUME_QUANTUM`] units), sorted by price, zero bins omitted.
    pub hist: Vec<(i64, i64)>,
}

impl MinuteSummary {
    pub fn new(ts_min: i64) -> Self {
        Self {
            ts_min,
            qimb_close: f64::NAN,
            qimb_ema: f64::NAN,
            ..Default::default()
        }
    }

    /// VWAP in ticks; NaN for a minute without volume.
    pub fn vwap_ticks(&self) -> f64 {
        if self.volume > 0.0 {
            self.pv_ticks / self.volume
        } else {
            f64::NAN
        }
    }

    /// Mid of L1 at close, in ticks (may be a half tick).
    pub fn mid_close_ticks(&self) -> Option<f64> {
        self.l1_close
            .map(|q| (q.bid_ticks as f64 + q.ask_ticks as f64) / 2.0)
    }

    /// Spread of L1 at close in ticks.
    pub fn spread_close_ticks(&self) -> Option<i64> {
        self.l1_close.map(|q| q.ask_ticks - q.bid_ticks)
    }
}

/// Dense accumulator of one minute's histogram: a minute spans few hundred ticks, so an
/// array indexed by price beats a hash map by an order of magnitude on the hot path.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistAcc {
    origin: i64,
    vals: Vec<i64>,
    lo: usize,
    hi: usize,
    any: bool,
}

impl HistAcc {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn add(&mut self, key: i64, units: i64) {
        let mut i = key - self.origin;
        if self.vals.is_empty() || i < 0 || i >= self.vals.len() as i64 {
            self.make_room(key);
            i = key - self.origin;
        }
        let i = i as usize;
        self.vals[i] += units;
        if !self.any {
            self.lo = i;
            self.hi = i;
            self.any = true;
        } else if i < self.lo {
            self.lo = i;
        } else if i > self.hi {
            self.hi = i;
        }
    }

    #[cold]
    fn make_room(&mut self, key: i64) {
        if !self.any {
            // nothing stored: re-centre on the key without keeping anything
            let len = self.vals.len().max(1024);
            self.vals.clear();
            self.vals.resize(len, 0);
            self.origin = key - (len as i64) / 2;
            return;
        }
        let old_lo = self.origin + self.lo as i64;
        let old_hi = self.origin + self.hi as i64;
        let lo = old_lo.min(key);
        let hi = old_hi.max(key);
        let span = (hi - lo + 1) as usize;
        let len = (span * 2).max(1024);
        let origin = lo - ((len - span) / 2) as i64;
        let mut vals = vec![0i64; len];
        for k in old_lo..=old_hi {
            vals[(k - origin) as usize] = self.vals[(k - self.origin) as usize];
        }
        self.lo = (old_lo - origin) as usize;
        self.hi = (old_hi - origin) as usize;
        self.origin = origin;
        self.vals = vals;
    }

    /// Non-zero bins in price order; leaves the accumulator empty.
    pub fn drain_into(&mut self, out: &mut Vec<(i64, i64)>) {
        if !self.any {
            return;
        }
        for i in self.lo..=self.hi {
            let v = self.vals[i];
            if v != 0 {
                out.push((self.origin + i as i64, v));
                self.vals[i] = 0;
            }
        }
        self.any = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulator_grows_both_ways_and_drains_sorted() {
        let mut h = HistAcc::new();
        h.add(1_000_000, 5);
        h.add(1_000_000, 2);
        h.add(990_000, 1); // far below: forces a grow
        h.add(1_003_000, 4); // far above
        let mut out = Vec::new();
        h.drain_into(&mut out);
        assert_eq!(out, vec![(990_000, 1), (1_000_000, 7), (1_003_000, 4)]);
        let mut again = Vec::new();
        h.drain_into(&mut again);
        assert!(again.is_empty(), "drain leaves it empty");
        h.add(5, 1); // re-centres after a price jump
        h.drain_into(&mut again);
        assert_eq!(again, vec![(5, 1)]);
    }
}
