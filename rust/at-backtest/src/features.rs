//! The one path from a feature point (stage-1 + stage-2 output, by stored column name) to
//! the kernel's input and the fill model's references: the backtest command, the grid,
//! the grid report (through `at-py`) and the streaming driver (`crate::stream`) all build
//! their minute rows here.
//!
//! Domain pitfalls handled here, once:
//! * **Fill references look ahead on purpose, and only by one quote.** A decision taken
//!   at the close of minute `m` fills against the first L1 quote strictly after it. Stage 1
//!   keeps each minute's *first* quote (`fq_*`), so the reference of row `m` is the first
//!   quote of the next row that has one (a quiet minute is skipped: the quote still in
//!   force at its close is older than the decision). Until such a row exists the
//!   reference is unknown (NaN prices, ts -1) and an order waiting on it stays pending.
//!   **A reference never crosses a data gap** (a hole in `ts_min`, see at-features
//!   `stage1`): the rows of a segment that no quote of the same segment follows keep an
//!   unknown reference, so no order is ever priced on the far side of a hole.
//! * **BVC fallback (SPEC §5.9).** With `use_bvc_fallback` on, order flow is the BVC
//!   proxy (`bvc_net`, NaN while its lookback fills) and `of_norm_1m` is that over the
//!   minute's volume, exactly as `features_1m.of_1m` stores it; off, stage 1's inferred OF.
//! * **Every column is required.** A missing column is an error naming it, never a
//!   default; so is a column whose length differs from `ts_min`'s.

use at_strategy::MinuteInput;
use at_types::AtError;

use crate::table::OwnedTable;

/// Calls `$m!` with the float feature columns as `field: "stored name"`: the one list the
/// struct, the gathering and the exported names expand.
macro_rules! with_f64_columns {
    ($m:ident) => {
        $m!(
            open: "open",
            high: "high",
            low: "low",
            close: "close",
            volume: "volume",
            vah_trade_dist: "vah_trade_dist",
            val_trade_dist: "val_trade_dist",
            mid_close: "mid_close",
            spread_avg_60m: "spread_avg_60m",
            poc: "poc",
            vah: "vah",
            val: "val",
            of_1m: "of_1m",
            of_norm_1m: "of_norm_1m",
            qimb_close: "qimb_close",
            qimb_ema_60s: "qimb_ema_60s",
            ambiguous_trade_frac_1m: "ambiguous_trade_frac_1m",
            bvc_net: "bvc_net",
            fq_bid_px: "fq_bid_px",
            fq_ask_px: "fq_ask_px",
        );
    };
}

/// Integer feature columns read (timestamps in UTC ms; -1 = none).
pub const FEATURE_I64_COLUMNS: [&str; 4] = ["ts_min", "low_ts", "high_ts", "fq_ts"];
/// Boolean feature columns read.
pub const FEATURE_BOOL_COLUMNS: [&str; 1] = ["va_valid"];

macro_rules! f64_names {
    ($($f:ident: $n:literal),* $(,)?) => {
        /// Float feature columns read (stored names).
        pub const FEATURE_F64_COLUMNS: &[&str] = &[$($n),*];
    };
}
with_f64_columns!(f64_names);

/// Every feature column the minute rows are built from, in one list (exported to Python).
pub fn feature_input_columns() -> Vec<&'static str> {
    FEATURE_I64_COLUMNS
        .iter()
        .chain(FEATURE_F64_COLUMNS.iter())
        .chain(FEATURE_BOOL_COLUMNS.iter())
        .copied()
        .collect()
}

