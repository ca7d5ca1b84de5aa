//! The backtester's input: the feature table as borrowed columns (no copy per run) plus the
//! per-minute fill references produced by stage 1 of the feature pipeline.

use at_strategy::{Bar, MinuteInput};
use at_types::AtError;

/// Trade ticks for the optional tick-path stop/target resolution.
#[derive(Debug, Clone, Copy)]
pub struct TickPath<'a> {
    /// Trade timestamps (ms), time-ordered.
    pub ts: &'a [i64],
    pub price: &'a [f64],
    /// `start[m]..start[m+1]` are the ticks of minute row `m` (length `n + 1`).
    pub start: &'a [u32],
}

/// Funding history (`funding_source: history`): the venue's funding instants and rates,
/// replacing the fixed `funding_rate_8h_bps` at 00/08/16 UTC (SPEC §12.3). `rate` is a
/// fraction of the position's notional per instant (0.0001 = 1 bp), paid by longs to
/// shorts when positive. Instants strictly increase.
#[derive(Debug, Clone, Copy)]
pub struct FundingHistory<'a> {
    pub ts: &'a [i64],
    pub rate: &'a [f64],
}

impl FundingHistory<'_> {
    /// First funding instant strictly after `t` (`i64::MAX` when none).
    #[inline]
    pub fn next_after(&self, t: i64) -> i64 {
        let i = self.ts.partition_point(|&x| x <= t);
        self.ts.get(i).copied().unwrap_or(i64::MAX)
    }

    /// Rate at instant `t` (which must be one of `ts`) and the instant after it.
    #[inline]
    pub fn at(&self, t: i64) -> (f64, i64) {
        let i = self.ts.partition_point(|&x| x < t);
        (
            self.rate.get(i).copied().unwrap_or(0.0),
            self.ts.get(i + 1).copied().unwrap_or(i64::MAX),
        )
    }
}

/// One feature table: kernel inputs (see `at_strategy::MinuteInput` for each field's
/// meaning) and fill references. Row `m` is minute `ts_min[m]`; rows strictly increase.
///
/// Fill references of row `m` (stage 1, parameter-free):
/// - `next_quote_ts[m]`, `next_bid[m]`, `next_ask[m]`: the first L1 quote with
///   `ts >= ts_min[m] + 60_000`, i.e. strictly after the minute's close
///   `ts_min + 59_999`; a decision taken at that close fills against it (SPEC §12.2/§12.4).
///   NaN prices when there is none (end of data).
/// - `low_ts[m]`, `high_ts[m]`: timestamp of the minute's first trade at its low / high
///   (an upper bound for when a limit or stop at that side was first traded through).
#[derive(Debug, Clone, Copy)]
pub struct MinuteTable<'a> {
    pub ts_min: &'a [i64],
    pub open: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub close: &'a [f64],
    pub volume: &'a [f64],
    pub vah_trade_dist: &'a [f64],
    pub val_trade_dist: &'a [f64],
    pub mid_close: &'a [f64],
    pub spread_avg: &'a [f64],
    pub poc: &'a [f64],
    pub vah: &'a [f64],
    pub val: &'a [f64],
    pub va_valid: &'a [bool],
    pub of_1m: &'a [f64],
    pub of_norm_1m: &'a [f64],
    pub qimb_close: &'a [f64],
    pub qimb_ema: &'a [f64],
    pub ambiguous_frac: &'a [f64],
    pub next_quote_ts: &'a [i64],
    pub next_bid: &'a [f64],
    pub next_ask: &'a [f64],
    pub low_ts: &'a [i64],
    pub high_ts: &'a [i64],
    pub ticks: Option<TickPath<'a>>,
    /// Funding history; `None` = the fixed rate of the parameters.
    pub funding: Option<FundingHistory<'a>>,
}

impl<'a> MinuteTable<'a> {
    pub fn len(&self) -> usize {
        self.ts_min.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ts_min.is_empty()
    }

