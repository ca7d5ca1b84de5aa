//! Stage 1: trades and quotes in time order → one [`MinuteSummary`] per UTC minute.
//!
//! Streaming contract: events (trades and quotes, mixed) arrive in non-decreasing `ts_ms`;
//! within one millisecond their interleaving does not matter (trades of a millisecond are
//! signed only when time moves past it, against the quote the `quote_match` rule picks).
//! A minute is closed when an event of a later minute arrives or on `close_minute`; minutes
//! without events between two closed minutes are emitted too (empty bar, L1 carried), so
//! the output is a contiguous minute grid within a *segment*. Events of an already closed
//! minute are refused.
//!
//! ## Data gaps (segments)
//! A quiet stretch is not a gap: a minute with quotes but no trade, or up to
//! `max_gap_minutes` consecutive minutes with no event at all, are emitted as usual (empty
//! bars, the L1 quote carried). After `max_gap_minutes` eventless minutes the data is
//! considered to have *stopped* (a recording that ends, two windows months apart, a feed
//! outage in live mode): the minutes beyond are **not emitted**, and the next event starts
//! a new segment with fresh state: no carried quote, tick rule or qimb EMA from before the
//! gap. The minute grid therefore has a hole exactly where the data has one, and every
//! consumer reads a hole in `ts_min` as "the rolling state ends here" (stage 2 restarts its
//! windows and warm-up, the backtester flattens and forgets its acceptance sequences).
//! A wall clock (`close_minute`) and a batch see the same thing: the clock emits the first
//! `max_gap_minutes` eventless minutes as they pass and then nothing, and a batch emits the
//! same minutes when the next event is far away. So the same ticks give the same minutes
//! whether they are imported alone or beside distant data (only the up to
//! `max_gap_minutes` trailing empty minutes of a segment depend on a later event).
//!
//! ## qimb EMA over quote updates in time (SPEC §5.8, spec silent on the details)
//! qimb is a step function of time: the value of the latest quote holds until the next one.
//! `qimb_ema` is the exact continuous-time EMA of that step function with time constant
//! `tau = qimb_ema_span_seconds` (e-folding time): between updates `E` relaxes towards the
//! held value, `E(t1) = E(t0)·e^{-(t1-t0)/tau} + q_held·(1 - e^{-(t1-t0)/tau})`. A value is
//! thus weighted by how long it was on the book, not by how many updates it had (a burst of
//! 50 updates in one millisecond weighs nothing). It starts at the first quote's qimb,
//! carries across minutes and days, and is reported at the minute's end (`ts_min + 60 000`).
//! A quote with `bid_sz + ask_sz == 0` has no qimb: it leaves the held value unchanged.

use serde::{Deserialize, Serialize};

use crate::align::QuoteBook;
use crate::minute::{HistAcc, MinuteSummary};
use crate::side::{quote_sign, TickRule};
use crate::{size_to_units, SideSource, Stage1Config};
use at_types::{minute_of, AtError, Quote, Trade, MINUTE_MS};

const QX_EMPTY: [i64; 4] = [i64::MIN, i64::MAX, i64::MIN, i64::MAX];

/// Per-trade result (optional output: fills `raw_trades.inferred_side` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TradeSide {
    /// Sign used for OF (after fallbacks and `side_source`).
    pub sign: i8,
    /// Quote-rule sign (0 = ambiguous or no quote).
    pub quote_sign: i8,
    /// Matched quote (None before the first quote).
    pub bid_ticks: Option<i64>,
    pub ask_ticks: Option<i64>,
    pub staleness_ms: Option<i64>,
}

/// qimb of a quote; `None` when both sizes are zero.
#[inline]
pub fn qimb(q: &Quote) -> Option<f64> {
    let d = q.bid_sz + q.ask_sz;
    if d > 0.0 {
        Some((q.bid_sz - q.ask_sz) / d)
    } else {
        None
    }
}

/// Continuous-time EMA of the held qimb, evaluated at minute ends.
///
/// Implementation (same mathematics as relaxing at every quote, without an `exp` per
/// quote): within a minute ending at `T`, `E(T) = E(base)·w(T-base) + Σ_segments
/// h·(w(T-end) - w(T-start)) + h_last·(1 - w(T-a))` with `w(k) = e^{-k/tau}` read from a
/// table of the 60 001 possible millisecond distances. The state is rebased at every
/// minute end, so every distance stays within one minute.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ema {
    /// Shared, so that cloning the engine (transactions) does not copy the table. Not in
    /// snapshots (480 kB, a pure function of `qimb_ema_span_seconds`): rebuilt on restore
    /// by [`Stage1Engine::rebuild_derived`] with the same arithmetic, hence the same bits.
    #[serde(skip, default = "empty_table")]
    w: std::sync::Arc<[f64]>,
    base: f64,
    base_t: i64,
    end: i64,
    a_w: f64,
    held: f64,
    acc: f64,
}