macro_rules! feature_columns {
    ($($f:ident: $n:literal),* $(,)?) => {
        /// Borrowed feature columns of consecutive minutes (fields named like the stored
        /// columns, see [`FEATURE_F64_COLUMNS`]).
        #[derive(Debug, Clone, Copy)]
        pub struct FeatureColumns<'a> {
            pub ts_min: &'a [i64],
            pub low_ts: &'a [i64],
            pub high_ts: &'a [i64],
            pub fq_ts: &'a [i64],
            pub va_valid: &'a [bool],
            $(pub $f: &'a [f64],)*
        }

        impl<'a> FeatureColumns<'a> {
            /// Gather the columns by name from a caller's store; the error names what is
            /// missing or of the wrong length.
            pub fn gather(
                f64s: impl Fn(&str) -> Option<&'a [f64]>,
                i64s: impl Fn(&str) -> Option<&'a [i64]>,
                bools: impl Fn(&str) -> Option<&'a [bool]>,
            ) -> Result<Self, AtError> {
                let ts_min = i64s("ts_min").ok_or_else(|| missing("ts_min"))?;
                let n = ts_min.len();
                let i = |name: &str| -> Result<&'a [i64], AtError> {
                    let c = i64s(name).ok_or_else(|| missing(name))?;
                    same_len(name, c.len(), n).map(|_| c)
                };
                let f = |name: &str| -> Result<&'a [f64], AtError> {
                    let c = f64s(name).ok_or_else(|| missing(name))?;
                    same_len(name, c.len(), n).map(|_| c)
                };
                let va_valid = bools("va_valid").ok_or_else(|| missing("va_valid"))?;
                same_len("va_valid", va_valid.len(), n)?;
                Ok(Self {
                    ts_min,
                    low_ts: i("low_ts")?,
                    high_ts: i("high_ts")?,
                    fq_ts: i("fq_ts")?,
                    va_valid,
                    $($f: f($n)?,)*
                })
            }

            /// Rows `r` only.
            pub fn slice(&self, r: std::ops::Range<usize>) -> Self {
                Self {
                    ts_min: &self.ts_min[r.clone()],
                    low_ts: &self.low_ts[r.clone()],
                    high_ts: &self.high_ts[r.clone()],
                    fq_ts: &self.fq_ts[r.clone()],
                    va_valid: &self.va_valid[r.clone()],
                    $($f: &self.$f[r.clone()],)*
                }
            }
        }
    };
}
with_f64_columns!(feature_columns);

fn missing(name: &str) -> AtError {
    AtError::InvalidInput {
        location: format!("feature column `{name}`"),
        message: "missing (re-run `auction-trader features` if the stored stage-1 summaries \
                  come from an older feature engine)"
            .into(),
    }
}

fn same_len(name: &str, len: usize, n: usize) -> Result<(), AtError> {
    if len == n {
        Ok(())
    } else {
        Err(AtError::InvalidInput {
            location: format!("feature column `{name}`"),
            message: format!("has {len} rows, `ts_min` has {n}"),
        })
    }
}

impl<'a> FeatureColumns<'a> {
    /// The columns of the feature engine's own output (`at_features::columns`), by name.
    pub fn from_columns(c: &'a at_features::columns::Columns) -> Result<Self, AtError> {
        Self::gather(
            |n| c.f64s.iter().find(|x| x.0 == n).map(|x| x.1.as_slice()),
            |n| c.i64s.iter().find(|x| x.0 == n).map(|x| x.1.as_slice()),
            |n| c.bools.iter().find(|x| x.0 == n).map(|x| x.1.as_slice()),
        )
    }
}

impl FeatureColumns<'_> {
    pub fn len(&self) -> usize {
        self.ts_min.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts_min.is_empty()
    }

    /// The kernel's input for row `i` (`use_bvc`: the `use_bvc_fallback` setting).
    #[inline]
    pub fn kernel_input(&self, i: usize, use_bvc: bool) -> MinuteInput {
        let volume = self.volume[i];
        let (of_1m, of_norm_1m) = if use_bvc {
            let of = self.bvc_net[i];
            (of, if volume > 0.0 { of / volume } else { f64::NAN })
        } else {
            (self.of_1m[i], self.of_norm_1m[i])
        };
        MinuteInput {
            ts_min: self.ts_min[i],
            open: self.open[i],
            high: self.high[i],
            low: self.low[i],
            close: self.close[i],
            volume,
            vah_trade_dist: self.vah_trade_dist[i],
            val_trade_dist: self.val_trade_dist[i],
            mid_close: self.mid_close[i],
            spread_avg: self.spread_avg_60m[i],
            poc: self.poc[i],
            vah: self.vah[i],
            val: self.val[i],
            va_valid: self.va_valid[i],
            of_1m,
            of_norm_1m,
            qimb_close: self.qimb_close[i],
            qimb_ema: self.qimb_ema_60s[i],
            ambiguous_frac: self.ambiguous_trade_frac_1m[i],
        }
    }
}

/// The fill-reference rule, incrementally: rows wait for the first later row that brings
/// a first quote (`fq_ts >= 0` with finite prices); that row's quote is their reference.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct References {
    /// First row whose reference is still unknown.
    open: usize,
}