    /// Check lengths and time order; errors name the column and the row.
    pub fn validate(&self) -> Result<(), AtError> {
        self.validate_lengths()?;
        if !self.rows_ok() {
            self.row_error()?;
        }
        self.validate_extras()
    }

    fn validate_lengths(&self) -> Result<(), AtError> {
        let n = self.len();
        let f64s: [(&str, &[f64]); 18] = [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
            ("volume", self.volume),
            ("vah_trade_dist", self.vah_trade_dist),
            ("val_trade_dist", self.val_trade_dist),
            ("mid_close", self.mid_close),
            ("spread_avg", self.spread_avg),
            ("poc", self.poc),
            ("vah", self.vah),
            ("val", self.val),
            ("of_1m", self.of_1m),
            ("of_norm_1m", self.of_norm_1m),
            ("qimb_close", self.qimb_close),
            ("qimb_ema", self.qimb_ema),
            ("ambiguous_frac", self.ambiguous_frac),
            ("next_bid", self.next_bid),
        ];
        let bad_len = |name: &str, len: usize| AtError::InvalidInput {
            location: format!("feature table column `{name}`"),
            message: format!("has {len} rows, `ts_min` has {n}"),
        };
        for (name, c) in f64s {
            if c.len() != n {
                return Err(bad_len(name, c.len()));
            }
        }
        for (name, len) in [
            ("next_ask", self.next_ask.len()),
            ("va_valid", self.va_valid.len()),
            ("next_quote_ts", self.next_quote_ts.len()),
            ("low_ts", self.low_ts.len()),
            ("high_ts", self.high_ts.len()),
        ] {
            if len != n {
                return Err(bad_len(name, len));
            }
        }
        Ok(())
    }

    /// `validate`, and in the same pass over the rows (the summation order is the row
    /// order, as everywhere): over minutes with trades and a finite ambiguous fraction,
    /// the sum, count and max of that fraction, and how many exceed `threshold`.
    pub(crate) fn validate_with_ambiguity(
        &self,
        threshold: f64,
    ) -> Result<(f64, f64, f64, usize), AtError> {
        self.validate_lengths()?;
        let n = self.len();
        let (ts, nb, nq) = (
            &self.ts_min[..n],
            &self.next_bid[..n],
            &self.next_quote_ts[..n],
        );
        let (close, high, low, amb) = (
            &self.close[..n],
            &self.high[..n],
            &self.low[..n],
            &self.ambiguous_frac[..n],
        );
        let (mut sum, mut cnt, mut max, mut above) = (0.0, 0.0, 0.0, 0usize);
        let mut ok = match ts.first() {
            Some(t) => t.rem_euclid(60_000) == 0,
            None => true,
        };
        for m in 0..n {
            let t = ts[m];
            if m > 0 {
                let prev = ts[m - 1];
                ok &= t > prev && (t.wrapping_sub(prev) == 60_000 || t.rem_euclid(60_000) == 0);
            }
            ok &= !(nb[m].is_finite() && nq[m] < t + 60_000);
            let v = amb[m];
            if close[m].is_finite() && high[m].is_finite() && low[m].is_finite() && v.is_finite() {
                sum += v;
                cnt += 1.0;
                if v > max {
                    max = v;
                }
                above += usize::from(v > threshold);
            }
        }
        if !ok {
            self.row_error()?;
        }
        self.validate_extras()?;
        Ok((sum, cnt, max, above))
    }

