//! The event loop and the bid/ask fill model (SPEC §12).
//!
//! Per minute row `m`, in time order:
//! 1. funding at every 00:00 / 08:00 / 16:00 UTC instant up to `ts_min[m]` on the position
//!    opened before it (fixed rate, marked at the last mid; SPEC §12.3), or at the instants
//!    and rates of `MinuteTable::funding` when a history is given;
//! 2. orders decided at the close of row `j < m` fill against row `j`'s fill reference, the
//!    first quote strictly after that close: market buy at `ask + slippage`, sell at
//!    `bid - slippage`, taker fee (SPEC §12.2). Exits before entries (a flip is two trades).
//!    An order fills in the row whose minute holds its reference quote: until then it is
//!    pending (after a quiet minute without quote updates, or a gap, a price from a later
//!    minute never reaches cash, marks, the kill switch or the cooldown at earlier closes).
//!    A limit entry is live from that quote (its arrival); if marketable there it takes the
//!    quote (taker, never beyond the limit); otherwise it rests and fills at the limit
//!    price, maker fee, in the first minute whose trades go *through* it after its arrival
//!    (a touch is not enough: queue position is unknown), within
//!    `limit_order_timeout_minutes` (counted in minutes from the decision, not in rows); if
//!    not, it turns into a market order at the first quote after the close of the last
//!    minute of the window;
//! 3. stops and targets of the open position from the minute's trade extremes. A level
//!    that the minute opens beyond (a gap) fills at the worse of the level and the open;
//!    stop before targets when both are in range (SPEC §10.5, `WorstCase`), or in tick
//!    order (`TickPath`). Exit orders are market orders (slippage, taker) unless
//!    `use_market_for_exit` is off, in which case targets fill as maker limits at the level;
//! 4. the kernel decides at the close of row `m` with row `m` only (no look-ahead).
//!
//! Fill times (documented bounds): a resting limit / stop / target fills at the time of the
//! minute's first print at its low or high (an upper bound for when the level first
//! traded). In the minute an entry fills, only prints after the fill belong to the
//! position: an extreme whose first print is before the fill is not used on that side in
//! that minute (a target is not credited, a stop is not taken; the next minute checks the
//! whole minute, and its open prices a stop crossed meanwhile). A print in the fill's own
//! millisecond counts against the position (stop) but never for it (target). The tick
//! path applies the same rules tick by tick, exactly.
//!
//! Speed (none of it changes a result; tests compare every path bit for bit with
//! `run_reference`, which steps every row): the kernel reads each row in place through
//! `at_strategy::Bar` (only the columns its checks reach; gathering all 18 columns of a
//! row costs more than deciding it, the columns being far apart in memory). While nothing
//! is open, working or pending and the kernel is idle, rows where no setup fires change
//! nothing but clocks, marks and the acceptance sequences: `run` scans them lazily
//! (`Kernel::idle_scan`), `run_batch` jumps over them with a per-table plan (`Prepared`).

use at_strategy::{
    Action, Bar, Decision, EntryOrder, ExitKind, IdleCols, Kernel, MinuteInput, Params, PreMinute,
    Reason, Setup, StopFillMode,
};
use at_types::AtError;

use crate::metrics::{Metrics, MetricsAcc};
use crate::prepared::{engine_mark, kernel_mark, last_mark, AmbiguityStats, IdlePlan, Prepared};
use crate::table::{HotRow, MinuteTable, Row};

const MINUTE: i64 = 60_000;
const FUNDING_PERIOD: i64 = 8 * 3_600_000;
const DAY: i64 = 86_400_000;

/// One closed position (a flip yields two).
#[derive(Debug, Clone, PartialEq)]
pub struct TradeRecord {
    pub side: i8,
    pub setup: Setup,
    pub entry_reason: Reason,
    /// Close of the minute whose decision opened the trade (`ts_min + 59_999`).
    pub decision_ts_ms: i64,
    pub fill_ts_ms: i64,
    pub entry_price: f64,
    /// Entry filled as a resting limit (maker) rather than at the quote (taker).
    pub entry_maker: bool,
    pub qty: f64,
    pub stop_initial: f64,
    pub tp1: f64,
    pub tp2: f64,
    pub tp1_ts_ms: i64,
    pub tp1_price: f64,
    pub tp1_qty: f64,
    /// Decision time of a market exit (minute close), or the trigger time of a stop/target.
    pub exit_decision_ts_ms: i64,
    pub exit_ts_ms: i64,
    pub exit_price: f64,
    pub exit_reason: Reason,
    pub gross_pnl: f64,
    pub fees: f64,
    pub funding: f64,
    /// Cost of the slippage ticks of every market fill of the trade.
    pub slippage_cost: f64,
    pub net_pnl: f64,
    /// Quoted spread at the entry fill quote (NaN for resting-limit fills).
    pub entry_spread: f64,
    pub ambiguous_frac_at_entry: f64,
    pub leverage_cap_hit: bool,
}

/// The compact per-minute record of a decision kept by a full backtest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionRow {
    pub ts_min: i64,
    pub action: Action,
    pub reason: Reason,
    pub signals: u8,
    pub events: u16,
    pub heat: f64,
}

/// The per-minute decisions of a full backtest as columns (what the bindings hand to
/// NumPy as they are): `action` holds `Action as u8`, `reason` holds `Reason::code()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decisions {
    pub ts_min: Vec<i64>,
    pub action: Vec<u8>,
    pub reason: Vec<u8>,
    pub signals: Vec<u8>,
    pub events: Vec<u16>,
    pub heat: Vec<f64>,
}