impl References {
    /// Row `i` (rows `< i` already seen) has a usable first quote: rows `open..i` resolve to
    /// it. Returns the range that resolved.
    #[inline]
    fn quote_at(&mut self, i: usize) -> std::ops::Range<usize> {
        let r = self.open..i;
        self.open = i;
        r
    }

    /// Row `i` starts a new segment (a data gap before it): the rows still waiting keep
    /// no reference.
    #[inline]
    fn segment_at(&mut self, i: usize) {
        self.open = i;
    }
}

/// Whether minute `ts` does not follow minute `prev` directly (a data gap between them).
#[inline]
pub fn is_gap(prev: i64, ts: i64) -> bool {
    ts - prev > at_types::MINUTE_MS
}

#[inline]
fn has_quote(fq_ts: i64, bid: f64, ask: f64) -> bool {
    fq_ts >= 0 && bid.is_finite() && ask.is_finite()
}

/// For every row, the row whose first quote is its fill reference (the first later row
/// of the same segment with one), or -1 when none follows: the rule of the minute table,
/// for the stored `features_1m_ext.fill_*` columns.
pub fn reference_rows(ts_min: &[i64], fq_ts: &[i64], fq_bid: &[f64], fq_ask: &[f64]) -> Vec<i64> {
    let mut out = vec![-1i64; fq_ts.len()];
    let mut refs = References::default();
    for i in 0..fq_ts.len() {
        if i > 0 && is_gap(ts_min[i - 1], ts_min[i]) {
            refs.segment_at(i);
        }
        if has_quote(fq_ts[i], fq_bid[i], fq_ask[i]) {
            for j in refs.quote_at(i) {
                out[j] = i as i64;
            }
        }
    }
    out
}

/// A minute table under construction: rows appended in time order, each row's fill
/// reference set when a later row brings its first quote.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TableBuilder {
    pub table: OwnedTable,
    refs: References,
}

impl TableBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The first row still waiting for its fill reference (rows before it are final).
    pub fn first_open_row(&self) -> usize {
        self.refs.open
    }

    /// Drop the first `k` rows (at most `first_open_row`): a streaming driver's
    /// compaction. Later rows keep their values; row numbers move down by `k`.
    pub fn drop_front(&mut self, k: usize) {
        let k = k.min(self.refs.open);
        self.table.drop_front(k);
        self.refs.open -= k;
    }

    /// Append the minutes of `cols` (which must follow the rows already held).
    pub fn append(&mut self, cols: &FeatureColumns<'_>, use_bvc: bool) -> Result<(), AtError> {
        let t = &mut self.table;
        for i in 0..cols.len() {
            let ts = cols.ts_min[i];
            if let Some(&last) = t.ts_min.last() {
                if ts <= last {
                    return Err(AtError::OutOfOrder {
                        location: format!("feature row {i} column `ts_min`"),
                        message: format!("{ts} does not follow {last}"),
                    });
                }
            }
            if t.ts_min.last().is_some_and(|&last| is_gap(last, ts)) {
                self.refs.segment_at(t.ts_min.len());
            }
            // This minute's first quote is the reference of every earlier row without one.
            let (fq, fb, fa) = (cols.fq_ts[i], cols.fq_bid_px[i], cols.fq_ask_px[i]);
            if has_quote(fq, fb, fa) {
                for j in self.refs.quote_at(t.ts_min.len()) {
                    t.next_quote_ts[j] = fq;
                    t.next_bid[j] = fb;
                    t.next_ask[j] = fa;
                }
            }
            t.push(
                &cols.kernel_input(i, use_bvc),
                -1,
                f64::NAN,
                f64::NAN,
                cols.low_ts[i],
                cols.high_ts[i],
            );
        }
        Ok(())
    }
}

