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
//! Data gaps: a row whose minute does not follow the previous row's is the first after a
//! gap (stage 1 emits no minute across a hole longer than `max_gap_minutes`). Before it,
//! the engine does what it does at the end of the data, at the last row before the hole:
//! a working entry is cancelled, an open position is closed at the last mark (reason
//! `DATA_GAP`, taker fee), and the kernel forgets its acceptance sequences and retest.
//! Funding instants inside the hole therefore find no position, no fill reference
//! crosses the hole (see `crate::features`), and the metrics count the gaps and the
//! minutes missing. The position is closed when the hole is *known*: in a batch that is
//! from the table; a streaming driver sees the same rows (stage 1 emits the same minutes
//! to a wall clock), so the same close at the same price happens at the same row. With
//! external fills (live) the engine does not invent an exit: the exchange holds the
//! position, and the live layer treats a feed outage as an alert.
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
//! `RunPath::Reference`, which steps every row): the kernel reads each row in place through
//! `at_strategy::Bar` (only the columns its checks reach; gathering all 18 columns of a
//! row costs more than deciding it, the columns being far apart in memory). While nothing
//! is open, working or pending and the kernel is idle, rows where no setup fires change
//! nothing but clocks, marks and the acceptance sequences: `run` scans them lazily
//! (`Kernel::idle_scan`), `run_batch` jumps over them with a per-table plan (`Prepared`).

use at_strategy::{Bar, Decision, ExitKind, Kernel, MinuteInput, Params, PreMinute, Reason};
use at_types::AtError;

use crate::metrics::MetricsAcc;
use crate::prepared::{AmbiguityStats, IdlePlan, Prepared};
use crate::table::{FundingHistory, MinuteTable, Row};

const MINUTE: i64 = 60_000;
const FUNDING_PERIOD: i64 = 8 * 3_600_000;
const DAY: i64 = 86_400_000;

mod external;
mod fills;
mod idle;
mod records;
mod runs;

use fills::{OpenTrade, PendingEntry, PendingExit};
pub use records::{BacktestResult, DecisionRow, Decisions, TradeRecord};
pub use runs::{daily_days, is_entry, run, run_batch, run_batch_daily, run_with, Output, RunPath};

/// The execution core's state between minutes: the kernel (decisions, book, risk) and the
/// fill model's working orders, open trade, records and metrics. It holds no reference to
/// the data: an [`Engine`] binds it to a table for as long as a driver runs rows through
/// it. The batch runner binds it once for the whole table; the streaming driver
/// (`crate::stream`) binds it for each minute as the minute closes (the table grows in
/// between), so both run exactly this code.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Core {
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
    /// Fills come from outside (live mode: the exchange) instead of the fill model.
    external: bool,
    /// The entry's partial fills so far (external fills only).
    partial: Option<external::PartialEntry>,
    /// Entries the kernel cancelled whose end the executor has not reported (external
    /// fills only: the exchange may have filled them before the cancel arrived).
    cancelled: Vec<external::CancelledEntry>,
}

impl Core {
    /// A fresh core for parameters `p` whose first minute is `first_ts_min`; `funding`: the
    /// venue's funding history (`None` = the fixed rate at 00/08/16 UTC); `rows_hint`:
    /// expected minutes (capacity of the full-output records). `keep`: record trades,
    /// equity and decisions (full mode); off in the batch runner.
    pub fn new(
        p: Params,
        keep: bool,
        first_ts_min: i64,
        funding: Option<&FundingHistory<'_>>,
        rows_hint: usize,
    ) -> Result<Self, AtError> {
        let k = Kernel::new(p)?;
        let first = first_ts_min;
        Ok(Self {
            k,
            keep,
            entry: None,
            exit: None,
            open: None,
            trades: Vec::new(),
            equity: if keep {
                Vec::with_capacity(rows_hint)
            } else {
                Vec::new()
            },
            decisions: if keep {
                Decisions::with_capacity(rows_hint)
            } else {
                Decisions::default()
            },
            acc: {
                let mut a = MetricsAcc::new(p.initial_equity);
                a.set_ambiguous_threshold(p.ambiguous_trade_frac_max);
                a
            },
            d: Decision::hold(first),
            next_funding: match funding {
                Some(h) => h.next_after(first),
                None => (first.div_euclid(FUNDING_PERIOD) + 1) * FUNDING_PERIOD,
            },
            last_mark: f64::NAN,
            slip_entry: p.slippage_ticks_entry * p.tick_size,
            slip_exit: p.slippage_ticks_exit * p.tick_size,
            external: false,
            partial: None,
            cancelled: Vec::new(),
            p,
        })
    }