fn action_of(code: u8) -> Action {
    [
        Action::Hold,
        Action::EnterLong,
        Action::EnterShort,
        Action::Exit,
    ][code as usize]
}

impl Decisions {
    fn with_capacity(n: usize) -> Self {
        Self {
            ts_min: Vec::with_capacity(n),
            action: Vec::with_capacity(n),
            reason: Vec::with_capacity(n),
            signals: Vec::with_capacity(n),
            events: Vec::with_capacity(n),
            heat: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.ts_min.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts_min.is_empty()
    }

    /// Row `i` as a record.
    pub fn row(&self, i: usize) -> DecisionRow {
        DecisionRow {
            ts_min: self.ts_min[i],
            action: action_of(self.action[i]),
            reason: Reason::from_code(self.reason[i]).expect("stored reason code"),
            signals: self.signals[i],
            events: self.events[i],
            heat: self.heat[i],
        }
    }

    #[inline]
    fn push(&mut self, d: &Decision) {
        self.ts_min.push(d.ts_min);
        self.action.push(d.action as u8);
        self.reason.push(d.reason.code());
        self.signals.push(d.signals);
        self.events.push(d.events);
        self.heat.push(d.heat);
    }

    /// Idle rows `ts` (HOLD, no signal or event, heat 0) whose reasons are already there.
    fn extend_idle(&mut self, ts: &[i64]) {
        let n = self.ts_min.len() + ts.len();
        self.ts_min.extend_from_slice(ts);
        self.action.resize(n, Action::Hold as u8);
        self.signals.resize(n, 0);
        self.events.resize(n, 0);
        self.heat.resize(n, 0.0);
        debug_assert_eq!(self.reason.len(), n);
    }
}

/// Full output of one backtest.
#[derive(Debug, Clone)]
pub struct BacktestResult {
    pub metrics: Metrics,
    pub trades: Vec<TradeRecord>,
    /// Mark-to-market equity at every minute close.
    pub equity: Vec<f64>,
    /// Per-minute decisions (action, reason, signals) for reports and `signals_1m`-like output.
    pub decisions: Decisions,
}

#[derive(Clone, Copy)]
struct PendingEntry {
    order: EntryOrder,
    /// Row whose close decided it.
    decided: usize,
    /// Row whose fill reference a market fill uses (the decision row, or the last row of
    /// the limit window after a timeout).
    market_row: usize,
    /// Resting as a limit (false once converted to market).
    resting: bool,
    checked_quote: bool,
    cap_hit: bool,
    ambiguous: f64,
}

#[derive(Clone, Copy)]
struct PendingExit {
    decided: usize,
}

/// The levels of the open position the intrabar step reads (no whole-struct copy).
#[derive(Clone, Copy)]
struct Lv {
    exit_pending: Option<Reason>,
    open_ts_ms: i64,
    side: i8,
    stop: f64,
    tp1: Option<f64>,
    tp2: Option<f64>,
    tp1_done: bool,
    tp1_steps: i64,
    qty_steps: i64,
}

impl Lv {
    #[inline]
    fn of(p: &at_strategy::Position) -> Self {
        Self {
            exit_pending: p.exit_pending,
            open_ts_ms: p.open_ts_ms,
            side: p.side,
            stop: p.stop,
            tp1: p.tp1,
            tp2: p.tp2,
            tp1_done: p.tp1_done,
            tp1_steps: p.tp1_steps,
            qty_steps: p.qty_steps,
        }
    }
}

struct OpenTrade {
    rec: TradeRecord,
}

/// Runs one parameter set over one table.
pub struct Engine<'t, 'a> {
    t: &'t MinuteTable<'a>,
    /// The kernel inputs as rows, built once per table and shared by every run.
    rows: &'t [MinuteInput],
    /// Precomputed minutes (`Prepared`) or empty for the straightforward path.
    pre: &'t [PreMinute],
    /// Table-level ambiguity statistics and the high-ambiguity count for this set
    /// (prepared and scan paths), added once at the end.
    amb: Option<(AmbiguityStats, f64)>,
    /// The prepared table and this set's idle plan (prepared path only).
    prep: Option<(&'t Prepared, &'t IdlePlan)>,
    /// Skip idle stretches by scanning them lazily (`scan_idle`; single runs).
    scan: bool,
    /// `scan_idle`'s rows with setups reported under the kill switch (reused buffer).
    fired: Vec<(usize, u8)>,
    p: Params,
    k: Kernel,
    keep: bool,
    entry: Option<PendingEntry>,
    exit: Option<PendingExit>,
    open: Option<OpenTrade>,
    pub trades: Vec<TradeRecord>,
    pub equity: Vec<f64>,
    pub decisions: Decisions,
    acc: MetricsAcc,
    d: Decision,
    next_funding: i64,
    last_mark: f64,
    slip_entry: f64,
    slip_exit: f64,
}

/// The first row after `m` at or after `day_end` (the next UTC day), or `ts.len()`.
/// Rows strictly increase on minute boundaries, so the day holds at most
/// `(day_end - ts[m]) / MINUTE` rows from `m` on: with no gap, that row is the answer.
#[inline]
fn day_end_row(ts: &[i64], m: usize, day_end: i64) -> usize {
    let k = ((day_end - ts[m]) / MINUTE) as usize;
    match ts.get(m + k) {
        Some(&x) if x == day_end => m + k,
        _ => {
            let hi = ts.len().min(m + k + 1);
            m + 1 + ts[m + 1..hi].partition_point(|&x| x < day_end)
        }
    }
}

#[inline]
fn decision_ts(ts_min: i64) -> i64 {
    ts_min + MINUTE - 1
}

impl<'t, 'a> Engine<'t, 'a> {
    /// `keep`: record trades, equity and decisions (full mode); off in the batch runner.
    /// `rows`: `t.rows()` (kernel inputs as rows, shared across runs) or empty to read the
    /// columns directly (measured equally fast; no conversion).
    pub fn new(
        t: &'t MinuteTable<'a>,
        rows: &'t [MinuteInput],
        p: Params,
        keep: bool,
    ) -> Result<Self, AtError> {
        assert!(
            rows.is_empty() || rows.len() == t.len(),
            "rows must come from this table"
        );
        let k = Kernel::new(p)?;
        let first = t.ts_min.first().copied().unwrap_or(0);
        Ok(Self {
            t,
            rows,
            pre: &[],
            amb: None,
            prep: None,
            scan: false,
            fired: Vec::new(),
            k,
            keep,
            entry: None,
            exit: None,
            open: None,
            trades: Vec::new(),
            equity: if keep {
                Vec::with_capacity(t.len())
            } else {
                Vec::new()
            },
            decisions: if keep {
                Decisions::with_capacity(t.len())
            } else {
                Decisions::default()
            },
            acc: {
                let mut a = MetricsAcc::new(p.initial_equity);
                a.set_ambiguous_threshold(p.ambiguous_trade_frac_max);
                a
            },
            d: Decision::hold(first),
            next_funding: match &t.funding {
                Some(h) => h.next_after(first),
                None => (first.div_euclid(FUNDING_PERIOD) + 1) * FUNDING_PERIOD,
            },
            last_mark: f64::NAN,
            slip_entry: p.slippage_ticks_entry * p.tick_size,
            slip_exit: p.slippage_ticks_exit * p.tick_size,
            p,
        })
    }