    /// Whether every row passes the checks of `row_error`: one pass without early exits
    /// or divisions in the usual case (consecutive minutes), for speed.
    fn rows_ok(&self) -> bool {
        let n = self.len();
        let (ts, nb, nq) = (
            &self.ts_min[..n],
            &self.next_bid[..n],
            &self.next_quote_ts[..n],
        );
        let Some(&first) = ts.first() else {
            return true;
        };
        let mut ok = first.rem_euclid(60_000) == 0;
        for m in 1..n {
            // Increasing, and on a minute boundary (the previous row is): the next minute,
            // or a later one checked in full.
            let (t, prev) = (ts[m], ts[m - 1]);
            ok &= t > prev && (t.wrapping_sub(prev) == 60_000 || t.rem_euclid(60_000) == 0);
        }
        for m in 0..n {
            ok &= !(nb[m].is_finite() && nq[m] < ts[m] + 60_000);
        }
        ok
    }

    /// The first row that fails a check, as an error.
    fn row_error(&self) -> Result<(), AtError> {
        let n = self.len();
        for m in 0..n {
            let t = self.ts_min[m];
            if t.rem_euclid(60_000) != 0 {
                return Err(AtError::InvalidInput {
                    location: format!("feature table row {m} column `ts_min`"),
                    message: format!("{t} is not on a minute boundary"),
                });
            }
            if m > 0 && t <= self.ts_min[m - 1] {
                return Err(AtError::OutOfOrder {
                    location: format!("feature table row {m} column `ts_min`"),
                    message: format!("{t} does not follow {}", self.ts_min[m - 1]),
                });
            }
            if self.next_bid[m].is_finite() && self.next_quote_ts[m] < t + 60_000 {
                return Err(AtError::InvalidInput {
                    location: format!("feature table row {m} column `next_quote_ts`"),
                    message: format!(
                        "{} is not after the minute's close {} (fills would look ahead)",
                        self.next_quote_ts[m],
                        t + 59_999
                    ),
                });
            }
        }
        Ok(())
    }

    /// Funding history and tick path checks.
    fn validate_extras(&self) -> Result<(), AtError> {
        let n = self.len();
        if let Some(fh) = &self.funding {
            if fh.ts.len() != fh.rate.len() {
                return Err(AtError::InvalidInput {
                    location: "funding history".into(),
                    message: format!("ts has {} rows, rate has {}", fh.ts.len(), fh.rate.len()),
                });
            }
            for i in 0..fh.ts.len() {
                if i > 0 && fh.ts[i] <= fh.ts[i - 1] {
                    return Err(AtError::OutOfOrder {
                        location: format!("funding history row {i} column `ts`"),
                        message: format!("{} does not follow {}", fh.ts[i], fh.ts[i - 1]),
                    });
                }
                if !fh.rate[i].is_finite() {
                    return Err(AtError::InvalidInput {
                        location: format!("funding history row {i} column `rate`"),
                        message: format!("{} is not a finite rate", fh.rate[i]),
                    });
                }
            }
        }
        if let Some(tp) = &self.ticks {
            if tp.start.len() != n + 1 || tp.ts.len() != tp.price.len() {
                return Err(AtError::InvalidInput {
                    location: "tick path".into(),
                    message: format!(
                        "start needs {} offsets (got {}), ts/price lengths {} / {}",
                        n + 1,
                        tp.start.len(),
                        tp.ts.len(),
                        tp.price.len()
                    ),
                });
            }
            if tp.start[n] as usize > tp.ts.len() || tp.start.windows(2).any(|w| w[0] > w[1]) {
                return Err(AtError::InvalidInput {
                    location: "tick path column `start`".into(),
                    message: "offsets must be non-decreasing and within the tick arrays".into(),
                });
            }
        }
        Ok(())
    }

    /// All kernel inputs as contiguous rows (one 152-byte row per minute reads far faster
    /// than 18 column streams in the hot loop).
    pub fn rows(&self) -> Vec<MinuteInput> {
        (0..self.len()).map(|m| self.input(m)).collect()
    }