fn empty_table() -> std::sync::Arc<[f64]> {
    std::sync::Arc::from(Vec::new())
}

impl Ema {
    fn new(tau_ms: f64) -> Self {
        Self::with_table(Self::table(tau_ms))
    }

    fn table(tau_ms: f64) -> std::sync::Arc<[f64]> {
        (0..=MINUTE_MS)
            .map(|k| (-(k as f64) / tau_ms).exp())
            .collect()
    }

    /// A fresh EMA sharing `other`'s weight table.
    fn new_shared(other: &Self) -> Self {
        Self::with_table(other.w.clone())
    }

    fn with_table(w: std::sync::Arc<[f64]>) -> Self {
        Self {
            w,
            base: f64::NAN,
            base_t: 0,
            end: 0,
            a_w: 1.0,
            held: f64::NAN,
            acc: 0.0,
        }
    }

    #[inline]
    fn update(&mut self, t: i64, q: Option<f64>) {
        if self.base.is_nan() {
            if let Some(v) = q {
                self.base = v;
                self.base_t = t;
                self.end = minute_of(t) + MINUTE_MS;
                self.a_w = self.w[(self.end - t) as usize];
                self.held = v;
                self.acc = 0.0;
            }
            return;
        }
        let wt = self.w[(self.end - t) as usize];
        self.acc += self.held * (wt - self.a_w);
        self.a_w = wt;
        if let Some(v) = q {
            self.held = v;
        }
    }

    /// Value at the end `t_end` of the current minute; rebases the state there.
    fn close(&mut self, t_end: i64) -> f64 {
        if self.base.is_nan() {
            return f64::NAN;
        }
        debug_assert_eq!(t_end, self.end);
        let e = self.base * self.w[(t_end - self.base_t) as usize]
            + self.acc
            + self.held * (1.0 - self.a_w);
        self.base = e;
        self.base_t = t_end;
        self.end = t_end + MINUTE_MS;
        self.a_w = 1.0;
        self.acc = 0.0;
        e
    }
}

#[cold]
#[inline(never)]
fn bad_trade(t: &Trade) -> AtError {
    AtError::InvalidInput {
        location: format!("trade ts_ms={} seq={}", t.ts_ms, t.seq),
        message: format!("size must be a finite non-negative number, got {}", t.size),
    }
}

#[cold]
#[inline(never)]
fn bad_quote(q: &Quote) -> AtError {
    AtError::InvalidInput {
        location: format!("quote ts_ms={} seq={}", q.ts_ms, q.seq),
        message: format!(
            "sizes must be finite and non-negative, got bid_sz={} ask_sz={}",
            q.bid_sz, q.ask_sz
        ),
    }
}

/// The streaming stage-1 engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stage1Engine {
    cfg: Stage1Config,
    book: QuoteBook,
    tick: TickRule,
    cur: Option<MinuteSummary>,
    /// End of the open minute (`i64::MIN` when none is open).
    cur_end: i64,
    acc: HistAcc,
    pending: Vec<Trade>,
    pending_ts: i64,
    last_ts: i64,
    closed_through: Option<i64>,
    ema: Ema,
    /// Quote extremes of the open minute: bid_hi, bid_lo, ask_hi, ask_lo.
    qx: [i64; 4],
    ready: Vec<MinuteSummary>,
    record_trades: bool,
    trade_sides: Vec<TradeSide>,
    /// Minute of the latest event (the last minute opened); `i64::MIN` before any.
    last_event_min: i64,
    /// Number of data gaps met so far (segments started after the first).
    gaps: u64,
}