    /// The fast path: rows, precomputed minutes and ambiguity statistics from `prep`
    /// (which must hold `p`'s signal key, see `Prepared::add`). Same results as `new`.
    pub fn with_prepared(
        t: &'t MinuteTable<'a>,
        prep: &'t Prepared,
        p: Params,
        keep: bool,
    ) -> Result<Self, AtError> {
        let (pre, amb_high) = prep.minutes(&p).ok_or_else(|| AtError::InvalidInput {
            location: "prepared table".into(),
            message: "no precomputed minutes for this parameter set's signal key".into(),
        })?;
        assert!(
            pre.len() == t.len(),
            "prepared data must come from this table"
        );
        let plan = prep.plan(&p).ok_or_else(|| AtError::InvalidInput {
            location: "prepared table".into(),
            message: "no idle plan for this parameter set".into(),
        })?;
        let mut e = Self::new(t, &prep.rows, p, keep)?;
        e.pre = pre;
        e.amb = Some((prep.ambiguity.clone(), amb_high));
        e.prep = Some((prep, plan));
        Ok(e)
    }

    /// The single-run fast path: the straightforward `new` with idle stretches skipped
    /// by a lazy scan (`advance`, `scan_idle`), and the ambiguity statistics from the
    /// validation pass over the table (not in the scan: every column the scan loop reads
    /// at once costs). Validates `t`. Same results as `new`; nothing per table is kept.
    pub fn with_scan(t: &'t MinuteTable<'a>, p: Params, keep: bool) -> Result<Self, AtError> {
        let amb = AmbiguityStats::validate_with_high(t, p.ambiguous_trade_frac_max)?;
        let mut e = Self::new(t, &[], p, keep)?;
        e.amb = Some(amb);
        e.scan = true;
        Ok(e)
    }

    pub fn kernel(&self) -> &Kernel {
        &self.k
    }

    /// Market fill reference after the close of row `j`: (ts, bid, ask).
    #[inline]
    fn quote_after(&self, j: usize) -> (i64, f64, f64) {
        let t = self.t;
        let (b, a) = (t.next_bid[j], t.next_ask[j]);
        if b.is_finite() && a.is_finite() {
            (t.next_quote_ts[j], b, a)
        } else {
            // No quote after this close in the data: the next minute's first trade, or the
            // last mid. Still strictly after the decision.
            let px = if j + 1 < t.len() && t.open[j + 1].is_finite() {
                t.open[j + 1]
            } else {
                self.last_mark
            };
            (t.ts_min[j] + MINUTE, px, px)
        }
    }

    fn fee(&self, notional: f64, maker: bool) -> f64 {
        notional
            * if maker {
                self.p.maker_fee_bps
            } else {
                self.p.taker_fee_bps
            }
            / 1e4
    }