    /// The kernel's view of row `m`.
    #[inline]
    pub fn input(&self, m: usize) -> MinuteInput {
        MinuteInput {
            ts_min: self.ts_min[m],
            open: self.open[m],
            high: self.high[m],
            low: self.low[m],
            close: self.close[m],
            volume: self.volume[m],
            vah_trade_dist: self.vah_trade_dist[m],
            val_trade_dist: self.val_trade_dist[m],
            mid_close: self.mid_close[m],
            spread_avg: self.spread_avg[m],
            poc: self.poc[m],
            vah: self.vah[m],
            val: self.val[m],
            va_valid: self.va_valid[m],
            of_1m: self.of_1m[m],
            of_norm_1m: self.of_norm_1m[m],
            qimb_close: self.qimb_close[m],
            qimb_ema: self.qimb_ema[m],
            ambiguous_frac: self.ambiguous_frac[m],
        }
    }
}

/// Row `m` of a table read in place: the kernel's view of the minute without gathering
/// its 18 columns (`at_strategy::Bar`; the kernel reads only the fields it needs, and
/// columns are far apart in memory, so a full gather per minute is what costs).
#[derive(Clone, Copy)]
pub struct Row<'t, 'a> {
    pub t: &'t MinuteTable<'a>,
    pub m: usize,
}

macro_rules! row_fields {
    ($($f:ident: $t:ty),* $(,)?) => {
        impl Bar for Row<'_, '_> {
            $(
                #[inline(always)]
                fn $f(&self) -> $t {
                    self.t.$f[self.m]
                }
            )*
        }
    };
}

at_strategy::with_bar_fields!(row_fields);

/// Row `m` with the fields every minute's acceptance check reads already loaded (the
/// backtester's idle scan has them in registers); the rest read in place like `Row`.
#[derive(Clone, Copy)]
pub struct HotRow<'t, 'a> {
    pub close: f64,
    pub high: f64,
    pub low: f64,
    pub vah: f64,
    pub val: f64,
    pub poc: f64,
    pub va_valid: bool,
    pub t: &'t MinuteTable<'a>,
    pub m: usize,
}

impl<'t, 'a> HotRow<'t, 'a> {
    #[inline(always)]
    pub fn new(t: &'t MinuteTable<'a>, m: usize) -> Self {
        Self {
            close: t.close[m],
            high: t.high[m],
            low: t.low[m],
            vah: t.vah[m],
            val: t.val[m],
            poc: t.poc[m],
            va_valid: t.va_valid[m],
            t,
            m,
        }
    }
}

macro_rules! hot_fields {
    (hot: $($h:ident: $ht:ty),*; cold: $($f:ident: $t:ty),* $(,)?) => {
        impl Bar for HotRow<'_, '_> {
            $(
                #[inline(always)]
                fn $h(&self) -> $ht {
                    self.$h
                }
            )*
            $(
                #[inline(always)]
                fn $f(&self) -> $t {
                    self.t.$f[self.m]
                }
            )*
        }
    };
}

hot_fields!(
    hot: close: f64, high: f64, low: f64, vah: f64, val: f64, poc: f64, va_valid: bool;
    cold: ts_min: i64,
    open: f64,
    volume: f64,
    vah_trade_dist: f64,
    val_trade_dist: f64,
    mid_close: f64,
    spread_avg: f64,
    of_1m: f64,
    of_norm_1m: f64,
    qimb_close: f64,
    qimb_ema: f64,
    ambiguous_frac: f64,
);

/// Owned columns (tests, benchmarks, the synthetic series); `view()` borrows them.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct OwnedTable {
    pub ts_min: Vec<i64>,
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
    pub vah_trade_dist: Vec<f64>,
    pub val_trade_dist: Vec<f64>,
    pub mid_close: Vec<f64>,
    pub spread_avg: Vec<f64>,
    pub poc: Vec<f64>,
    pub vah: Vec<f64>,
    pub val: Vec<f64>,
    pub va_valid: Vec<bool>,
    pub of_1m: Vec<f64>,
    pub of_norm_1m: Vec<f64>,
    pub qimb_close: Vec<f64>,
    pub qimb_ema: Vec<f64>,
    pub ambiguous_frac: Vec<f64>,
    pub next_quote_ts: Vec<i64>,
    pub next_bid: Vec<f64>,
    pub next_ask: Vec<f64>,
    pub low_ts: Vec<i64>,
    pub high_ts: Vec<i64>,
    pub tick_ts: Vec<i64>,
    pub tick_price: Vec<f64>,
    pub tick_start: Vec<u32>,
}