impl Stage1Engine {
    pub fn new(cfg: Stage1Config) -> Result<Self, AtError> {
        cfg.validate()?;
        let tau_ms = cfg.qimb_ema_span_seconds * 1000.0;
        Ok(Self {
            cfg,
            book: QuoteBook::new(),
            tick: TickRule::new(),
            cur: None,
            cur_end: i64::MIN,
            acc: HistAcc::new(),
            pending: Vec::with_capacity(64),
            pending_ts: i64::MIN,
            last_ts: i64::MIN,
            closed_through: None,
            ema: Ema::new(tau_ms),
            qx: QX_EMPTY,
            ready: Vec::new(),
            record_trades: false,
            trade_sides: Vec::new(),
            last_event_min: i64::MIN,
            gaps: 0,
        })
    }

    pub fn config(&self) -> &Stage1Config {
        &self.cfg
    }

    /// After deserialising a snapshot: rebuild what snapshots leave out (the EMA's weight
    /// table, derived from the config). Without it the first quote would index an empty
    /// table.
    pub fn rebuild_derived(&mut self) {
        self.ema.w = Ema::table(self.cfg.qimb_ema_span_seconds * 1000.0);
    }

    /// Keep a [`TradeSide`] per trade (retrieved with [`Self::take_trade_sides`]).
    pub fn set_record_trades(&mut self, on: bool) {
        self.record_trades = on;
    }

    pub fn take_trade_sides(&mut self) -> Vec<TradeSide> {
        std::mem::take(&mut self.trade_sides)
    }