    #[allow(clippy::too_many_arguments)]
    fn exit_fill(
        &mut self,
        kind: ExitKind,
        ts: i64,
        price: f64,
        steps: i64,
        maker: bool,
        slip: f64,
        reason: Reason,
        dec_ts: i64,
    ) {
        let qty = steps as f64 * self.p.qty_step;
        let fee = self.fee(price * qty, maker);
        let pos = *self.k.position().expect("exit with a position");
        let side = pos.side as f64;
        let flat = self
            .k
            .on_exit_fill(kind, ts, price, steps, fee)
            .expect("consistent exit");
        if let Some(o) = self.open.as_ref() {
            // Market exits fill after their decision; stops/targets after the entry decision.
            self.acc.fill(
                ts,
                if kind == ExitKind::Market {
                    dec_ts
                } else {
                    o.rec.decision_ts_ms
                },
            );
        }
        if let Some(o) = self.open.as_mut() {
            let r = &mut o.rec;
            r.gross_pnl += side * (price - pos.entry_price) * qty;
            r.fees += fee;
            r.slippage_cost += slip * qty;
            if kind == ExitKind::Tp1 {
                r.tp1_ts_ms = ts;
                r.tp1_price = price;
                r.tp1_qty = qty;
            }
            if flat {
                r.exit_ts_ms = ts;
                r.exit_decision_ts_ms = dec_ts;
                r.exit_price = price;
                r.exit_reason = reason;
            }
        }
        if flat {
            let mut o = self.open.take().expect("open trade");
            o.rec.funding = pos.funding;
            o.rec.net_pnl = o.rec.gross_pnl - o.rec.fees + o.rec.funding;
            self.acc.trade(&o.rec);
            if self.keep {
                self.trades.push(o.rec);
            }
        }
    }

    fn entry_fill(
        &mut self,
        pe: &PendingEntry,
        ts: i64,
        price: f64,
        maker: bool,
        slip: f64,
        spread: f64,
    ) {
        let o = pe.order;
        let qty = o.qty_steps as f64 * self.p.qty_step;
        let fee = self.fee(price * qty, maker);
        self.k
            .on_entry_fill(ts, price, fee)
            .expect("consistent entry");
        let dts = decision_ts(self.t.ts_min[pe.decided]);
        self.acc.fill(ts, dts);
        self.acc.entry(maker, spread, pe.ambiguous);
        self.open = Some(OpenTrade {
            rec: TradeRecord {
                side: o.side,
                setup: o.setup,
                entry_reason: o.reason,
                decision_ts_ms: dts,
                fill_ts_ms: ts,
                entry_price: price,
                entry_maker: maker,
                qty,
                stop_initial: o.stop,
                tp1: o.tp1.unwrap_or(f64::NAN),
                tp2: o.tp2.unwrap_or(f64::NAN),
                tp1_ts_ms: 0,
                tp1_price: f64::NAN,
                tp1_qty: 0.0,
                exit_decision_ts_ms: 0,
                exit_ts_ms: 0,
                exit_price: f64::NAN,
                exit_reason: Reason::EndOfData,
                gross_pnl: 0.0,
                fees: fee,
                funding: 0.0,
                slippage_cost: slip * qty,
                net_pnl: 0.0,
                entry_spread: spread,
                ambiguous_frac_at_entry: pe.ambiguous,
                leverage_cap_hit: pe.cap_hit,
            },
        });
    }

    /// Step 2: fill the exit and entry orders whose fill time falls at or before the close
    /// of row `m`. An order whose reference quote comes later (a quiet minute without
    /// quote updates, a gap) stays pending: its price must not reach cash, marks, the kill
    /// switch or the cooldown at earlier closes.
    fn fill_orders(&mut self, m: usize) {
        let close_m = decision_ts(self.t.ts_min[m]);
        if let Some(px) = self.exit {
            // Market exit at the first quote after the decision close.
            let j = px.decided;
            let (ts, bid, ask) = self.quote_after(j);
            if ts > close_m {
                // Not yet: a flip's entry shares this quote and waits with it.
                return;
            }
            let pos = *self.k.position().expect("pending exit has a position");
            let (price, slip) = if pos.side > 0 {
                (bid - self.slip_exit, self.slip_exit)
            } else {
                (ask + self.slip_exit, self.slip_exit)
            };
            self.acc.taker_spread(ask - bid);
            let reason = pos.exit_pending.unwrap_or(Reason::EndOfData);
            self.exit_fill(
                ExitKind::Market,
                ts,
                price,
                pos.qty_steps,
                false,
                slip,
                reason,
                decision_ts(self.t.ts_min[j]),
            );
            self.exit = None;
        }
        let Some(mut pe) = self.entry else { return };
        let o = pe.order;
        let side = o.side as f64;
        if !pe.resting {
            let (ts, bid, ask) = self.quote_after(pe.market_row);
            if ts > close_m {
                return;
            }
            let price = if o.side > 0 {
                ask + self.slip_entry
            } else {
                bid - self.slip_entry
            };
            self.entry = None;
            self.acc.taker_spread(ask - bid);
            self.entry_fill(&pe, ts, price, false, self.slip_entry, ask - bid);
            return;
        }
        let limit = o.limit_price.expect("resting order has a limit");
        // The order is live from its arrival quote (the first after the decision close).
        let arrival = self.quote_after(pe.decided).0;
        if arrival > close_m {
            return;
        }
        if !pe.checked_quote {
            pe.checked_quote = true;
            let (ts, bid, ask) = self.quote_after(pe.decided);
            let touch = if o.side > 0 { ask } else { bid };
            if side * (limit - touch) >= 0.0 {
                // Marketable on arrival: takes the quote, never beyond the limit.
                let px = if o.side > 0 {
                    (ask + self.slip_entry).min(limit)
                } else {
                    (bid - self.slip_entry).max(limit)
                };
                self.entry = None;
                self.acc.taker_spread(ask - bid);
                self.entry_fill(&pe, ts, px, false, side * (px - touch), ask - bid);
                return;
            }
        }
        self.entry = Some(pe);
        // Resting: does minute m trade through the limit after the order arrived? The
        // first print at the minute's extreme bounds when that happened; an extreme first
        // printed before the arrival says nothing about the trades after it.
        let t = self.t;
        let (through, at) = if o.side > 0 {
            (t.low[m] < limit, t.low_ts[m])
        } else {
            (t.high[m] > limit, t.high_ts[m])
        };
        if through && at >= arrival {
            self.entry = None;
            self.entry_fill(&pe, at, limit, true, 0.0, f64::NAN);
        }
    }

