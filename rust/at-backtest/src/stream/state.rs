//! The driver's current trading state, read incrementally (a live graph polls it after
//! every push or reported fill; nothing here copies the history).
//!
//! Domain pitfalls:
//! * The book is the kernel's (position, cash, working entry), the one the decisions and
//!   the kill switch see; the fill model's bookkeeping (pending rows) is not exposed.
//! * `day_start_equity` rolls at the first close of a new UTC day (the kernel's rule):
//!   between 00:00 and that close, `day_pnl` is still measured against the previous day.
//! * Closed trades are read with [`StreamingDriver::trades_since`] from a count the caller
//!   keeps; positions still open at `finish` (END_OF_DATA) appear only in its result.

use at_strategy::{Mode, Permission, Reason, Retest, SeqTrack, Setup};

use super::StreamingDriver;
use crate::engine::TradeRecord;

/// The open position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenPosition {
    /// +1 long, -1 short.
    pub side: i8,
    /// Remaining quantity (after TP1, if it filled).
    pub qty: f64,
    pub entry_price: f64,
    /// Fill time of the entry (ms).
    pub entry_ts_ms: i64,
    /// The stop now (moved to breakeven after TP1, trailed when extended).
    pub stop: f64,
    pub tp1: Option<f64>,
    pub tp2: Option<f64>,
    pub tp1_done: bool,
    /// The setup that opened it (`positions.strategy_tag`) and the entry reason.
    pub setup: Setup,
    pub entry_reason: Reason,
    /// A market exit was decided and has not filled yet (its reason).
    pub exit_pending: Option<Reason>,
}

/// The entry order the kernel placed and that has not filled (or ended) yet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkingEntry {
    pub side: i8,
    /// Limit price; `None` for a market order.
    pub limit_price: Option<f64>,
    pub qty: f64,
    /// Quantity filled so far by reported partial fills (external fills; 0 in paper).
    pub filled_qty: f64,
    pub stop: f64,
    pub tp1: Option<f64>,
    pub tp2: Option<f64>,
    pub setup: Setup,
    pub reason: Reason,
    /// Minute whose close decided it, and that close (`ts_min + 59 999`, when it is sent).
    pub decision_ts_min: i64,
    pub decision_ts_ms: i64,
}

/// The driver's trading state now.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverState {
    /// Minutes decided so far, and the last one.
    pub minutes: usize,
    pub last_ts_min: Option<i64>,
    /// The kernel's mode (SPEC §6.1) and acceptance state (`signals_1m.acceptance_state`).
    pub mode: Mode,
    pub above: SeqTrack,
    pub below: SeqTrack,
    pub retest: Option<Retest>,
    pub position: Option<OpenPosition>,
    pub working_entry: Option<WorkingEntry>,
    /// Initial equity + realised P&L − fees + funding.
    pub cash: f64,
    /// Cash plus the open position marked at the last mark (NaN mark: cash).
    pub equity: f64,
    pub kill_switch: bool,
    /// Heat (SPEC §9.5) after the last decision.
    pub heat: f64,
    /// Equity at the start of the current UTC day and `equity - day_start_equity`.
    pub day_start_equity: f64,
    pub day_pnl: f64,
    /// Closed trades so far (the index for the next `trades_since`).
    pub closed_trades: usize,
    pub events: u64,
    pub halted: Option<String>,
    /// May the kernel open positions (the live graph's activation state).
    pub permission: Permission,
}

impl StreamingDriver {
    /// The trading state now (see the module doc). Before the first minute closes: flat,
    /// initial equity, nothing decided.
    pub fn state(&self) -> DriverState {
        let p = &self.p;
        let base = DriverState {
            minutes: self.minutes(),
            last_ts_min: self.b.table.ts_min.last().copied(),
            mode: Mode::Flat,
            above: SeqTrack::NONE,
            below: SeqTrack::NONE,
            retest: None,
            position: None,
            working_entry: None,
            cash: p.initial_equity,
            equity: p.initial_equity,
            kill_switch: false,
            heat: 0.0,
            day_start_equity: p.initial_equity,
            day_pnl: 0.0,
            closed_trades: 0,
            events: self.events,
            halted: self.halted.clone(),
            permission: self.permission,
        };
        let Some(c) = &self.core else {
            return base;
        };
        let k = c.kernel();
        let s = k.state();
        let q = p.qty_step;
        let equity = k.equity_at(c.last_mark());
        DriverState {
            mode: k.mode(),
            above: s.above,
            below: s.below,
            retest: s.retest,
            position: k.position().map(|x| OpenPosition {
                side: x.side,
                qty: x.qty_steps as f64 * q,
                entry_price: x.entry_price,
                entry_ts_ms: x.open_ts_ms,
                stop: x.stop,
                tp1: x.tp1,
                tp2: x.tp2,
                tp1_done: x.tp1_done,
                setup: x.setup,
                entry_reason: x.entry_reason,
                exit_pending: x.exit_pending,
            }),
            working_entry: k.working_entry().map(|o| WorkingEntry {
                side: o.side,
                limit_price: o.limit_price,
                qty: o.qty_steps as f64 * q,
                filled_qty: c.entry_filled_steps() as f64 * q,
                stop: o.stop,
                tp1: o.tp1,
                tp2: o.tp2,
                setup: o.setup,
                reason: o.reason,
                decision_ts_min: o.decision_ts_min,
                decision_ts_ms: o.decision_ts_min + 59_999,
            }),
            cash: s.cash,
            equity,
            kill_switch: s.kill,
            heat: c.decision().heat,
            day_start_equity: s.day_start_equity,
            day_pnl: equity - s.day_start_equity,
            closed_trades: c.trades.len(),
            ..base
        }
    }

    /// Closed trades from index `n` on (empty when `n` is at or past the count), in the
    /// order `finish` returns them.
    pub fn trades_since(&self, n: usize) -> &[TradeRecord] {
        match &self.core {
            Some(c) => &c.trades[n.min(c.trades.len())..],
            None => &[],
        }
    }
}