impl OwnedTable {
    /// Append one minute with its fill reference.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        x: &MinuteInput,
        next_quote_ts: i64,
        next_bid: f64,
        next_ask: f64,
        low_ts: i64,
        high_ts: i64,
    ) {
        self.ts_min.push(x.ts_min);
        self.open.push(x.open);
        self.high.push(x.high);
        self.low.push(x.low);
        self.close.push(x.close);
        self.volume.push(x.volume);
        self.vah_trade_dist.push(x.vah_trade_dist);
        self.val_trade_dist.push(x.val_trade_dist);
        self.mid_close.push(x.mid_close);
        self.spread_avg.push(x.spread_avg);
        self.poc.push(x.poc);
        self.vah.push(x.vah);
        self.val.push(x.val);
        self.va_valid.push(x.va_valid);
        self.of_1m.push(x.of_1m);
        self.of_norm_1m.push(x.of_norm_1m);
        self.qimb_close.push(x.qimb_close);
        self.qimb_ema.push(x.qimb_ema);
        self.ambiguous_frac.push(x.ambiguous_frac);
        self.next_quote_ts.push(next_quote_ts);
        self.next_bid.push(next_bid);
        self.next_ask.push(next_ask);
        self.low_ts.push(low_ts);
        self.high_ts.push(high_ts);
    }

    /// Drop the first `k` rows of every per-row column (`tick_start` keeps its leading
    /// entry: it has one more than there are rows).
    pub fn drop_front(&mut self, k: usize) {
        let k = k.min(self.ts_min.len());
        macro_rules! drop {
            ($($c:ident),*) => { $( self.$c.drain(..k.min(self.$c.len())); )* };
        }
        drop!(
            ts_min,
            open,
            high,
            low,
            close,
            volume,
            vah_trade_dist,
            val_trade_dist,
            mid_close,
            spread_avg,
            poc,
            vah,
            val,
            va_valid,
            of_1m,
            of_norm_1m,
            qimb_close,
            qimb_ema,
            ambiguous_frac,
            next_quote_ts,
            next_bid,
            next_ask,
            low_ts,
            high_ts
        );
        if !self.tick_start.is_empty() {
            let n = k.min(self.tick_start.len() - 1);
            self.tick_start.drain(..n);
        }
    }

    pub fn view(&self) -> MinuteTable<'_> {
        MinuteTable {
            ts_min: &self.ts_min,
            open: &self.open,
            high: &self.high,
            low: &self.low,
            close: &self.close,
            volume: &self.volume,
            vah_trade_dist: &self.vah_trade_dist,
            val_trade_dist: &self.val_trade_dist,
            mid_close: &self.mid_close,
            spread_avg: &self.spread_avg,
            poc: &self.poc,
            vah: &self.vah,
            val: &self.val,
            va_valid: &self.va_valid,
            of_1m: &self.of_1m,
            of_norm_1m: &self.of_norm_1m,
            qimb_close: &self.qimb_close,
            qimb_ema: &self.qimb_ema,
            ambiguous_frac: &self.ambiguous_frac,
            next_quote_ts: &self.next_quote_ts,
            next_bid: &self.next_bid,
            next_ask: &self.next_ask,
            low_ts: &self.low_ts,
            high_ts: &self.high_ts,
            ticks: if self.tick_start.len() == self.ts_min.len() + 1 {
                Some(TickPath {
                    ts: &self.tick_ts,
                    price: &self.tick_price,
                    start: &self.tick_start,
                })
            } else {
                None
            },
            funding: None,
        }
    }
}