    /// After row `m`'s intrabar step: a resting limit whose window ends with this minute
    /// becomes a market order at the first quote after this close.
    fn expire_limit(&mut self, m: usize) {
        if let Some(pe) = self.entry.as_mut() {
            let window_end =
                self.t.ts_min[pe.decided] + self.p.limit_order_timeout_minutes as i64 * MINUTE;
            if pe.resting && self.t.ts_min[m] >= window_end {
                pe.resting = false;
                pe.market_row = m;
            }
        }
    }

    /// Step 3: stops and targets from minute `m`'s trades.
    fn intrabar(&mut self, m: usize) {
        let t = self.t;
        let Some(pos) = self.k.position().map(Lv::of) else {
            return;
        };
        if pos.exit_pending.is_some() || !(t.high[m].is_finite() && t.low[m].is_finite()) {
            return;
        }
        let entry_ts = pos.open_ts_ms;
        if self.p.stop_fill_mode == StopFillMode::TickPath {
            if let Some(tp) = t.ticks {
                let (a, b) = (tp.start[m] as usize, tp.start[m + 1] as usize);
                if b > a {
                    self.tick_path(m, &tp.ts[a..b], &tp.price[a..b], entry_ts);
                    return;
                }
            }
        }
        let side = pos.side as f64;
        let (adverse, favour, adv_ts, fav_ts) = if pos.side > 0 {
            (t.low[m], t.high[m], t.low_ts[m], t.high_ts[m])
        } else {
            (t.high[m], t.low[m], t.high_ts[m], t.low_ts[m])
        };
        // In the minute the entry filled, only prints after the fill are the position's.
        // The first print at an extreme bounds when it traded: at or after the fill, the
        // extreme is the position's (a print in the fill's own millisecond counts against
        // it, never for it: the worst case); before the fill, the minute's later path is
        // unknown and that side is not checked in this minute (a stop level crossed
        // meanwhile is caught by the next minute's open, at the worse of the two).
        let (adverse_seen, favour_seen) = if entry_ts < t.ts_min[m] {
            (true, true)
        } else {
            (adv_ts >= entry_ts, fav_ts > entry_ts)
        };
        let open = t.open[m];
        let taker = self.p.use_market_for_exit;
        if adverse_seen && side * (adverse - pos.stop) <= 0.0 {
            // Gap through the stop: the worse of the level and the open (an open printed
            // before the fill is not the position's price).
            let lvl = if entry_ts < t.ts_min[m] && side * (open - pos.stop) < 0.0 {
                open
            } else {
                pos.stop
            };
            let px = lvl - side * self.slip_exit;
            let reason = if pos.tp1_done {
                Reason::BreakevenStop
            } else {
                Reason::Stop
            };
            let ts = adv_ts;
            self.exit_fill(
                ExitKind::Stop,
                ts,
                px,
                pos.qty_steps,
                false,
                self.slip_exit,
                reason,
                ts,
            );
            return;
        }
        if !favour_seen {
            return;
        }
        let ts = fav_ts;
        let (tslip, tpx) = if taker {
            (self.slip_exit, -side * self.slip_exit)
        } else {
            (0.0, 0.0)
        };
        let mut remaining = pos.qty_steps;
        if let (Some(t1), false, true) = (pos.tp1, pos.tp1_done, pos.tp1_steps > 0) {
            if side * (favour - t1) >= 0.0 {
                self.exit_fill(
                    ExitKind::Tp1,
                    ts,
                    t1 + tpx,
                    pos.tp1_steps,
                    !taker,
                    tslip,
                    Reason::Tp1,
                    ts,
                );
                remaining -= pos.tp1_steps;
            } else {
                return;
            }
        }
        if let Some(t2) = pos.tp2 {
            if side * (favour - t2) >= 0.0 && remaining > 0 {
                self.exit_fill(
                    ExitKind::Tp2,
                    ts,
                    t2 + tpx,
                    remaining,
                    !taker,
                    tslip,
                    Reason::Tp2,
                    ts,
                );
            }
        }
    }