    /// Fills, funding and cancellations are reported from outside (live mode) through
    /// `Engine::external_*`; the simulated fill model, stops, targets and funding clock
    /// stay off. Decisions, sizing, risk and the records are the same code.
    pub fn with_external_fills(mut self) -> Self {
        self.external = true;
        self
    }

    /// The kernel's entry permission (the live graph's gate).
    pub fn set_permission(&mut self, p: at_strategy::Permission) {
        self.k.set_permission(p);
    }

    /// The kernel's cash set to the exchange's wallet balance (`Kernel::sync_cash`).
    pub fn sync_cash(&mut self, wallet: f64) -> f64 {
        self.k.sync_cash(wallet)
    }

    /// Whether fills come from outside.
    pub fn external_fills(&self) -> bool {
        self.external
    }

    pub fn kernel(&self) -> &Kernel {
        &self.k
    }

    /// The last decision taken.
    pub fn decision(&self) -> &Decision {
        &self.d
    }

    /// Whether an entry or exit order is waiting for its fill.
    pub fn has_working_orders(&self) -> bool {
        self.entry.is_some() || self.exit.is_some()
    }

    /// The last mark price (mid at the last close, else its last trade); NaN before one.
    pub fn last_mark(&self) -> f64 {
        self.last_mark
    }

    /// Quantity steps of the working entry filled so far by reported partial fills
    /// (external fills only; 0 otherwise).
    pub fn entry_filled_steps(&self) -> i64 {
        self.partial.as_ref().map_or(0, |p| p.steps())
    }

    /// Entries the kernel cancelled whose end is not reported yet (external fills only).
    pub fn cancelled_entries(&self) -> usize {
        self.cancelled.len()
    }

    /// The first table row a working order still refers to (its decision row, or the row
    /// whose fill reference a market fill uses); `None` when no order works.
    pub fn first_row_needed(&self) -> Option<usize> {
        let entries = self
            .entry
            .iter()
            .chain(self.cancelled.iter().map(|c| &c.pe));
        let rows = entries
            .flat_map(|pe| [pe.decided, pe.market_row])
            .chain(self.exit.iter().map(|px| px.decided));
        rows.min()
    }

    /// The table's first `k` rows were dropped (a streaming driver's compaction; `k` at
    /// most `first_row_needed`): the working orders' row numbers move down, and the
    /// per-row records (equity, decisions) of those rows go too.
    pub fn rows_dropped(&mut self, k: usize) {
        debug_assert!(self.first_row_needed().is_none_or(|r| r >= k));
        let shift = |pe: &mut PendingEntry| {
            pe.decided -= k;
            pe.market_row -= k;
        };
        if let Some(pe) = self.entry.as_mut() {
            shift(pe);
        }
        for c in self.cancelled.iter_mut() {
            shift(&mut c.pe);
        }
        if let Some(px) = self.exit.as_mut() {
            px.decided -= k;
        }
        if self.keep {
            self.equity.drain(..k.min(self.equity.len()));
            self.decisions.drop_front(k);
        }
    }
}

