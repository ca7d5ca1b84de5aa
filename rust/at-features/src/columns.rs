//! Columnar form of stage-1 and stage-2 output (what crosses to Python and is stored), and
//! stage 2 run from those stored columns.
//!
//! Stored stage-1 layout: one row per minute (prices as floats, NaN = none, timestamps
//! `-1` = none) plus the minute histograms as a flat triple `(hist_minute, hist_bin,
//! hist_qty)`: minute start, lower edge of the base bin in ticks, volume in
//! [`crate::VOLUME_QUANTUM`] units. Stage 2 reads back only `ts_min`, `bid_px_close`,
//! `ask_px_close`, `close`, `volume` and the triple.

use crate::engine::{MinuteOutput, QuoteSource, TradeSource};
use crate::minute::MinuteSummary;
use crate::stage1::TradeSide;
use crate::stage2::{FeatureRow, Stage2, Stage2Input};
use crate::{PriceScale, Stage2Config};
use at_types::{AtError, Quote, Trade};

/// Named typed columns.
#[derive(Debug, Default, Clone)]
pub struct Columns {
    pub f64s: Vec<(&'static str, Vec<f64>)>,
    pub i64s: Vec<(&'static str, Vec<i64>)>,
    pub i8s: Vec<(&'static str, Vec<i8>)>,
    pub bools: Vec<(&'static str, Vec<bool>)>,
}

impl Columns {
    fn f(&mut self, name: &'static str, v: Vec<f64>) {
        self.f64s.push((name, v));
    }
    fn i(&mut self, name: &'static str, v: Vec<i64>) {
        self.i64s.push((name, v));
    }
    pub fn extend(&mut self, other: Columns) {
        self.f64s.extend(other.f64s);
        self.i64s.extend(other.i64s);
        self.i8s.extend(other.i8s);
        self.bools.extend(other.bools);
    }
}

/// Stage-1 columns of minute summaries.
pub fn stage1_columns(scale: &PriceScale, ms: &[&MinuteSummary]) -> Columns {
    let px = |v: Option<i64>| v.map_or(f64::NAN, |t| scale.price(t));
    let ts = |v: Option<i64>| v.unwrap_or(-1);
    let mut c = Columns::default();
    macro_rules! fcol {
        ($name:expr, $e:expr) => {
            c.f($name, ms.iter().map($e).collect())
        };
    }
    macro_rules! icol {
        ($name:expr, $e:expr) => {
            c.i($name, ms.iter().map($e).collect())
        };
    }
    icol!("ts_min", |s| s.ts_min);
    fcol!("open", |s| px(s.open));
    fcol!("high", |s| px(s.high));
    fcol!("low", |s| px(s.low));
    fcol!("close", |s| px(s.close));
    fcol!("volume", |s| s.volume);
    fcol!("vwap", |s| scale.price_f(s.vwap_ticks()));
    icol!("trade_count", |s| s.trade_count as i64);
    icol!("group_count", |s| s.group_count as i64);
    icol!("first_trade_ts", |s| ts(s.first_trade_ts));
    icol!("last_trade_ts", |s| ts(s.last_trade_ts));
    icol!("low_ts", |s| ts(s.low_ts));
    icol!("high_ts", |s| ts(s.high_ts));
    fcol!("bid_px_close", |s| px(s.l1_close.map(|q| q.bid_ticks)));
    fcol!("ask_px_close", |s| px(s.l1_close.map(|q| q.ask_ticks)));
    fcol!("bid_sz_close", |s| s
        .l1_close
        .map_or(f64::NAN, |q| q.bid_sz));
    fcol!("ask_sz_close", |s| s
        .l1_close
        .map_or(f64::NAN, |q| q.ask_sz));
    fcol!("spread_close", |s| px(s.spread_close_ticks()));
    fcol!("mid_close", |s| s
        .mid_close_ticks()
        .map_or(f64::NAN, |m| scale.price_f(m)));
    icol!("l1_ts", |s| ts(s.l1_close.map(|q| q.ts_ms)));
    fcol!("of_1m", |s| s.of);
    fcol!("buy_volume", |s| s.buy_volume);
    fcol!("sell_volume", |s| s.sell_volume);
    fcol!("ambiguous_volume", |s| s.ambiguous_volume);
    fcol!("of_norm_1m", |s| if s.volume > 0.0 {
        s.of / s.volume
    } else {
        f64::NAN
    });
    fcol!("ambiguous_trade_frac_1m", |s| if s.volume > 0.0 {
        s.ambiguous_volume / s.volume
    } else {
        f64::NAN
    });
    icol!("stale_trades", |s| s.stale_trades as i64);
    icol!("unmatched_trades", |s| s.unmatched_trades as i64);
    icol!("side_cmp_quote", |s| s.side_cmp_quote as i64);
    icol!("side_agree_quote", |s| s.side_agree_quote as i64);
    icol!("side_cmp_final", |s| s.side_cmp_final as i64);
    icol!("side_agree_final", |s| s.side_agree_final as i64);
    icol!("quote_count", |s| s.quote_count as i64);
    fcol!("bid_hi", |s| px(s.bid_hi));
    fcol!("bid_lo", |s| px(s.bid_lo));
    fcol!("ask_hi", |s| px(s.ask_hi));
    fcol!("ask_lo", |s| px(s.ask_lo));
    icol!("fq_ts", |s| ts(s.first_quote.map(|q| q.ts_ms)));
    fcol!("fq_bid_px", |s| px(s.first_quote.map(|q| q.bid_ticks)));
    fcol!("fq_ask_px", |s| px(s.first_quote.map(|q| q.ask_ticks)));
    fcol!("fq_bid_sz", |s| s
        .first_quote
        .map_or(f64::NAN, |q| q.bid_sz));
    fcol!("fq_ask_sz", |s| s
        .first_quote
        .map_or(f64::NAN, |q| q.ask_sz));
    fcol!("qimb_close", |s| s.qimb_close);
    fcol!("qimb_ema_60s", |s| s.qimb_ema);
    let n: usize = ms.iter().map(|s| s.hist.len()).sum();
    let (mut hm, mut hb, mut hq) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for s in ms {
        for &(b, q) in &s.hist {
            hm.push(s.ts_min);
            hb.push(b);
            hq.push(q);
        }
    }
    c.i("hist_minute", hm);
    c.i("hist_bin", hb);
    c.i("hist_qty", hq);
    c
}

/// Stage-2 columns of feature rows.
pub fn stage2_columns(rows: &[&FeatureRow]) -> Columns {
    let mut c = Columns::default();
    c.i("ts_min", rows.iter().map(|r| r.ts_min).collect());
    c.f("sigma_240", rows.iter().map(|r| r.sigma_240).collect());
    c.f(
        "spread_avg_60m",
        rows.iter().map(|r| r.spread_avg).collect(),
    );
    c.f("bin_width", rows.iter().map(|r| r.bin_width).collect());
    c.i(
        "bin_width_ticks",
        rows.iter().map(|r| r.bin_width_ticks).collect(),
    );
    c.i(
        "bin_width_candidate_ticks",
        rows.iter().map(|r| r.bin_width_candidate_ticks).collect(),
    );
    c.bools
        .push(("rebucketed", rows.iter().map(|r| r.rebucketed).collect()));
    c.f("poc", rows.iter().map(|r| r.poc).collect());
    c.f("vah", rows.iter().map(|r| r.vah).collect());
    c.f("val", rows.iter().map(|r| r.val).collect());
    c.f("va_coverage", rows.iter().map(|r| r.va_coverage).collect());
    c.i(
        "va_bin_count",
        rows.iter().map(|r| r.va_bin_count).collect(),
    );
    c.bools
        .push(("va_valid", rows.iter().map(|r| r.va_valid).collect()));
    c.f(
        "total_volume_4h",
        rows.iter().map(|r| r.total_volume_4h).collect(),
    );
    c.f("bvc_net", rows.iter().map(|r| r.bvc_net).collect());
    c.f(
        "vah_trade_dist",
        rows.iter().map(|r| r.vah_trade_dist).collect(),
    );
    c.f(
        "val_trade_dist",
        rows.iter().map(|r| r.val_trade_dist).collect(),
    );
    c
}

/// Both stages' columns of engine output (stage-1 `ts_min` / `mid_close` kept once).
pub fn output_columns(scale: &PriceScale, out: &[MinuteOutput]) -> Columns {
    let s1: Vec<&MinuteSummary> = out.iter().map(|o| &o.0).collect();
    let s2: Vec<&FeatureRow> = out.iter().map(|o| &o.1).collect();
    let mut c = stage1_columns(scale, &s1);
    let mut c2 = stage2_columns(&s2);
    c2.i64s.retain(|(n, _)| *n != "ts_min");
    c.extend(c2);
    c
}

/// Per-trade columns (`raw_trades.inferred_side` and the matched quote).
pub fn trade_columns(scale: &PriceScale, sides: &[TradeSide]) -> Columns {
    let mut c = Columns::default();
    c.i8s
        .push(("trade_sign", sides.iter().map(|s| s.sign).collect()));
    c.i8s.push((
        "trade_quote_sign",
        sides.iter().map(|s| s.quote_sign).collect(),
    ));
    c.f(
        "trade_bid_px",
        sides
            .iter()
            .map(|s| s.bid_ticks.map_or(f64::NAN, |t| scale.price(t)))
            .collect(),
    );
    c.f(
        "trade_ask_px",
        sides
            .iter()
            .map(|s| s.ask_ticks.map_or(f64::NAN, |t| scale.price(t)))
            .collect(),
    );
    c.i(
        "trade_staleness_ms",
        sides.iter().map(|s| s.staleness_ms.unwrap_or(-1)).collect(),
    );
    c
}

/// Stored stage-1 columns needed by stage 2.
pub struct Stage2Source<'a> {
    pub ts_min: &'a [i64],
    pub bid_px_close: &'a [f64],
    pub ask_px_close: &'a [f64],
    pub close: &'a [f64],
    pub volume: &'a [f64],
    pub hist_minute: &'a [i64],
    pub hist_bin: &'a [i64],
    pub hist_qty: &'a [i64],
}

/// Stage 2 from stored stage-1 columns (the grid's path: no tick is re-read).
pub fn stage2_from_columns(
    cfg: &Stage2Config,
    src: &Stage2Source<'_>,
) -> Result<Vec<FeatureRow>, AtError> {
    let n = src.ts_min.len();
    for (name, len) in [
        ("bid_px_close", src.bid_px_close.len()),
        ("ask_px_close", src.ask_px_close.len()),
        ("close", src.close.len()),
        ("volume", src.volume.len()),
    ] {
        if len != n {
            return Err(AtError::InvalidInput {
                location: format!("stage-1 column {name}"),
                message: format!("length {len} differs from ts_min ({n})"),
            });
        }
    }
    let h = src.hist_minute.len();
    if src.hist_bin.len() != h || src.hist_qty.len() != h {
        return Err(AtError::InvalidInput {
            location: "stage-1 histogram".into(),
            message: "hist_minute, hist_bin and hist_qty must have the same length".into(),
        });
    }
    let scale = PriceScale::new(cfg.tick_size);
    let tk = |p: f64| {
        if p.is_finite() {
            Some(scale.ticks(p))
        } else {
            None
        }
    };
    let mut s = Stage2::new(cfg.clone())?;
    let mut rows = Vec::with_capacity(n);
    let mut hist: Vec<(i64, i64)> = Vec::new();
    let mut k = 0usize;
    for i in 0..n {
        let ts = src.ts_min[i];
        hist.clear();
        if k < h && src.hist_minute[k] < ts {
            return Err(AtError::InvalidInput {
                location: format!("stage-1 histogram row {k}"),
                message: format!(
                    "minute {} has no stage-1 row or is out of order",
                    src.hist_minute[k]
                ),
            });
        }
        while k < h && src.hist_minute[k] == ts {
            hist.push((src.hist_bin[k], src.hist_qty[k]));
            k += 1;
        }
        let (b, a) = (tk(src.bid_px_close[i]), tk(src.ask_px_close[i]));
        let (mid, spread) = match (b, a) {
            (Some(b), Some(a)) => ((b as f64 + a as f64) / 2.0, Some(a - b)),
            _ => (f64::NAN, None),
        };
        rows.push(s.push(Stage2Input {
            ts_min: ts,
            mid_close_ticks: mid,
            spread_close_ticks: spread,
            close_ticks: tk(src.close[i]),
            volume: src.volume[i],
            hist: &hist,
        })?);
    }
    if k < h {
        return Err(AtError::InvalidInput {
            location: format!("stage-1 histogram row {k}"),
            message: format!("minute {} has no stage-1 row", src.hist_minute[k]),
        });
    }
    Ok(rows)
}

#[cold]
#[inline(never)]
fn grid_error(kind: &str, i: usize, key: &str, p: f64, scale: &PriceScale) -> AtError {
    AtError::InvalidInput {
        location: format!("{kind} #{i}"),
        message: format!(
            "{key} {p} is not a finite price on the tick grid (tick_size {})",
            scale.tick()
        ),
    }
}

/// A price `x` in ticks lies within 1e-6 tick of its nearest tick `t` (and is finite).
#[inline]
fn on_grid(x: f64, t: i64) -> bool {
    x.is_finite() && (x - t as f64).abs() <= 1e-6
}

fn check_lengths(kind: &str, lens: &[(&str, usize)]) -> Result<(), AtError> {
    let n = lens[0].1;
    for (k, l) in lens {
        if *l != n {
            return Err(AtError::InvalidInput {
                location: format!("{kind} arrays"),
                message: format!("array `{k}` has length {l}, expected {n}"),
            });
        }
    }
    Ok(())
}

/// Trades as columns with float prices, converted to ticks on the fly (no copy of the
/// batch): the price is checked to lie on the tick grid before anything is fed.
pub struct TradeColumns<'a> {
    pub ts_ms: &'a [i64],
    pub seq: &'a [i64],
    pub price: &'a [f64],
    pub size: &'a [f64],
    pub exchange_side: &'a [i8],
    pub scale: PriceScale,
}

impl<'a> TradeColumns<'a> {
    pub fn new(
        ts_ms: &'a [i64],
        seq: &'a [i64],
        price: &'a [f64],
        size: &'a [f64],
        exchange_side: &'a [i8],
        scale: PriceScale,
    ) -> Result<Self, AtError> {
        check_lengths(
            "trades",
            &[
                ("ts_ms", ts_ms.len()),
                ("seq", seq.len()),
                ("price", price.len()),
                ("size", size.len()),
                ("exchange_side", exchange_side.len()),
            ],
        )?;
        Ok(Self {
            ts_ms,
            seq,
            price,
            size,
            exchange_side,
            scale,
        })
    }
}

impl TradeSource for TradeColumns<'_> {
    fn len(&self) -> usize {
        self.ts_ms.len()
    }
    #[inline]
    fn key(&self, i: usize) -> (i64, i64, f64) {
        (self.ts_ms[i], self.seq[i], self.size[i])
    }
    #[inline]
    fn get(&self, i: usize) -> Trade {
        Trade {
            ts_ms: self.ts_ms[i],
            seq: self.seq[i],
            price_ticks: self.scale.ticks(self.price[i]),
            size: self.size[i],
            exchange_side: self.exchange_side[i],
        }
    }
    #[inline(always)]
    fn get_checked(&self, i: usize) -> Result<Trade, AtError> {
        let p = self.price[i];
        let x = self.scale.in_ticks(p);
        let t = crate::round_half_away(x);
        if !on_grid(x, t) {
            return Err(grid_error("trade", i, "price", p, &self.scale));
        }
        Ok(Trade {
            ts_ms: self.ts_ms[i],
            seq: self.seq[i],
            price_ticks: t,
            size: self.size[i],
            exchange_side: self.exchange_side[i],
        })
    }
}

/// Quotes as columns with float prices, converted to ticks on the fly.
pub struct QuoteColumns<'a> {
    pub ts_ms: &'a [i64],
    pub seq: &'a [i64],
    pub bid_px: &'a [f64],
    pub bid_sz: &'a [f64],
    pub ask_px: &'a [f64],
    pub ask_sz: &'a [f64],
    pub scale: PriceScale,
}