    /// Tick-path resolution: walk the minute's trades after the entry fill in time order.
    fn tick_path(&mut self, _m: usize, ts: &[i64], px: &[f64], entry_ts: i64) {
        let taker = self.p.use_market_for_exit;
        for (i, &p) in px.iter().enumerate() {
            // Ticks before the fill are not the position's; one in the fill's millisecond
            // counts against it (stop) but not for it (targets), as in `intrabar`.
            if ts[i] < entry_ts {
                continue;
            }
            let Some(pos) = self.k.position().map(Lv::of) else {
                return;
            };
            let side = pos.side as f64;
            if side * (p - pos.stop) <= 0.0 {
                // The first trade at or beyond the stop: the worse of it and the level.
                let lvl = if side * (p - pos.stop) < 0.0 {
                    p
                } else {
                    pos.stop
                };
                let reason = if pos.tp1_done {
                    Reason::BreakevenStop
                } else {
                    Reason::Stop
                };
                self.exit_fill(
                    ExitKind::Stop,
                    ts[i],
                    lvl - side * self.slip_exit,
                    pos.qty_steps,
                    false,
                    self.slip_exit,
                    reason,
                    ts[i],
                );
                return;
            }
            if ts[i] == entry_ts {
                continue;
            }
            let (tslip, tpx) = if taker {
                (self.slip_exit, -side * self.slip_exit)
            } else {
                (0.0, 0.0)
            };
            if let (Some(t1), false, true) = (pos.tp1, pos.tp1_done, pos.tp1_steps > 0) {
                if side * (p - t1) >= 0.0 {
                    self.exit_fill(
                        ExitKind::Tp1,
                        ts[i],
                        t1 + tpx,
                        pos.tp1_steps,
                        !taker,
                        tslip,
                        Reason::Tp1,
                        ts[i],
                    );
                    continue;
                }
            } else if let Some(t2) = pos.tp2 {
                if side * (p - t2) >= 0.0 {
                    self.exit_fill(
                        ExitKind::Tp2,
                        ts[i],
                        t2 + tpx,
                        pos.qty_steps,
                        !taker,
                        tslip,
                        Reason::Tp2,
                        ts[i],
                    );
                    return;
                }
            }
        }
    }

    fn funding(&mut self, upto: i64) {
        while self.next_funding <= upto {
            let f = self.next_funding;
            // fraction of notional at this instant: the history's, or the fixed 8h rate
            // (rate, divisor): the fixed rate keeps its exact `* bps / 1e4` arithmetic
            let (rate, div) = match &self.t.funding {
                Some(h) => {
                    let (r, next) = h.at(f);
                    self.next_funding = next;
                    (r, 1.0)
                }
                None => {
                    self.next_funding += FUNDING_PERIOD;
                    (self.p.funding_rate_8h_bps, 1e4)
                }
            };
            if let Some(pos) = self.k.position().copied() {
                if pos.open_ts_ms < f && self.last_mark.is_finite() {
                    let notional = pos.qty_steps as f64 * self.p.qty_step * self.last_mark;
                    // Longs pay a positive rate, shorts receive it.
                    let amount = -(pos.side as f64) * notional * rate / div;
                    self.k.on_funding(amount);
                    self.acc.funding(amount);
                }
            }
        }
    }

    /// Process row `m` and possibly more; returns the next row to process. On the prepared
    /// path, when nothing is open, working or pending and the kernel is idle, the rows up
    /// to the next one where a setup fires (`IdlePlan::next_event`) cannot change anything
    /// but clocks, marks and the minute count: they are skipped in bulk (`skip_idle`). On
    /// the scan path (`with_scan`) the same rows are found by scanning ahead
    /// (`scan_idle`). Otherwise (and always on the straightforward path) this is `step(m)`.
    #[inline]
    pub fn advance(&mut self, m: usize) -> usize {
        if self.idle() {
            if let Some((_, plan)) = self.prep {
                let e = plan.next_event[m] as usize;
                if e > m {
                    self.skip_idle(m, e);
                    return e;
                }
            } else if self.scan {
                return self.scan_idle(m);
            }
        }
        self.step(m);
        m + 1
    }

    /// Nothing open, working or pending, and the kernel idle.
    #[inline]
    fn idle(&self) -> bool {
        self.exit.is_none() && self.entry.is_none() && self.k.is_idle()
    }

    /// The scan path's idle skip: row `m` runs through `step`; if everything is still idle
    /// after it, the following rows of the same UTC day are scanned with
    /// `Kernel::idle_scan` (acceptance sequences only, most minutes reading a handful of
    /// columns) up to the first where a setup fires that the kernel could act on, and the
    /// rows before it are applied at once as in `skip_idle`. Returns the next row to
    /// process.
    fn scan_idle(&mut self, m: usize) -> usize {
        self.step(m);
        if !self.idle() {
            return m + 1;
        }
        let t = self.t;
        let ts = t.ts_min;
        let day_end = (ts[m].div_euclid(DAY) + 1) * DAY;
        let end = day_end_row(ts, m, day_end);
        let a = m + 1;
        let keep = self.keep;
        let base = self.decisions.reason.len();
        let reasons = &mut self.decisions.reason;
        // The hold reason `Kernel::decide` gives an idle minute without a setup to act
        // on, indexed by has trades + (has trades and a usable VA).
        let codes = if self.k.state().kill {
            [Reason::KillSwitchActive.code(); 3]
        } else {
            [
                Reason::NoTrades.code(),
                Reason::VaInvalid.code(),
                Reason::NoSignal.code(),
            ]
        };
        // Setups reported while the kill switch is on (see `Kernel::idle_scan`).
        let mut fired = std::mem::take(&mut self.fired);
        fired.clear();
        let cols = IdleCols {
            close: t.close,
            high: t.high,
            low: t.low,
            vah: t.vah,
            val: t.val,
            poc: t.poc,
            va_valid: t.va_valid,
        };
        let j = self.k.idle_scan(
            cols,
            a,
            end,
            |j| HotRow::new(t, j),
            |j, has, va, sig| {
                if keep {
                    reasons.push(codes[usize::from(has) + usize::from(has && va)]);
                    if sig != 0 {
                        fired.push((j, sig));
                    }
                }
            },
        );
        debug_assert!(!keep || self.decisions.reason.len() == base + (j - a));
        if j > a {
            let last = j - 1;
            let s = self.k.state();
            let (above, below) = (s.above, s.below);
            let kpx = last_mark(t, a, last, kernel_mark);
            self.k
                .skip_idle_minutes((j - a) as u64, ts[last], kpx, above, below);
            if let Some(px) = last_mark(t, a, last, engine_mark) {
                self.last_mark = px;
            }
            if ts[last] >= self.next_funding {
                self.funding(ts[last]);
            }
            self.acc.repeat_minutes(j - a);
            if keep {
                let eq = self.d.equity;
                self.equity.resize(self.equity.len() + (j - a), eq);
                let base = self.decisions.len();
                self.decisions.extend_idle(&ts[a..j]);
                for &(r, sig) in &fired {
                    self.decisions.signals[base + r - a] = sig;
                }
            }
        }
        self.fired = fired;
        j
    }