    /// Run `f` on the engine; if it fails, restore the state from before the call (minutes
    /// and trade sides `f` produced are dropped, earlier ones kept). This is what lets a
    /// batch be checked row by row while it is fed, in one pass, without ever leaving the
    /// engine half-advanced by a bad row.
    pub fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<R, AtError>,
    ) -> Result<R, AtError> {
        let ready = std::mem::take(&mut self.ready);
        let sides = std::mem::take(&mut self.trade_sides);
        let snapshot = self.clone();
        let (nr, ns) = (ready.len(), sides.len());
        self.ready = ready;
        self.trade_sides = sides;
        match f(self) {
            Ok(r) => Ok(r),
            Err(e) => {
                let mut ready = std::mem::take(&mut self.ready);
                let mut sides = std::mem::take(&mut self.trade_sides);
                ready.truncate(nr);
                sides.truncate(ns);
                *self = snapshot;
                self.ready = ready;
                self.trade_sides = sides;
                Err(e)
            }
        }
    }

    /// Minutes closed so far and not yet taken.
    pub fn take_ready(&mut self) -> Vec<MinuteSummary> {
        std::mem::take(&mut self.ready)
    }

    /// Trades pushed whose timestamp group is still open: their sides are reported once a
    /// later event (or a close) completes the group.
    pub fn pending_trades(&self) -> usize {
        self.pending.len()
    }

    /// Timestamp of the latest event seen.
    pub fn last_ts(&self) -> i64 {
        self.last_ts
    }

    /// Data gaps met so far (see the module notes).
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    /// Start of the minute being built, if any.
    pub fn open_minute(&self) -> Option<i64> {
        self.cur.as_ref().map(|c| c.ts_min)
    }

    /// Hot path: an event of the open minute, in time order.
    #[inline]
    fn advance(&mut self, ts: i64, what: &str) -> Result<(), AtError> {
        if ts >= self.last_ts && ts < self.cur_end {
            if ts > self.pending_ts && !self.pending.is_empty() {
                self.flush_group();
            }
            self.last_ts = ts;
            return Ok(());
        }
        self.advance_slow(ts, what)
    }

    #[inline(never)]
    fn advance_slow(&mut self, ts: i64, what: &str) -> Result<(), AtError> {
        let m = minute_of(ts);
        if let Some(c) = self.closed_through {
            if m <= c {
                return Err(AtError::OutOfOrder {
                    location: format!("{what} ts_ms={ts}"),
                    message: format!(
                        "minute {m} was already closed (close_minute or a later event)"
                    ),
                });
            }
        }
        if ts < self.last_ts {
            return Err(AtError::OutOfOrder {
                location: format!("{what} ts_ms={ts}"),
                message: format!("time went backwards (previous event at {})", self.last_ts),
            });
        }
        if ts > self.pending_ts && !self.pending.is_empty() {
            self.flush_group();
        }
        match self.cur.as_ref().map(|c| c.ts_min) {
            Some(open) if open == m => {}
            Some(open) => {
                self.close_current();
                self.emit_empty(open + MINUTE_MS, m);
                self.open_minute_at(m);
            }
            None => {
                if let Some(c) = self.closed_through {
                    self.emit_empty(c + MINUTE_MS, m);
                }
                self.open_minute_at(m);
            }
        }
        self.last_ts = ts;
        Ok(())
    }

    /// Push one trade. Sizes must be finite and non-negative.
    pub fn push_trade(&mut self, t: Trade) -> Result<(), AtError> {
        if !(t.size.is_finite() && t.size >= 0.0) {
            return Err(bad_trade(&t));
        }
        self.advance(t.ts_ms, "trade")?;
        self.pending_ts = t.ts_ms;
        self.pending.push(t);
        Ok(())
    }

    /// Push one L1 quote.
    pub fn push_quote(&mut self, q: Quote) -> Result<(), AtError> {
        if !(q.bid_sz.is_finite() && q.bid_sz >= 0.0 && q.ask_sz.is_finite() && q.ask_sz >= 0.0) {
            return Err(bad_quote(&q));
        }
        self.advance(q.ts_ms, "quote")?;
        self.book.push(q);
        self.ema.update(q.ts_ms, qimb(&q));
        let cur = self.cur.as_mut().expect("advance opened a minute");
        cur.quote_count += 1;
        if cur.first_quote.is_none() {
            cur.first_quote = Some(q);
        }
        let x = &mut self.qx;
        x[0] = x[0].max(q.bid_ticks);
        x[1] = x[1].min(q.bid_ticks);
        x[2] = x[2].max(q.ask_ticks);
        x[3] = x[3].min(q.ask_ticks);
        Ok(())
    }

    /// Declare that no event before `ts_min + 60 000` will come: closes every minute up to
    /// and including `ts_min` (empty ones too, once the engine has started) and returns all
    /// minutes closed since the last call, oldest first.
    pub fn close_minute(&mut self, ts_min: i64) -> Result<Vec<MinuteSummary>, AtError> {
        if ts_min != minute_of(ts_min) {
            return Err(AtError::InvalidInput {
                location: "close_minute".into(),
                message: format!("{ts_min} is not a minute boundary"),
            });
        }
        let end = ts_min + MINUTE_MS;
        if self.last_ts >= end {
            // already past that minute: nothing new to close
            return Ok(self.take_ready());
        }
        if !self.pending.is_empty() {
            self.flush_group();
        }
        match (self.cur.as_ref().map(|c| c.ts_min), self.closed_through) {
            (Some(open), _) => {
                self.close_current();
                self.emit_empty(open + MINUTE_MS, end);
            }
            (None, Some(c)) => self.emit_empty(c + MINUTE_MS, end),
            (None, None) => {}
        }
        if self.closed_through.is_some() || !self.ready.is_empty() {
            self.closed_through = Some(ts_min);
        }
        self.last_ts = self.last_ts.max(end - 1);
        Ok(self.take_ready())
    }

    /// Close the open minute (end of a batch); returns every minute not yet taken.
    pub fn finish(&mut self) -> Vec<MinuteSummary> {
        if let Some(open) = self.cur.as_ref().map(|c| c.ts_min) {
            // cannot fail: `open` is a boundary and no event is at or after its end
            if let Ok(v) = self.close_minute(open) {
                return v;
            }
        }
        self.take_ready()
    }

    fn open_minute_at(&mut self, m: i64) {
        self.cur = Some(MinuteSummary::new(m));
        self.cur_end = m + MINUTE_MS;
        self.last_event_min = m;
    }

    /// Emit the eventless minutes `from..to_excl`, at most up to `max_gap_minutes` after
    /// the last event; if the range goes beyond, the data has stopped: the rest is not
    /// emitted and the state that describes the market before the gap is dropped.
    fn emit_empty(&mut self, from: i64, to_excl: i64) {
        let limit = self
            .last_event_min
            .saturating_add(self.cfg.max_gap_minutes * MINUTE_MS);
        let mut m = from;
        while m < to_excl && m <= limit {
            let mut s = MinuteSummary::new(m);
            self.fill_close(&mut s);
            self.ready.push(s);
            self.closed_through = Some(m);
            m += MINUTE_MS;
        }
        if m < to_excl {
            self.closed_through = Some(to_excl - MINUTE_MS);
            self.start_gap();
        }
    }

    /// The data stopped: forget the quote in force, the tick rule's last price and the
    /// qimb EMA (they describe a market that is no longer observed). Idempotent while the
    /// gap lasts (a clock closing further empty minutes).
    fn start_gap(&mut self) {
        if self.last_event_min == i64::MIN {
            return;
        }
        self.book = QuoteBook::new();
        self.tick = TickRule::new();
        self.ema = Ema::new_shared(&self.ema);
        self.last_event_min = i64::MIN;
        self.gaps += 1;
    }

    fn fill_close(&mut self, s: &mut MinuteSummary) {
        s.l1_close = self.book.last();
        s.qimb_close = s.l1_close.as_ref().and_then(qimb).unwrap_or(f64::NAN);
        s.qimb_ema = self.ema.close(s.ts_min + MINUTE_MS);
    }

    fn close_current(&mut self) {
        self.cur_end = i64::MIN;
        if let Some(mut s) = self.cur.take() {
            self.fill_close(&mut s);
            if s.quote_count > 0 {
                let x = self.qx;
                (s.bid_hi, s.bid_lo, s.ask_hi, s.ask_lo) =
                    (Some(x[0]), Some(x[1]), Some(x[2]), Some(x[3]));
            }
            self.qx = QX_EMPTY;
            self.acc.drain_into(&mut s.hist);
            self.closed_through = Some(s.ts_min);
            self.ready.push(s);
        }
    }

    fn flush_group(&mut self) {
        let ts = self.pending_ts;
        let matched = self.book.match_trade(ts, self.cfg.quote_match);
        let base = self.cfg.base_bin_ticks;
        let max_stale = self.cfg.max_quote_staleness_ms;
        let use_tick = self.cfg.use_tick_rule_fallback;
        let exchange = self.cfg.side_source == SideSource::Exchange;
        let cur = self
            .cur
            .as_mut()
            .expect("pending trades belong to the open minute");
        let mut net = 0.0;
        let mut last_price = 0;
        for t in self.pending.iter() {
            let p = t.price_ticks;
            let qs = match matched {
                Some(m) => quote_sign(p, m.quote.bid_ticks, m.quote.ask_ticks),
                None => 0,
            };
            let inferred = if qs != 0 {
                qs
            } else if use_tick {
                self.tick.sign(p)
            } else {
                0
            };
            let ex = t.exchange_side.signum();
            let (sign, ambiguous) = if exchange {
                if ex != 0 {
                    (ex, false)
                } else {
                    (inferred, true)
                }
            } else {
                (inferred, qs == 0)
            };
            // bar
            if cur.open.is_none() {
                cur.open = Some(p);
                cur.high = Some(p);
                cur.low = Some(p);
                cur.first_trade_ts = Some(ts);
                cur.low_ts = Some(ts);
                cur.high_ts = Some(ts);
            } else {
                if p > cur.high.unwrap_or(p) {
                    cur.high = Some(p);
                    cur.high_ts = Some(ts);
                }
                if p < cur.low.unwrap_or(p) {
                    cur.low = Some(p);
                    cur.low_ts = Some(ts);
                }
            }
            cur.close = Some(p);
            cur.volume += t.size;
            cur.pv_ticks += p as f64 * t.size;
            cur.trade_count += 1;
            self.acc
                .add(p.div_euclid(base) * base, size_to_units(t.size));
            // order flow
            let signed = sign as f64 * t.size;
            cur.of += signed;
            if sign > 0 {
                cur.buy_volume += t.size;
            } else if sign < 0 {
                cur.sell_volume += t.size;
            }
            if ambiguous {
                cur.ambiguous_volume += t.size;
            }
            match matched {
                Some(m) if m.staleness_ms > max_stale => cur.stale_trades += 1,
                Some(_) => {}
                None => cur.unmatched_trades += 1,
            }
            if ex != 0 {
                if qs != 0 {
                    cur.side_cmp_quote += 1;
                    cur.side_agree_quote += u32::from(qs == ex);
                }
                if inferred != 0 {
                    cur.side_cmp_final += 1;
                    cur.side_agree_final += u32::from(inferred == ex);
                }
            }
            net += inferred as f64 * t.size;
            last_price = p;
            if self.record_trades {
                self.trade_sides.push(TradeSide {
                    sign,
                    quote_sign: qs,
                    bid_ticks: matched.map(|m| m.quote.bid_ticks),
                    ask_ticks: matched.map(|m| m.quote.ask_ticks),
                    staleness_ms: matched.map(|m| m.staleness_ms),
                });
            }
        }
        cur.group_count += 1;
        cur.last_trade_ts = Some(ts);
        self.tick.end_group(last_price, net);
        self.pending.clear();
    }
}