/// The backtester's whole table from feature columns (the batch path).
pub fn minute_table(cols: &FeatureColumns<'_>, use_bvc: bool) -> Result<OwnedTable, AtError> {
    let mut b = TableBuilder::new();
    b.append(cols, use_bvc)?;
    Ok(b.table)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Store {
        f: Vec<(&'static str, Vec<f64>)>,
        i: Vec<(&'static str, Vec<i64>)>,
        b: Vec<(&'static str, Vec<bool>)>,
    }

    fn store(n: usize) -> Store {
        let mut f: Vec<(&'static str, Vec<f64>)> = FEATURE_F64_COLUMNS
            .iter()
            .map(|c| (*c, vec![1.0; n]))
            .collect();
        for (name, c) in f.iter_mut() {
            if *name == "bvc_net" {
                *c = vec![f64::NAN; n];
            }
        }
        let ts: Vec<i64> = (0..n as i64).map(|k| k * 60_000).collect();
        Store {
            f,
            i: vec![
                ("ts_min", ts.clone()),
                ("low_ts", ts.clone()),
                ("high_ts", ts.clone()),
                ("fq_ts", ts.iter().map(|t| t + 5).collect()),
            ],
            b: vec![("va_valid", vec![true; n])],
        }
    }

    fn gather(s: &Store) -> Result<FeatureColumns<'_>, AtError> {
        FeatureColumns::gather(
            |n| s.f.iter().find(|c| c.0 == n).map(|c| c.1.as_slice()),
            |n| s.i.iter().find(|c| c.0 == n).map(|c| c.1.as_slice()),
            |n| s.b.iter().find(|c| c.0 == n).map(|c| c.1.as_slice()),
        )
    }

    #[test]
    fn missing_or_short_columns_are_named() {
        let mut s = store(3);
        s.f.retain(|c| c.0 != "qimb_ema_60s");
        let e = gather(&s).unwrap_err().to_string();
        assert!(e.contains("qimb_ema_60s") && e.contains("missing"), "{e}");
        let mut s = store(3);
        s.b[0].1.pop();
        let e = gather(&s).unwrap_err().to_string();
        assert!(e.contains("va_valid") && e.contains("2 rows"), "{e}");
    }

    #[test]
    fn references_skip_quiet_minutes_and_stay_unknown_at_the_end() {
        let mut s = store(4);
        // minute 1 has no quote: row 0's reference is minute 2's first quote
        s.i[3].1[1] = -1;
        let cols = gather(&s).unwrap();
        let t = minute_table(&cols, false).unwrap();
        assert_eq!(t.next_quote_ts, vec![120_005, 120_005, 180_005, -1]);
        assert!(t.next_bid[3].is_nan());
    }

    #[test]
    fn reference_rows_follow_the_table_rule() {
        let nan = f64::NAN;
        let ts = [0, 60_000, 120_000, 180_000, 240_000];
        let r = reference_rows(
            &ts,
            &[5, -1, 9, -1, 7],
            &[1.0, nan, 1.0, nan, nan],
            &[1.0; 5],
        );
        assert_eq!(r, vec![2, 2, -1, -1, -1]);
        // a data gap before row 2: rows 0 and 1 keep no reference
        let ts = [0, 60_000, 900_000, 960_000, 1_020_000];
        let r = reference_rows(
            &ts,
            &[5, -1, 9, -1, 7],
            &[1.0, nan, 1.0, nan, 1.0],
            &[1.0; 5],
        );
        assert_eq!(r, vec![-1, -1, 4, 4, -1]);
    }

    #[test]
    fn references_never_cross_a_data_gap() {
        let mut s = store(4);
        s.i[0].1[2] += 600_000;
        s.i[0].1[3] += 600_000;
        let cols = gather(&s).unwrap();
        let t = minute_table(&cols, false).unwrap();
        assert_eq!(t.next_quote_ts[0], 60_005);
        assert_eq!(
            t.next_quote_ts[1], -1,
            "the first quote after the gap is not a reference"
        );
        assert!(t.next_bid[1].is_nan());
    }

    #[test]
    fn appending_in_pieces_equals_one_batch() {
        let s = store(6);
        let cols = gather(&s).unwrap();
        let whole = minute_table(&cols, false).unwrap();
        let mut b = TableBuilder::new();
        for k in 0..6 {
            let one = cols.slice(k..k + 1);
            b.append(&one, false).unwrap();
        }
        assert_eq!(format!("{:?}", b.table), format!("{whole:?}"));
    }

    #[test]
    fn bvc_replaces_order_flow_only_when_asked() {
        let mut s = store(2);
        for (name, c) in s.f.iter_mut() {
            match *name {
                "bvc_net" => *c = vec![f64::NAN, 4.0],
                "volume" => *c = vec![2.0, 2.0],
                "of_1m" => *c = vec![0.5, 0.5],
                _ => {}
            }
        }
        let cols = gather(&s).unwrap();
        assert_eq!(cols.kernel_input(1, false).of_1m, 0.5);
        let x = cols.kernel_input(1, true);
        assert_eq!((x.of_1m, x.of_norm_1m), (4.0, 2.0));
        assert!(cols.kernel_input(0, true).of_1m.is_nan());
    }
}