    /// Rows `m..e`: idle, no setup fires. The first row of every UTC day among them runs
    /// through `step` (day roll, kill switch, daily returns, funding clock); the rest of
    /// that day repeats it exactly and is applied at once.
    fn skip_idle(&mut self, m: usize, e: usize) {
        let (_, plan) = self.prep.expect("prepared path");
        let t = self.t;
        let ts = t.ts_min;
        let mut j = m;
        while j < e {
            self.step(j);
            let day_end = (ts[j].div_euclid(DAY) + 1) * DAY;
            let end = j + 1 + ts[j + 1..e].partition_point(|&t| t < day_end);
            if end > j + 1 {
                let last = end - 1;
                let (above, below) = plan.tracks(self.pre, last);
                let kpx = last_mark(t, j + 1, last, kernel_mark);
                self.k
                    .skip_idle_minutes((end - j - 1) as u64, ts[last], kpx, above, below);
                if let Some(px) = last_mark(t, j + 1, last, engine_mark) {
                    self.last_mark = px;
                }
                if ts[last] >= self.next_funding {
                    self.funding(ts[last]);
                }
                self.acc.repeat_minutes(end - j - 1);
                if self.keep {
                    self.keep_idle_rows(j + 1, end);
                }
            }
            j = end;
        }
    }

    /// Full output for skipped idle rows: the decision each would have produced (flat, no
    /// signal, no day roll, equity = cash, heat 0).
    fn keep_idle_rows(&mut self, a: usize, b: usize) {
        let kill = self.k.state().kill;
        let eq = self.d.equity;
        for m in a..b {
            let x = Row { t: self.t, m };
            let reason = if kill {
                Reason::KillSwitchActive
            } else if !x.has_trades() {
                Reason::NoTrades
            } else if !(x.va_valid()
                && x.vah().is_finite()
                && x.val().is_finite()
                && x.poc().is_finite())
            {
                Reason::VaInvalid
            } else {
                Reason::NoSignal
            };
            self.equity.push(eq);
            self.decisions.reason.push(reason.code());
        }
        self.decisions.extend_idle(&self.t.ts_min[a..b]);
    }

    /// Process row `m` (steps 1–4); the kernel's decision is returned by reference.
    #[inline]
    pub fn step(&mut self, m: usize) -> &Decision {
        let t = self.t;
        if t.ts_min[m] >= self.next_funding {
            self.funding(t.ts_min[m]);
        }
        if self.exit.is_some() || self.entry.is_some() {
            self.fill_orders(m);
        }
        if self.k.position().is_some() {
            self.intrabar(m);
        }
        if self.entry.is_some() {
            self.expire_limit(m);
        }
        let rows = self.rows;
        if rows.is_empty() {
            // Read in place: the kernel touches only the columns its checks reach.
            self.decide(&Row { t, m }, m);
        } else {
            self.decide(&rows[m], m);
        }
        &self.d
    }

    /// Step 4 of row `m` (input `x`) and its bookkeeping.
    #[inline]
    fn decide<B: Bar>(&mut self, x: &B, m: usize) {
        if self.pre.is_empty() {
            self.k.decide(x, &mut self.d);
        } else {
            self.k.decide_prepared(x, &self.pre[m], &mut self.d);
        }
        let (mid, close) = (x.mid_close(), x.close());
        if mid.is_finite() {
            self.last_mark = mid;
        } else if close.is_finite() {
            self.last_mark = close;
        }
        let d = &self.d;
        if d.cancel_entry {
            self.entry = None;
        }
        if d.exit.is_some() {
            self.exit = Some(PendingExit { decided: m });
        }
        if let Some(o) = d.entry {
            let resting = o.limit_price.is_some() && self.p.limit_order_timeout_minutes > 0;
            self.entry = Some(PendingEntry {
                order: o,
                decided: m,
                market_row: m,
                resting,
                checked_quote: !resting,
                cap_hit: d.events & at_strategy::event::LEVERAGE_CAP_HIT != 0,
                ambiguous: x.ambiguous_frac(),
            });
            if d.exit.is_some() {
                self.acc.flip();
            }
        }
        if self.amb.is_some() {
            self.acc
                .minute_core(x.ts_min(), &self.d, self.k.position().is_some());
        } else {
            self.acc.minute(x, &self.d, self.k.position().is_some());
        }
        if self.keep {
            self.equity.push(self.d.equity);
            self.decisions.push(&self.d);
        }
    }