impl<'a> QuoteColumns<'a> {
    pub fn new(
        ts_ms: &'a [i64],
        seq: &'a [i64],
        bid_px: &'a [f64],
        bid_sz: &'a [f64],
        ask_px: &'a [f64],
        ask_sz: &'a [f64],
        scale: PriceScale,
    ) -> Result<Self, AtError> {
        check_lengths(
            "quotes",
            &[
                ("ts_ms", ts_ms.len()),
                ("seq", seq.len()),
                ("bid_px", bid_px.len()),
                ("bid_sz", bid_sz.len()),
                ("ask_px", ask_px.len()),
                ("ask_sz", ask_sz.len()),
            ],
        )?;
        Ok(Self {
            ts_ms,
            seq,
            bid_px,
            bid_sz,
            ask_px,
            ask_sz,
            scale,
        })
    }
}

impl QuoteSource for QuoteColumns<'_> {
    fn len(&self) -> usize {
        self.ts_ms.len()
    }
    #[inline]
    fn key(&self, i: usize) -> (i64, i64, f64, f64) {
        (self.ts_ms[i], self.seq[i], self.bid_sz[i], self.ask_sz[i])
    }
    #[inline]
    fn get(&self, i: usize) -> Quote {
        Quote {
            ts_ms: self.ts_ms[i],
            seq: self.seq[i],
            bid_ticks: self.scale.ticks(self.bid_px[i]),
            bid_sz: self.bid_sz[i],
            ask_ticks: self.scale.ticks(self.ask_px[i]),
            ask_sz: self.ask_sz[i],
        }
    }
    #[inline(always)]
    fn get_checked(&self, i: usize) -> Result<Quote, AtError> {
        let (bp, ap) = (self.bid_px[i], self.ask_px[i]);
        let (bx, ax) = (self.scale.in_ticks(bp), self.scale.in_ticks(ap));
        let (b, a) = (crate::round_half_away(bx), crate::round_half_away(ax));
        if !on_grid(bx, b) {
            return Err(grid_error("quote", i, "bid_px", bp, &self.scale));
        }
        if !on_grid(ax, a) {
            return Err(grid_error("quote", i, "ask_px", ap, &self.scale));
        }
        Ok(Quote {
            ts_ms: self.ts_ms[i],
            seq: self.seq[i],
            bid_ticks: b,
            bid_sz: self.bid_sz[i],
            ask_ticks: a,
            ask_sz: self.ask_sz[i],
        })
    }
}