/// Runs one parameter set over one table: a [`Core`] bound to the table's rows.
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
    c: Core,
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
        let first = t.ts_min.first().copied().unwrap_or(0);
        let c = Core::new(p, keep, first, t.funding.as_ref(), t.len())?;
        Ok(Self::bind(t, rows, c))
    }

    /// Bind an existing core to `t` (straightforward path: every row through `step`).
    pub fn bind(t: &'t MinuteTable<'a>, rows: &'t [MinuteInput], c: Core) -> Self {
        Self {
            t,
            rows,
            pre: &[],
            amb: None,
            prep: None,
            scan: false,
            fired: Vec::new(),
            c,
        }
    }

    /// Unbind: the core, to be bound again to the grown table.
    pub fn into_core(self) -> Core {
        self.c
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
        &self.c.k
    }

    /// Process row `m` (steps 1–4); the kernel's decision is returned by reference.
    #[inline]
    pub fn step(&mut self, m: usize) -> &Decision {
        let t = self.t;
        if m > 0 && t.ts_min[m] - t.ts_min[m - 1] > MINUTE {
            self.data_gap(m - 1, m);
        }
        if self.c.external {
            return self.decide_row(m);
        }
        if t.ts_min[m] >= self.c.next_funding {
            self.funding(t.ts_min[m]);
        }
        if self.c.exit.is_some() || self.c.entry.is_some() {
            self.fill_orders(m);
        }
        if self.c.k.position().is_some() {
            self.intrabar(m);
        }
        if self.c.entry.is_some() {
            self.expire_limit(m);
        }
        self.decide_row(m)
    }

    /// Rows `last` and `next` are the two sides of a data gap (see the module notes).
    #[cold]
    #[inline(never)]
    fn data_gap(&mut self, last: usize, next: usize) {
        let ts = self.t.ts_min;
        self.c.acc.gap((ts[next] - ts[last]) / MINUTE - 1);
        if !self.c.external {
            let end = ts[last] + MINUTE;
            if self.c.exit.is_some() {
                self.fill_orders_end(last);
            }
            if self.c.entry.take().is_some() {
                self.c.k.cancel_entry();
            }
            self.close_at_mark(end, Reason::DataGap);
        }
        self.c.k.forget_market();
    }

    /// The data ends (for good, or at a gap) at `end`: close what is open at the last mark,
    /// as a market exit with the taker fee and no slippage (there is no later quote).
    fn close_at_mark(&mut self, end: i64, reason: Reason) {
        if let Some(pos) = self.c.k.position().copied() {
            let px = self.c.last_mark;
            self.exit_fill(
                ExitKind::Market,
                end,
                px,
                pos.qty_steps,
                false,
                0.0,
                reason,
                end - 1,
            );
        }
    }

    /// Step 4 alone: the kernel decides row `m`.
    #[inline]
    fn decide_row(&mut self, m: usize) -> &Decision {
        let t = self.t;
        let rows = self.rows;
        if rows.is_empty() {
            // Read in place: the kernel touches only the columns its checks reach.
            self.decide(&Row { t, m }, m);
        } else {
            self.decide(&rows[m], m);
        }
        &self.c.d
    }

    /// Step 4 of row `m` (input `x`) and its bookkeeping.
    #[inline]
    fn decide<B: Bar>(&mut self, x: &B, m: usize) {
        if self.pre.is_empty() {
            self.c.k.decide(x, &mut self.c.d);
        } else {
            self.c.k.decide_prepared(x, &self.pre[m], &mut self.c.d);
        }
        let (mid, close) = (x.mid_close(), x.close());
        if mid.is_finite() {
            self.c.last_mark = mid;
        } else if close.is_finite() {
            self.c.last_mark = close;
        }
        let d = &self.c.d;
        if d.cancel_entry {
            let pe = self.c.entry.take();
            if let (true, Some(pe)) = (self.c.external, pe) {
                // the exchange may fill it before the executor's cancel arrives
                let partial = self.c.partial.take();
                self.c
                    .cancelled
                    .push(external::CancelledEntry { pe, partial });
            }
        }
        if d.exit.is_some() {
            self.c.exit = Some(PendingExit { decided: m });
        }
        if let Some(o) = d.entry {
            let resting = o.limit_price.is_some() && self.c.p.limit_order_timeout_minutes > 0;
            self.c.entry = Some(PendingEntry {
                order: o,
                decided: m,
                market_row: m,
                resting,
                checked_quote: !resting,
                cap_hit: d.events & at_strategy::event::LEVERAGE_CAP_HIT != 0,
                ambiguous: x.ambiguous_frac(),
            });
            if d.exit.is_some() {
                self.c.acc.flip();
            }
        }
        if self.amb.is_some() {
            self.c
                .acc
                .minute_core(x.ts_min(), &self.c.d, self.c.k.position().is_some());
        } else {
            self.c
                .acc
                .minute(x, &self.c.d, self.c.k.position().is_some());
        }
        if self.c.keep {
            self.c.equity.push(self.c.d.equity);
            self.c.decisions.push(&self.c.d);
        }
    }

    /// Close what is still open at the last mark (reason END_OF_DATA) and finish.
    pub fn finish(mut self) -> BacktestResult {
        let n = self.t.len();
        if n > 0 {
            let ts = self.t.ts_min[n - 1] + MINUTE;
            if self.c.exit.is_some() {
                self.fill_orders_end(n - 1);
            }
            self.close_at_mark(ts, Reason::EndOfData);
        }
        let eq = self.c.k.equity_at(self.c.last_mark);
        if let Some((a, high)) = &self.amb {
            self.c.acc.set_ambiguity(a.sum, a.n, a.max, *high);
        }
        let (metrics, daily_returns) = self.c.acc.finish_with_daily(eq);
        BacktestResult {
            metrics,
            daily_returns,
            trades: self.c.trades,
            equity: self.c.equity,
            decisions: self.c.decisions,
        }
    }
}