    /// Close what is still open at the last mark (reason END_OF_DATA) and finish.
    pub fn finish(mut self) -> BacktestResult {
        let n = self.t.len();
        if n > 0 {
            let ts = self.t.ts_min[n - 1] + MINUTE;
            if self.exit.is_some() {
                self.fill_orders_end(n - 1);
            }
            if let Some(pos) = self.k.position().copied() {
                let px = self.last_mark;
                self.exit_fill(
                    ExitKind::Market,
                    ts,
                    px,
                    pos.qty_steps,
                    false,
                    0.0,
                    Reason::EndOfData,
                    ts - 1,
                );
            }
        }
        let eq = self.k.equity_at(self.last_mark);
        if let Some((a, high)) = &self.amb {
            self.acc.set_ambiguity(a.sum, a.n, a.max, *high);
        }
        let metrics = self.acc.finish(eq);
        BacktestResult {
            metrics,
            trades: self.trades,
            equity: self.equity,
            decisions: self.decisions,
        }
    }

    fn fill_orders_end(&mut self, last: usize) {
        if let Some(px) = self.exit.take() {
            let (ts, bid, ask) = self.quote_after(px.decided.min(last));
            if let Some(pos) = self.k.position().copied() {
                let price = if pos.side > 0 {
                    bid - self.slip_exit
                } else {
                    ask + self.slip_exit
                };
                let reason = pos.exit_pending.unwrap_or(Reason::EndOfData);
                self.exit_fill(
                    ExitKind::Market,
                    ts,
                    price,
                    pos.qty_steps,
                    false,
                    self.slip_exit,
                    reason,
                    decision_ts(self.t.ts_min[px.decided]),
                );
            }
        }
    }
}

/// Run one backtest with full output. One run gains nothing from preparing the table
/// (the preparation costs about what it saves), so this is the straightforward path with
/// idle stretches skipped by a lazy scan (`Engine::with_scan`); `run_prepared` is the same
/// over a `Prepared` table shared by many runs. Bit-identical to `run_reference`.
pub fn run(t: &MinuteTable, p: Params) -> Result<BacktestResult, AtError> {
    let mut e = Engine::with_scan(t, p, true)?;
    let mut m = 0;
    while m < t.len() {
        m = e.advance(m);
    }
    Ok(e.finish())
}

/// Full output over a prepared table (`prep` must hold `p`'s signal key and plan, see
/// `Prepared::add`; `t` validated by the caller). Bit-identical to `run_reference`.
pub fn run_prepared(
    t: &MinuteTable,
    prep: &Prepared,
    p: Params,
) -> Result<BacktestResult, AtError> {
    let mut e = Engine::with_prepared(t, prep, p, true)?;
    let mut m = 0;
    while m < t.len() {
        m = e.advance(m);
    }
    Ok(e.finish())
}

/// `run` the straightforward way: every minute through `Kernel::decide` read from the
/// columns, nothing precomputed. The reference the prepared path is tested against.
pub fn run_reference(t: &MinuteTable, p: Params) -> Result<BacktestResult, AtError> {
    t.validate()?;
    let mut e = Engine::new(t, &[], p, true)?;
    for m in 0..t.len() {
        e.step(m);
    }
    Ok(e.finish())
}

/// Metrics only, straightforward path. `rows` = `t.rows()` or empty; `t` validated by
/// the caller.
pub fn run_metrics(t: &MinuteTable, rows: &[MinuteInput], p: Params) -> Result<Metrics, AtError> {
    let mut e = Engine::new(t, rows, p, false)?;
    for m in 0..t.len() {
        e.step(m);
    }
    Ok(e.finish().metrics)
}

/// Metrics only over a prepared table (the grid's inner loop); `prep` must hold `p`'s
/// signal key (`Prepared::add`) and `t` be validated by the caller.
pub fn run_metrics_prepared(
    t: &MinuteTable,
    prep: &Prepared,
    p: Params,
) -> Result<Metrics, AtError> {
    let mut e = Engine::with_prepared(t, prep, p, false)?;
    let mut m = 0;
    while m < t.len() {
        m = e.advance(m);
    }
    Ok(e.finish().metrics)
}

/// Many parameter sets over one table, sharing it (never copied) and its per-table work
/// (`Prepared`: computed once per call, per distinct signal key). `threads <= 1` runs on
/// the calling thread; otherwise sets are split into contiguous chunks over scoped
/// threads. Results are in input order and independent of the thread count; an invalid
/// set gets its error in its slot.
pub fn run_batch(
    t: &MinuteTable,
    params: &[Params],
    threads: usize,
) -> Result<Vec<Result<Metrics, AtError>>, AtError> {
    t.validate()?;
    let mut prep = Prepared::with_rows(t);
    // Invalid sets are skipped here; their run reports the validation error.
    let valid: Vec<bool> = params
        .iter()
        .map(|p| p.validate().is_ok() && prep.add(t, p).is_ok())
        .collect();
    let prep = &prep;
    let one = |(p, ok): (&Params, &bool)| {
        if *ok {
            run_metrics_prepared(t, prep, *p)
        } else {
            run_metrics(t, &prep.rows, *p)
        }
    };
    if threads <= 1 || params.len() < 2 {
        return Ok(params.iter().zip(&valid).map(one).collect());
    }
    let chunk = params.len().div_ceil(threads);
    let mut out: Vec<Result<Metrics, AtError>> = Vec::with_capacity(params.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = params
            .chunks(chunk)
            .zip(valid.chunks(chunk))
            .map(|(c, v)| s.spawn(move || c.iter().zip(v).map(one).collect::<Vec<_>>()))
            .collect();
        for h in handles {
            out.extend(h.join().expect("backtest worker panicked"));
        }
    });
    Ok(out)
}

/// Whether a decision is an entry (for reports).
pub fn is_entry(d: &Decision) -> bool {
    matches!(d.action, Action::EnterLong | Action::EnterShort)
}
