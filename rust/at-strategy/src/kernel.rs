//! The strategy kernel: one implementation of every trading decision (SPEC §6–§9).
//!
//! Driven once per finished minute (`on_minute`), plus fill and funding reports from
//! whatever executes its orders (the backtester's fill model, or the live execution actor).
//! The kernel owns the book (position, cash, daily P&L) so that sizing on available margin,
//! the kill switch and the time stop see exactly what happened, in both paths.
//!
//! Interpretations of the spec (all documented in the notes too):
//! - Acceptance (§6.2) is tracked per side on closes only; a sequence starts only on a
//!   close outside whose bar proves the boundary crossing (§6.3), locks the boundary, and is
//!   reset by one close at or inside the locked boundary. A sequence fires its breakout
//!   signal once: at the first bar with `count >= k`, `close > VAH_t` and initiative.
//! - Setup C (§6.6) is evaluated literally at every bar (it rarely wins against the
//!   higher-priority break-in, which has the same shape but needs the crossing proof); a
//!   failed retest (close back at/inside the locked VAH) enters C if C's initiative holds.
//! - A retest (§6.5) completes on the first bar whose low comes within
//!   `pullback_spread_mult × spread_avg` of the locked boundary and that closes beyond it.
//!   PENDING_RETEST is entered only from FLAT; it has no timeout.
//! - Breakout trades have no TP1/TP2 (the spec names none): they exit on a close back
//!   inside the VA, on the pullback-low stop (or the locked boundary − buffer without
//!   retest), or on the time stop. Targets not beyond the entry price are dropped.
//! - Time stop (§9.2): held minutes count from the close of the fill minute. At
//!   `max_hold_minutes`, a position that is profitable net of fees (entry fee paid +
//!   estimated taker exit fee + exit slippage) is extended; "the trail": while extended,
//!   the stop ratchets to the fee-breakeven price and the position exits at the first close
//!   that is not profitable net of fees.
//! - Cooldown (§9.3): after an exit filled in minute e, no entries at the closes of minutes
//!   e .. e+cooldown-1. A flip is one decision (exit + entry) and is not blocked by it; no
//!   other entry is taken on a bar whose decision is an exit.
//! - Kill switch (§9.4): mark-to-market equity (cash incl. fees and funding, plus the open
//!   position at the mid) down `max_daily_loss_pct` from the UTC day's opening equity:
//!   flatten, cancel working entries and pending retests, no entries until 00:00 UTC.

use serde::{Deserialize, Serialize};

use crate::input::{Bar, MinuteInput};
use crate::params::{LimitPriceMode, OfThresholdMode, Params, QimbSource};
use crate::prepared::PreMinute;
use crate::reason::{event, sig, Reason};
use crate::sizing::{size_position, tp1_steps, SizeReject};
use at_types::AtError;

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

/// Which setup an entry came from (`positions.strategy_tag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Setup {
    BreakIn,
    Breakout,
    FailedBreakout,
}

impl Setup {
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::BreakIn => "breakin",
            Setup::Breakout => "breakout",
            Setup::FailedBreakout => "failbreak",
        }
    }
}

/// The state of SPEC §6.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    Flat,
    Long,
    Short,
    PendingRetest,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Flat => "FLAT",
            Mode::Long => "LONG",
            Mode::Short => "SHORT",
            Mode::PendingRetest => "PENDING_RETEST",
        }
    }
}

/// What the decision asks for (`signals_1m.chosen_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum Action {
    Hold,
    EnterLong,
    EnterShort,
    Exit,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Hold => "HOLD",
            Action::EnterLong => "ENTER_LONG",
            Action::EnterShort => "ENTER_SHORT",
            Action::Exit => "EXIT",
        }
    }
}

/// An entry order decided at a minute close.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EntryOrder {
    /// +1 long, -1 short.
    pub side: i8,
    pub setup: Setup,
    pub reason: Reason,
    pub qty_steps: i64,
    /// TP1 quantity in steps (0 = no partial).
    pub tp1_steps: i64,
    /// Limit price, or None for a market order.
    pub limit_price: Option<f64>,
    /// Price the size was computed from (the limit price, or the decision close).
    pub ref_price: f64,
    pub stop: f64,
    pub tp1: Option<f64>,
    pub tp2: Option<f64>,
    /// Breakouts: exit on a close at/inside this level (the locked VAH/VAL).
    pub close_inside_level: Option<f64>,
    /// Minute (start) whose close made the decision.
    pub decision_ts_min: i64,
}

/// A market exit of the whole remaining position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExitOrder {
    pub reason: Reason,
    pub qty_steps: i64,
}

/// The kernel's answer for one minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub ts_min: i64,
    pub action: Action,
    pub reason: Reason,
    /// `sig::*` bits of the setups that fired at this bar (before risk filters).
    pub signals: u8,
    /// `event::*` bits.
    pub events: u16,
    pub exit: Option<ExitOrder>,
    pub entry: Option<EntryOrder>,
    /// A working entry order must be cancelled.
    pub cancel_entry: bool,
    /// Mark-to-market equity at this close, and heat (SPEC §9.5) after the decision.
    pub equity: f64,
    pub heat: f64,
}

impl Decision {
    /// A HOLD with nothing to do.
    pub fn hold(ts_min: i64) -> Self {
        Decision {
            ts_min,
            action: Action::Hold,
            reason: Reason::NoSignal,
            signals: 0,
            events: 0,
            exit: None,
            entry: None,
            cancel_entry: false,
            equity: 0.0,
            heat: 0.0,
        }
    }
}

/// How an exit fill came about (reported by the executor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitKind {
    Stop,
    Tp1,
    Tp2,
    /// The market exit the kernel asked for (reason in the pending exit).
    Market,
}

/// One side's acceptance sequence (SPEC §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeqTrack {
    pub count: u32,
    /// Boundary locked at sequence start; None = no sequence.
    pub locked: Option<f64>,
    /// Poke extreme since the sequence started (max high above / min low below).
    pub extreme: f64,
    /// The sequence already produced its breakout signal.
    pub fired: bool,
}

impl SeqTrack {
    pub const NONE: SeqTrack = SeqTrack {
        count: 0,
        locked: None,
        extreme: 0.0,
        fired: false,
    };
}

/// PENDING_RETEST details.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Retest {
    pub side: i8,
    /// Locked boundary of the accepted sequence.
    pub level: f64,
    /// Poke extreme of the breakout (stop of a failed-breakout reversal).
    pub poke_extreme: f64,
    /// Pullback extreme since arming (stop of the retest entry).
    pub pullback_extreme: f64,
    pub armed_ts_min: i64,
}

/// The open position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub side: i8,
    pub setup: Setup,
    pub entry_reason: Reason,
    pub qty_steps: i64,
    pub initial_qty_steps: i64,
    pub tp1_steps: i64,
    pub entry_price: f64,
    pub entry_fee: f64,
    pub stop: f64,
    pub tp1: Option<f64>,
    pub tp2: Option<f64>,
    pub tp1_done: bool,
    pub close_inside_level: Option<f64>,
    /// Close of the fill minute: the time stop counts from here (SPEC §9.2).
    pub timer_start_ms: i64,
    pub open_ts_ms: i64,
    pub extended: bool,
    pub funding: f64,
    pub realized: f64,
    pub fees: f64,
    /// A market exit was decided and not yet filled.
    pub exit_pending: Option<Reason>,
}

/// The fields of the position the per-minute management reads (copying the whole
/// `Position` every minute shows up in profiles).
#[derive(Clone, Copy)]
struct PosView {
    exit_pending: Option<Reason>,
    side: i8,
    close_inside_level: Option<f64>,
    timer_start_ms: i64,
    qty_steps: i64,
    entry_price: f64,
    realized: f64,
    fees: f64,
    extended: bool,
}

impl PosView {
    #[inline]
    fn of(p: &Position) -> Self {
        Self {
            exit_pending: p.exit_pending,
            side: p.side,
            close_inside_level: p.close_inside_level,
            timer_start_ms: p.timer_start_ms,
            qty_steps: p.qty_steps,
            entry_price: p.entry_price,
            realized: p.realized,
            fees: p.fees,
            extended: p.extended,
        }
    }
}

/// Everything the kernel remembers: export it, restore it, continue identically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelState {
    pub above: SeqTrack,
    pub below: SeqTrack,
    pub retest: Option<Retest>,
    pub working: Option<EntryOrder>,
    pub position: Option<Position>,
    /// Initial equity + realised P&L − fees + funding.
    pub cash: f64,
    pub day: i64,
    /// End (exclusive) of the current UTC day, ms.
    pub day_end_ms: i64,
    pub day_start_equity: f64,
    pub kill: bool,
    pub last_mtm: f64,
    pub last_price: f64,
    pub last_exit_min: Option<i64>,
    pub minutes_seen: u64,
    pub last_ts_min: Option<i64>,
}

/// The kernel: parameters + state.
#[derive(Debug, Clone)]
pub struct Kernel {
    p: Params,
    s: KernelState,
    min_qty_steps: i64,
}

/// NaN-ignoring max/min (a missing extreme must not poison a stop level).
#[inline]
fn fmax(a: f64, b: f64) -> f64 {
    a.max(b)
}
#[inline]
fn fmin(a: f64, b: f64) -> f64 {
    a.min(b)
}

/// Whether the minute's value area is usable (valid and finite).
#[inline]
pub(crate) fn va_ok<B: Bar>(x: &B) -> bool {
    x.va_valid() && x.vah().is_finite() && x.val().is_finite() && x.poc().is_finite()
}

/// `mult` × the minute's average spread (the tick size when unknown): the distance of
/// §6.3 (crossing) and §6.5 (pullback).
#[inline]
pub(crate) fn spread_dist<B: Bar>(x: &B, tick_size: f64, mult: f64) -> f64 {
    let sp = x.spread_avg();
    let s = if sp.is_finite() && sp > 0.0 {
        sp
    } else {
        tick_size
    };
    // Half a tick of tolerance against float noise in prices that sit on the grid.
    mult * s + 1e-9 * tick_size
}

/// Advance both acceptance sequences by one minute with trades (SPEC §6.2/§6.3). Depends
/// only on the minute and the crossing distance `dc()` (asked for only when a sequence may
/// start), never on the position or on other parameters: the batch runner computes it
/// once per table (`prepare_minutes`). Returns the poke extremes of sequences reset by
/// this bar (NaN when none was).
#[inline]
pub(crate) fn advance_acceptance<B: Bar>(
    a: &mut SeqTrack,
    b: &mut SeqTrack,
    x: &B,
    va_ok: bool,
    dc: impl Fn() -> f64,
) -> (f64, f64) {
    let mut above_reset_extreme = f64::NAN;
    let mut below_reset_extreme = f64::NAN;
    match a.locked {
        Some(l) => {
            if x.close() > l {
                a.count += 1;
                a.extreme = fmax(a.extreme, x.high());
            } else {
                above_reset_extreme = fmax(a.extreme, x.high());
                *a = SeqTrack::NONE;
            }
        }
        None => {
            if va_ok && x.close() > x.vah() && x.crossed_within(x.vah(), dc()) {
                *a = SeqTrack {
                    count: 1,
                    locked: Some(x.vah()),
                    extreme: x.high(),
                    fired: false,
                };
            }
        }
    }
    match b.locked {
        Some(l) => {
            if x.close() < l {
                b.count += 1;
                b.extreme = fmin(b.extreme, x.low());
            } else {
                below_reset_extreme = fmin(b.extreme, x.low());
                *b = SeqTrack::NONE;
            }
        }
        None => {
            if va_ok && x.close() < x.val() && x.crossed_within(x.val(), dc()) {
                *b = SeqTrack {
                    count: 1,
                    locked: Some(x.val()),
                    extreme: x.low(),
                    fired: false,
                };
            }
        }
    }
    (above_reset_extreme, below_reset_extreme)
}

/// An entry plan before sizing: side, setup, reason, boundary (limit price in boundary
/// mode), stop, TP1, TP2, close-inside exit level.
type Plan = (
    i8,
    Setup,
    Reason,
    f64,
    f64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// The columns of a minute table that `Kernel::idle_scan` reads for every minute (fields
/// of `MinuteInput`, same meanings; equal lengths).
#[derive(Debug, Clone, Copy)]
pub struct IdleCols<'a> {
    pub close: &'a [f64],
    pub high: &'a [f64],
    pub low: &'a [f64],
    pub vah: &'a [f64],
    pub val: &'a [f64],
    pub poc: &'a [f64],
    pub va_valid: &'a [bool],
}

/// Which initiative thresholds a check uses.
#[derive(Clone, Copy)]
pub(crate) enum Family {
    Entry,
    Breakout,
    Fail,
}

impl Kernel {
    pub fn new(p: Params) -> Result<Self, AtError> {
        p.validate()?;
        let s = KernelState {
            above: SeqTrack::NONE,
            below: SeqTrack::NONE,
            retest: None,
            working: None,
            position: None,
            cash: p.initial_equity,
            day: i64::MIN,
            day_end_ms: i64::MIN,
            day_start_equity: p.initial_equity,
            kill: false,
            last_mtm: p.initial_equity,
            last_price: f64::NAN,
            last_exit_min: None,
            minutes_seen: 0,
            last_ts_min: None,
        };
        Ok(Self {
            min_qty_steps: p.min_qty_steps(),
            p,
            s,
        })
    }

    pub fn params(&self) -> &Params {
        &self.p
    }
    pub fn state(&self) -> &KernelState {
        &self.s
    }
    pub fn position(&self) -> Option<&Position> {
        self.s.position.as_ref()
    }
    pub fn working_entry(&self) -> Option<&EntryOrder> {
        self.s.working.as_ref()
    }

    pub fn mode(&self) -> Mode {
        match (&self.s.position, &self.s.retest) {
            (Some(p), _) if p.side > 0 => Mode::Long,
            (Some(_), _) => Mode::Short,
            (None, Some(_)) => Mode::PendingRetest,
            (None, None) => Mode::Flat,
        }
    }

    /// The whole state as JSON (state snapshots, SPEC §16).
    pub fn export_state(&self) -> String {
        serde_json::to_string(&self.s).expect("kernel state serialises")
    }

    /// A kernel with `p` and a state exported earlier by `export_state`.
    pub fn restore(p: Params, state_json: &str) -> Result<Self, AtError> {
        let mut k = Kernel::new(p)?;
        k.s = serde_json::from_str(state_json).map_err(|e| AtError::InvalidInput {
            location: format!("kernel state JSON line {} column {}", e.line(), e.column()),
            message: e.to_string(),
        })?;
        Ok(k)
    }

    /// Acceptance counters and locked levels as JSON (`signals_1m.acceptance_state`).
    pub fn acceptance_json(&self) -> String {
        serde_json::json!({
            "mode": self.mode().as_str(),
            "above": self.s.above,
            "below": self.s.below,
            "retest": self.s.retest,
        })
        .to_string()
    }

    /// Equity marked at `price` (cash + open position).
    pub fn equity_at(&self, price: f64) -> f64 {
        match &self.s.position {
            Some(pos) if price.is_finite() => {
                self.s.cash
                    + pos.side as f64
                        * (price - pos.entry_price)
                        * pos.qty_steps as f64
                        * self.p.qty_step
            }
            _ => self.s.cash,
        }
    }

    pub fn cash(&self) -> f64 {
        self.s.cash
    }

    fn heat(&self, equity: f64) -> f64 {
        match &self.s.position {
            Some(pos) => {
                let qty = pos.qty_steps as f64 * self.p.qty_step;
                let risk = fmax(0.0, pos.side as f64 * (pos.entry_price - pos.stop)) * qty;
                let avail = equity - qty * pos.entry_price / self.p.max_leverage;
                if avail > 0.0 {
                    risk / avail
                } else {
                    f64::INFINITY
                }
            }
            None => 0.0,
        }
    }

    // ------------------------------------------------------------------ fills

    /// The working entry filled (whole quantity) at `price` with `fee` (positive = paid).
    pub fn on_entry_fill(&mut self, ts_ms: i64, price: f64, fee: f64) -> Result<(), AtError> {
        let o = self.s.working.take().ok_or_else(|| AtError::InvalidInput {
            location: format!("entry fill at {ts_ms}"),
            message: "no working entry order".into(),
        })?;
        if self.s.position.is_some() {
            return Err(AtError::InvalidInput {
                location: format!("entry fill at {ts_ms}"),
                message: "a position is still open (exit must fill first)".into(),
            });
        }
        self.s.cash -= fee;
        self.s.retest = None;
        self.s.position = Some(Position {
            side: o.side,
            setup: o.setup,
            entry_reason: o.reason,
            qty_steps: o.qty_steps,
            initial_qty_steps: o.qty_steps,
            tp1_steps: o.tp1_steps,
            entry_price: price,
            entry_fee: fee,
            stop: o.stop,
            tp1: o.tp1,
            tp2: o.tp2,
            tp1_done: false,
            close_inside_level: o.close_inside_level,
            timer_start_ms: at_types::minute_of(ts_ms) + MINUTE,
            open_ts_ms: ts_ms,
            extended: false,
            funding: 0.0,
            realized: 0.0,
            fees: fee,
            exit_pending: None,
        });
        Ok(())
    }

    /// The working entry will not fill (rejected / cancelled by the executor).
    pub fn cancel_entry(&mut self) {
        self.s.working = None;
    }

    /// Part or all of the position closed at `price`. Returns true when it is now flat.
    pub fn on_exit_fill(
        &mut self,
        kind: ExitKind,
        ts_ms: i64,
        price: f64,
        qty_steps: i64,
        fee: f64,
    ) -> Result<bool, AtError> {
        let be = self.p.move_stop_to_breakeven_after_tp1;
        let step = self.p.qty_step;
        let pos = self
            .s
            .position
            .as_mut()
            .ok_or_else(|| AtError::InvalidInput {
                location: format!("exit fill at {ts_ms}"),
                message: "no open position".into(),
            })?;
        if qty_steps <= 0 || qty_steps > pos.qty_steps {
            return Err(AtError::InvalidInput {
                location: format!("exit fill at {ts_ms}"),
                message: format!("quantity {qty_steps} steps outside 1..={}", pos.qty_steps),
            });
        }
        let pnl = pos.side as f64 * (price - pos.entry_price) * qty_steps as f64 * step;
        pos.realized += pnl;
        pos.fees += fee;
        self.s.cash += pnl - fee;
        pos.qty_steps -= qty_steps;
        if kind == ExitKind::Tp1 {
            pos.tp1_done = true;
            if be {
                pos.stop = if pos.side > 0 {
                    fmax(pos.stop, pos.entry_price)
                } else {
                    fmin(pos.stop, pos.entry_price)
                };
            }
        }
        if pos.qty_steps == 0 {
            self.s.position = None;
            self.s.last_exit_min = Some(at_types::minute_of(ts_ms));
            return Ok(true);
        }
        Ok(false)
    }

    /// Funding paid (negative) or received (positive) on the open position.
    pub fn on_funding(&mut self, amount: f64) {
        self.s.cash += amount;
        if let Some(pos) = self.s.position.as_mut() {
            pos.funding += amount;
        }
    }

    // ------------------------------------------------------------------ decisions

    #[inline]
    fn of_pass<B: Bar>(&self, x: &B, raw: f64, norm: f64, dir: f64, strict: bool) -> bool {
        // dir = +1: value above threshold; -1: value below (thresholds mirrored by caller).
        let cmp = |v: f64, t: f64| -> bool {
            if strict {
                dir * v > dir * t
            } else {
                dir * v >= dir * t
            }
        };
        let r = x.of_1m().is_finite() && cmp(x.of_1m(), raw);
        let n = x.of_norm_1m().is_finite() && cmp(x.of_norm_1m(), norm);
        match self.p.of_threshold_mode {
            OfThresholdMode::Raw => r,
            OfThresholdMode::Norm => n,
            OfThresholdMode::Either => r || n,
            OfThresholdMode::Both => r && n,
        }
    }

    /// Initiative confirmation (SPEC §6.4 rule 4, §5.7 high-ambiguity dual confirmation).
    /// `side` is the trade direction; thresholds are mirrored for shorts (entry/breakout) and
    /// for longs (fail, whose thresholds are written for the short side).
    pub(crate) fn initiative<B: Bar>(&self, x: &B, side: i8, fam: Family) -> bool {
        let p = &self.p;
        let q = match p.qimb_source {
            QimbSource::Close => x.qimb_close(),
            QimbSource::Ema => x.qimb_ema(),
        };
        let (of_ok, q_ok) = match fam {
            Family::Entry | Family::Breakout => {
                let (raw, norm, qt) = match fam {
                    Family::Entry => (p.of_entry_min, p.of_entry_min_norm, p.qimb_entry_min),
                    _ => (
                        p.of_breakout_min,
                        p.of_breakout_min_norm,
                        p.qimb_breakout_min,
                    ),
                };
                let d = side as f64;
                (
                    self.of_pass(x, d * raw, d * norm, d, true),
                    q.is_finite() && d * q > qt,
                )
            }
            Family::Fail => {
                // Thresholds are written for the short side (OF <= of_fail_min, qimb <=
                // qimb_fail_min); the long side mirrors them (OF >= -of_fail_min, ...).
                let sd = side as f64;
                let (raw, norm, qt) = (
                    -sd * p.of_fail_min,
                    -sd * p.of_fail_min_norm,
                    -sd * p.qimb_fail_min,
                );
                (
                    self.of_pass(x, raw, norm, sd, false),
                    q.is_finite() && sd * q >= sd * qt,
                )
            }
        };
        if !p.use_qimb {
            return of_ok;
        }
        if x.ambiguous_frac() > p.ambiguous_trade_frac_max {
            of_ok && q_ok
        } else {
            of_ok || q_ok
        }
    }

    pub(crate) fn spread_dist<B: Bar>(&self, x: &B, mult: f64) -> f64 {
        spread_dist(x, self.p.tick_size, mult)
    }

    /// Build an entry order, sized on available margin `avail`.
    #[allow(clippy::too_many_arguments)]
    fn build_entry<B: Bar>(
        &self,
        x: &B,
        side: i8,
        setup: Setup,
        reason: Reason,
        boundary: f64,
        stop: f64,
        tp1: Option<f64>,
        tp2: Option<f64>,
        close_inside_level: Option<f64>,
        avail: f64,
    ) -> Result<(EntryOrder, bool), Reason> {
        let p = &self.p;
        let limit = if p.use_limit_for_entry {
            Some(match p.limit_price_mode {
                LimitPriceMode::Close => x.close(),
                LimitPriceMode::Boundary => boundary,
            })
        } else {
            None
        };
        let ref_price = limit.unwrap_or(x.close());
        let d = side as f64;
        let keep = |t: Option<f64>| t.filter(|v| v.is_finite() && d * (v - ref_price) > 0.0);
        let (tp1, tp2) = (keep(tp1), keep(tp2));
        let sized = size_position(
            avail,
            p.risk_pct,
            ref_price,
            stop,
            side,
            p.max_leverage,
            p.qty_step,
            self.min_qty_steps,
            p.min_notional,
        );
        if let Some(r) = sized.reject {
            return Err(match r {
                SizeReject::InvalidStop => Reason::InvalidStop,
                SizeReject::BelowMinimum => Reason::BelowMinimum,
                SizeReject::NoMargin => Reason::NoMargin,
            });
        }
        let split = if tp1.is_some() && tp2.is_some() {
            tp1_steps(sized.qty_steps, p.tp1_pct)
        } else {
            0
        };
        Ok((
            EntryOrder {
                side,
                setup,
                reason,
                qty_steps: sized.qty_steps,
                tp1_steps: split,
                limit_price: limit,
                ref_price,
                stop,
                tp1,
                tp2,
                close_inside_level,
                decision_ts_min: x.ts_min(),
            },
            sized.leverage_cap_hit,
        ))
    }

    /// Decide at the close of minute `x.ts_min`.
    pub fn on_minute(&mut self, x: &MinuteInput) -> Decision {
        let mut d = Decision::hold(x.ts_min);
        self.decide(x, &mut d);
        d
    }

    /// `on_minute` writing into a caller-owned decision (the backtester's hot loop reuses
    /// one, avoiding a large copy per minute), for any `Bar` (the backtester passes a view
    /// of its columns).
    pub fn decide<B: Bar>(&mut self, x: &B, d: &mut Decision) {
        let (has, mtm) = self.begin_minute(x, d);

        // ---- acceptance (independent of the position)
        let (tick, mult) = (self.p.tick_size, self.p.crossing_spread_mult);
        let dc = || spread_dist(x, tick, mult);
        let va_ok = va_ok(x);
        let mut above_reset_extreme = f64::NAN;
        let mut below_reset_extreme = f64::NAN;
        // A bar strictly inside the VA with no sequence or retest running can neither move
        // acceptance nor fire a setup (every trigger needs a print or close beyond a
        // boundary): skip straight to position management. Pure speed-up, same decisions.
        let quiet = self.is_quiet(x, has, va_ok);
        // Most other bars only continue the running sequences (`continue_sequences`).
        let moved = has
            && !quiet
            && !self.continue_sequences(x.close(), x.high(), x.low(), x.vah(), x.val(), va_ok);
        if moved {
            (above_reset_extreme, below_reset_extreme) =
                advance_acceptance(&mut self.s.above, &mut self.s.below, x, va_ok, dc);
        }

        // ---- setups at this bar
        if moved && va_ok {
            let s = self.setup_signals(x, dc, &self.s.above, &self.s.below);
            if s & sig::BREAKOUT_LONG != 0 {
                self.s.above.fired = true;
            }
            if s & sig::BREAKOUT_SHORT != 0 {
                self.s.below.fired = true;
            }
            d.signals |= s;
        }
        self.act(
            x,
            d,
            va_ok,
            has,
            quiet,
            above_reset_extreme,
            below_reset_extreme,
            mtm,
        );
    }

    /// The `sig::*` bits of the setups that fire at bar `x` (which has trades and a usable
    /// VA) given the acceptance sequences `a` (above) and `b` (below) after advancing them
    /// over `x`, with crossing distance `dc()` (asked for only when a break-in may fire).
    /// Pure: firing a breakout (marking its sequence `fired`) is up to the caller.
    #[inline]
    fn setup_signals<B: Bar>(&self, x: &B, dc: impl Fn() -> f64, a: &SeqTrack, b: &SeqTrack) -> u8 {
        let k = self.p.accept_outside_k;
        let mut s = 0;
        if x.low() < x.val()
            && x.close() > x.val()
            && x.crossed_within(x.val(), dc())
            && self.initiative(x, 1, Family::Entry)
        {
            s |= sig::BREAKIN_LONG;
        }
        if x.high() > x.vah()
            && x.close() < x.vah()
            && x.crossed_within(x.vah(), dc())
            && self.initiative(x, -1, Family::Entry)
        {
            s |= sig::BREAKIN_SHORT;
        }
        if x.high() > x.vah() && x.close() < x.vah() && self.initiative(x, -1, Family::Fail) {
            s |= sig::FAILBREAK_SHORT;
        }
        if x.low() < x.val() && x.close() > x.val() && self.initiative(x, 1, Family::Fail) {
            s |= sig::FAILBREAK_LONG;
        }
        if a.count >= k
            && !a.fired
            && x.close() > x.vah()
            && self.initiative(x, 1, Family::Breakout)
        {
            s |= sig::BREAKOUT_LONG;
        }
        if b.count >= k
            && !b.fired
            && x.close() < x.val()
            && self.initiative(x, -1, Family::Breakout)
        {
            s |= sig::BREAKOUT_SHORT;
        }
        s
    }

    /// The backtester's lazy idle scan (`at_backtest::run`) over minutes `from..to`
    /// (`row(j)` is minute `j`; `cols` holds the columns every minute's check reads,
    /// indexed the same way). Call it only while idle (`is_idle`) and for minutes of the
    /// same UTC day as the last decided one. There, a minute at which no setup fires
    /// changes nothing but the clocks, the marks and the acceptance sequences; with the
    /// kill switch on, neither does one at which setups fire (they are only reported, and
    /// a breakout still marks its sequence fired). For each such minute in order, this
    /// advances the sequences exactly as `decide` would and calls `seen(j, has_trades,
    /// va_ok, signals)` (`signals`: the decision's `sig::*` bits; `va_ok`: VA valid and
    /// VAH, VAL, POC finite). It stops at the first other minute (a setup fires and the
    /// kill switch is off: that minute must go through `decide`, the state is as before
    /// it) and returns its index, or `to`. The caller accounts for clocks and marks with
    /// `skip_idle_minutes`.
    #[inline]
    pub fn idle_scan<B: Bar>(
        &mut self,
        cols: IdleCols<'_>,
        from: usize,
        to: usize,
        row: impl Fn(usize) -> B,
        mut seen: impl FnMut(usize, bool, bool, u8),
    ) -> usize {
        debug_assert!(self.is_idle());
        let (close, high, low) = (&cols.close[..to], &cols.high[..to], &cols.low[..to]);
        let (vah, val) = (&cols.vah[..to], &cols.val[..to]);
        let (poc, valid) = (&cols.poc[..to], &cols.va_valid[..to]);
        for j in from..to {
            let (c, h, l, vh, vl) = (close[j], high[j], low[j], vah[j], val[j]);
            let has = c.is_finite() & h.is_finite() & l.is_finite();
            let va_ok = valid[j] & vh.is_finite() & vl.is_finite() & poc[j].is_finite();
            if !has {
                // Neither acceptance nor setups look at a minute without trades.
                seen(j, false, va_ok, 0);
                continue;
            }
            // Most minutes only continue the running sequences; the rest take the general
            // path.
            if self.continue_sequences(c, h, l, vh, vl, va_ok) {
                seen(j, true, va_ok, 0);
                continue;
            }
            match self.idle_minute(&row(j), va_ok) {
                Some(sig) => seen(j, true, va_ok, sig),
                None => return j,
            }
        }
        to
    }

    /// Fast path of acceptance and setups (most minutes while a sequence runs) for a minute
    /// with trades (close `c`, high `h`, low `l`, VAH `vh`, VAL `vl`, `va_ok` as in
    /// `decide`): if the bar continues every running sequence, starts none, and no setup's
    /// price condition holds, only counts and extremes move: apply that and return true
    /// (no setup fires, no sequence was reset). Otherwise change nothing and return false.
    /// The conditions are those of `advance_acceptance` and `setup_signals`, evaluated
    /// without short-circuits: one well-predicted branch instead of a dozen
    /// data-dependent ones. A false return leaves the minute to the general path, which
    /// reaches the same result for the minutes accepted here.
    #[inline]
    fn continue_sequences(
        &mut self,
        c: f64,
        h: f64,
        l: f64,
        vh: f64,
        vl: f64,
        va_ok: bool,
    ) -> bool {
        let k = self.p.accept_outside_k;
        let (sa, sb) = (&mut self.s.above, &mut self.s.below);
        let a_keeps = match sa.locked {
            Some(lv) => c > lv,
            None => !(va_ok & (c > vh)),
        };
        let b_keeps = match sb.locked {
            Some(lv) => c < lv,
            None => !(va_ok & (c < vl)),
        };
        // Counts after this bar (a running sequence continues).
        let ca = sa.count + u32::from(sa.locked.is_some());
        let cb = sb.count + u32::from(sb.locked.is_some());
        let setup = va_ok
            & (((l < vl) & (c > vl))
                | ((h > vh) & (c < vh))
                | ((c > vh) & (ca >= k) & !sa.fired)
                | ((c < vl) & (cb >= k) & !sb.fired));
        if !(a_keeps & b_keeps & !setup) {
            return false;
        }
        if sa.locked.is_some() {
            sa.count += 1;
            sa.extreme = fmax(sa.extreme, h);
        }
        if sb.locked.is_some() {
            sb.count += 1;
            sb.extreme = fmin(sb.extreme, l);
        }
        true
    }

    /// The general path of `idle_scan` for one minute with trades: advance the sequences
    /// over `x` as `decide` would and return the signal bits, or return None (state
    /// untouched) when a setup fires and the kill switch is off.
    fn idle_minute<B: Bar>(&mut self, x: &B, va_ok: bool) -> Option<u8> {
        debug_assert!(x.has_trades());
        debug_assert_eq!(va_ok, self::va_ok(x));
        let (tick, mult) = (self.p.tick_size, self.p.crossing_spread_mult);
        let dc = || spread_dist(x, tick, mult);
        let (mut a, mut b) = (self.s.above, self.s.below);
        advance_acceptance(&mut a, &mut b, x, va_ok, dc);
        let s = if va_ok {
            self.setup_signals(x, dc, &a, &b)
        } else {
            0
        };
        if s != 0 {
            if !self.s.kill {
                return None;
            }
            // As in `decide`.
            if s & sig::BREAKOUT_LONG != 0 {
                a.fired = true;
            }
            if s & sig::BREAKOUT_SHORT != 0 {
                b.fired = true;
            }
        }
        self.s.above = a;
        self.s.below = b;
        Some(s)
    }

    /// `decide` with the parameter-free and set-invariant part of the minute precomputed
    /// (`pre`, from `prepare_minutes` with parameters that share this kernel's
    /// `SignalKey`): the acceptance sequences are loaded instead of advanced and the
    /// breakin / failed-breakout signals are read instead of evaluated. Only the breakout
    /// signal (which needs `accept_outside_k` and whether this sequence already fired)
    /// and everything after the setups run here. Same decisions as `decide`, bit for bit
    /// (the backtester's tests compare both paths).
    #[inline]
    pub fn decide_prepared<B: Bar>(&mut self, x: &B, pre: &PreMinute, d: &mut Decision) {
        let (has, mtm) = self.begin_minute(x, d);
        let va_ok = pre.flags & PreMinute::VA_OK != 0;
        let quiet = self.is_quiet(x, has, va_ok);
        // A sequence that was locked before and is not now was reset by this bar's close:
        // its poke extreme (incl. this bar) is the failed-breakout stop.
        let above_reset_extreme = if self.s.above.locked.is_some() && pre.above_locked.is_nan() {
            fmax(self.s.above.extreme, x.high())
        } else {
            f64::NAN
        };
        let below_reset_extreme = if self.s.below.locked.is_some() && pre.below_locked.is_nan() {
            fmin(self.s.below.extreme, x.low())
        } else {
            f64::NAN
        };
        self.s.above = pre.above(self.s.above.fired);
        self.s.below = pre.below(self.s.below.fired);
        let mut s = pre.bits & PreMinute::STATIC_SIGNALS;
        let k = self.p.accept_outside_k;
        if pre.bits & sig::BREAKOUT_LONG != 0 && self.s.above.count >= k && !self.s.above.fired {
            s |= sig::BREAKOUT_LONG;
            self.s.above.fired = true;
        }
        if pre.bits & sig::BREAKOUT_SHORT != 0 && self.s.below.count >= k && !self.s.below.fired {
            s |= sig::BREAKOUT_SHORT;
            self.s.below.fired = true;
        }
        d.signals = s;
        self.act(
            x,
            d,
            va_ok,
            has,
            quiet,
            above_reset_extreme,
            below_reset_extreme,
            mtm,
        );
    }

    /// Flat, no working entry, no pending retest: a minute without a setup signal changes
    /// nothing but the clocks and the marks (what the backtester's idle skip relies on).
    #[inline]
    pub fn is_idle(&self) -> bool {
        self.s.position.is_none() && self.s.working.is_none() && self.s.retest.is_none()
    }

    /// Advance over `count` minutes, the last starting at `last_ts_min`, that are known to
    /// be no-ops while idle (no setup signal, no UTC day roll, see at-backtest
    /// `Engine::advance`): the books only move their clocks, the last finite mark
    /// (`last_price`, if any in those minutes) and the acceptance sequences (precomputed).
    pub fn skip_idle_minutes(
        &mut self,
        count: u64,
        last_ts_min: i64,
        last_price: Option<f64>,
        above: SeqTrack,
        below: SeqTrack,
    ) {
        debug_assert!(self.is_idle());
        self.s.minutes_seen += count;
        self.s.last_ts_min = Some(last_ts_min);
        if let Some(px) = last_price {
            self.s.last_price = px;
        }
        self.s.above = above;
        self.s.below = below;
    }

    #[inline]
    fn is_quiet<B: Bar>(&self, x: &B, has: bool, va_ok: bool) -> bool {
        has && va_ok
            && x.low() > x.val()
            && x.high() < x.vah()
            && self.s.above.locked.is_none()
            && self.s.below.locked.is_none()
            && self.s.retest.is_none()
    }

    /// Start of every minute: reset the decision, marks, the UTC day and the kill switch.
    /// Returns (minute has trades, mark-to-market equity).
    #[inline]
    fn begin_minute<B: Bar>(&mut self, x: &B, d: &mut Decision) -> (bool, f64) {
        // Field by field: assigning a whole new `Decision` compiles to a memcpy per minute.
        d.ts_min = x.ts_min();
        d.action = Action::Hold;
        d.reason = Reason::NoSignal;
        d.signals = 0;
        d.events = 0;
        d.exit = None;
        d.entry = None;
        d.cancel_entry = false;
        d.equity = 0.0;
        d.heat = 0.0;
        self.s.minutes_seen += 1;
        self.s.last_ts_min = Some(x.ts_min());
        let has = x.has_trades();

        // ---- marks and the UTC day
        let mark = if x.mid_close().is_finite() {
            x.mid_close()
        } else if has {
            x.close()
        } else {
            self.s.last_price
        };
        if mark.is_finite() {
            self.s.last_price = mark;
        }
        let mtm = self.equity_at(self.s.last_price);
        if x.ts_min() >= self.s.day_end_ms || x.ts_min() < self.s.day_end_ms.saturating_sub(DAY) {
            let day = x.ts_min().div_euclid(DAY);
            self.s.day_end_ms = (day + 1) * DAY;
            if self.s.day != i64::MIN {
                d.events |= event::DAY_ROLLED;
            }
            self.s.day = day;
            self.s.day_start_equity = self.s.last_mtm;
            self.s.kill = false;
        }
        self.s.last_mtm = mtm;
        d.equity = mtm;
        if !self.s.kill
            && self.p.max_daily_loss_pct > 0.0
            && mtm - self.s.day_start_equity <= -self.p.max_daily_loss_pct * self.s.day_start_equity
        {
            self.s.kill = true;
            d.events |= event::KILL_SWITCH_ON;
        }
        (has, mtm)
    }

    /// Everything after the setups: kill switch, entry candidate, position management.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn act<B: Bar>(
        &mut self,
        x: &B,
        d: &mut Decision,
        va_ok: bool,
        has: bool,
        quiet: bool,
        above_reset_extreme: f64,
        below_reset_extreme: f64,
        mtm: f64,
    ) {
        // ---- kill switch: flatten and stand aside
        if self.s.kill {
            d.reason = Reason::KillSwitchActive;
            self.s.retest = None;
            if self.s.working.take().is_some() {
                d.cancel_entry = true;
                d.events |= event::ENTRY_CANCELLED;
            }
            if let Some(pos) = self.s.position.as_mut() {
                if pos.exit_pending.is_none() {
                    pos.exit_pending = Some(Reason::KillSwitch);
                    d.exit = Some(ExitOrder {
                        reason: Reason::KillSwitch,
                        qty_steps: pos.qty_steps,
                    });
                    d.action = Action::Exit;
                    d.reason = Reason::KillSwitch;
                }
            }
            d.heat = self.heat(mtm);
            return;
        }

        // ---- candidate entry by priority: break-in > failed breakout > breakout (§6.7)
        let retest_live =
            self.s.position.is_none() && self.s.working.is_none() && self.s.retest.is_some();
        let cand = if quiet {
            None
        } else if d.signals == 0 && !retest_live {
            // No setup fired and no retest to resolve: `candidate` could only set the
            // hold reason (the same result, without its bookkeeping).
            if !has {
                d.reason = Reason::NoTrades;
            } else if !va_ok {
                d.reason = Reason::VaInvalid;
            }
            None
        } else {
            self.candidate(
                x,
                d,
                va_ok,
                has,
                above_reset_extreme,
                below_reset_extreme,
                mtm,
            )
        };

        // ---- an open position
        if let Some(pos) = self.s.position.as_ref().map(PosView::of) {
            if pos.exit_pending.is_some() {
                d.reason = Reason::ExitPending;
                d.heat = self.heat(mtm);
                return;
            }
            let side = pos.side as f64;
            let mut exit_reason = None;
            if let (Some(level), true) = (pos.close_inside_level, has) {
                if side * (x.close() - level) <= 0.0 {
                    exit_reason = Some(Reason::BreakoutCloseInside);
                }
            }
            if exit_reason.is_none()
                && x.ts_min() + MINUTE - pos.timer_start_ms
                    >= self.p.max_hold_minutes as i64 * MINUTE
            {
                let px = if has { x.close() } else { self.s.last_price };
                let qty = pos.qty_steps as f64 * self.p.qty_step;
                let est_exit = px * qty * self.p.taker_fee_bps / 1e4
                    + self.p.slippage_ticks_exit * self.p.tick_size * qty;
                let net = side * (px - pos.entry_price) * qty + pos.realized - pos.fees - est_exit;
                if self.p.extend_if_profitable && px.is_finite() && net > 0.0 {
                    // Fee-breakeven price of the remaining quantity (the trail).
                    let fb = if side > 0.0 {
                        (pos.entry_price * qty + pos.fees - pos.realized
                            + self.p.slippage_ticks_exit * self.p.tick_size * qty)
                            / (qty * (1.0 - self.p.taker_fee_bps / 1e4))
                    } else {
                        (pos.entry_price * qty - pos.fees + pos.realized
                            - self.p.slippage_ticks_exit * self.p.tick_size * qty)
                            / (qty * (1.0 + self.p.taker_fee_bps / 1e4))
                    };
                    let pm = self.s.position.as_mut().expect("position");
                    if !pm.extended {
                        d.events |= event::TIME_EXTENDED;
                    }
                    pm.extended = true;
                    if fb.is_finite() {
                        pm.stop = if side > 0.0 {
                            fmax(pm.stop, fb)
                        } else {
                            fmin(pm.stop, fb)
                        };
                    }
                    d.reason = Reason::TimeExtended;
                } else {
                    exit_reason = Some(if pos.extended {
                        Reason::TrailExit
                    } else {
                        Reason::TimeStop
                    });
                }
            }
            if let Some(r) = exit_reason {
                let pm = self.s.position.as_mut().expect("position");
                pm.exit_pending = Some(r);
                d.exit = Some(ExitOrder {
                    reason: r,
                    qty_steps: pos.qty_steps,
                });
                d.action = Action::Exit;
                d.reason = r;
            } else if let Some((o, cap)) =
                cand.filter(|(o, _)| o.side != pos.side && self.p.enable_flip_on_signal)
            {
                let pm = self.s.position.as_mut().expect("position");
                pm.exit_pending = Some(Reason::Flip);
                d.exit = Some(ExitOrder {
                    reason: Reason::Flip,
                    qty_steps: pos.qty_steps,
                });
                self.place(d, o, cap);
            } else if d.reason != Reason::TimeExtended {
                d.reason = Reason::InPosition;
            }
            d.heat = self.heat(mtm);
            return;
        }

        // ---- flat with a working entry
        if self.s.working.is_some() {
            d.reason = Reason::OrderWorking;
            return;
        }

        if let Some((o, cap)) = cand {
            self.place(d, o, cap);
        }
        d.heat = self.heat(mtm);
    }

    fn place(&mut self, d: &mut Decision, o: EntryOrder, cap: bool) {
        self.s.working = Some(o);
        self.s.retest = None;
        d.entry = Some(o);
        d.action = if o.side > 0 {
            Action::EnterLong
        } else {
            Action::EnterShort
        };
        d.reason = o.reason;
        if cap {
            d.events |= event::LEVERAGE_CAP_HIT;
        }
    }

    /// Pick the entry this bar supports (if any), handling PENDING_RETEST; sets hold
    /// reasons on `d`. Returns the sized order and whether the leverage cap was hit.
    #[allow(clippy::too_many_arguments)]
    fn candidate<B: Bar>(
        &mut self,
        x: &B,
        d: &mut Decision,
        va_ok: bool,
        has: bool,
        above_reset_extreme: f64,
        below_reset_extreme: f64,
        mtm: f64,
    ) -> Option<(EntryOrder, bool)> {
        if !has {
            d.reason = Reason::NoTrades;
            return None;
        }
        let flat = self.s.position.is_none();
        let buf = self.p.stop_buffer_ticks as f64 * self.p.tick_size;
        let in_cooldown = match self.s.last_exit_min {
            Some(e) => x.ts_min() < e + self.p.cooldown_minutes as i64 * MINUTE,
            None => false,
        };

        // Retest bookkeeping first (it can resolve even when the VA is invalid: the level
        // is locked). A failed retest is a failed breakout (→ setup C).
        let mut retest_entry: Option<Plan> = None;
        if flat && self.s.working.is_none() {
            if let Some(mut r) = self.s.retest {
                let side = r.side as f64;
                if side * (x.close() - r.level) <= 0.0 {
                    d.events |= event::RETEST_FAILED;
                    self.s.retest = None;
                    d.reason = Reason::RetestFailed;
                    let fside = -r.side;
                    if va_ok && self.initiative(x, fside, Family::Fail) {
                        let poke = if r.side > 0 {
                            fmax(r.poke_extreme, x.high())
                        } else {
                            fmin(r.poke_extreme, x.low())
                        };
                        let (tp1, tp2) = (
                            Some(x.poc()),
                            Some(if fside < 0 { x.val() } else { x.vah() }),
                        );
                        let reason = if fside < 0 {
                            Reason::RetestFailedShort
                        } else {
                            Reason::RetestFailedLong
                        };
                        retest_entry = Some((
                            fside,
                            Setup::FailedBreakout,
                            reason,
                            r.level,
                            poke + side * buf,
                            tp1,
                            tp2,
                            None,
                        ));
                        d.signals |= if fside < 0 {
                            sig::FAILBREAK_SHORT
                        } else {
                            sig::FAILBREAK_LONG
                        };
                    }
                } else {
                    r.pullback_extreme = if r.side > 0 {
                        fmin(r.pullback_extreme, x.low())
                    } else {
                        fmax(r.pullback_extreme, x.high())
                    };
                    r.poke_extreme = if r.side > 0 {
                        fmax(r.poke_extreme, x.high())
                    } else {
                        fmin(r.poke_extreme, x.low())
                    };
                    self.s.retest = Some(r);
                    let near = if r.side > 0 { x.low() } else { x.high() };
                    if x.ts_min() > r.armed_ts_min
                        && side * (near - r.level)
                            <= self.spread_dist(x, self.p.pullback_spread_mult)
                    {
                        let reason = if r.side > 0 {
                            Reason::RetestLong
                        } else {
                            Reason::RetestShort
                        };
                        retest_entry = Some((
                            r.side,
                            Setup::Breakout,
                            reason,
                            r.level,
                            r.pullback_extreme - side * buf,
                            None,
                            None,
                            Some(r.level),
                        ));
                    } else {
                        d.reason = Reason::RetestWaiting;
                    }
                }
            }
        }

        if !va_ok && retest_entry.is_none() {
            if d.reason == Reason::NoSignal {
                d.reason = Reason::VaInvalid;
            }
            return None;
        }

        // Priority: break-in, then failed breakout (incl. failed retest), then breakout.
        let s = d.signals;
        let mut plan: Option<Plan> = None;
        let both = |l: u8, sh: u8| s & l != 0 && s & sh != 0;
        if s & (sig::BREAKIN_LONG | sig::BREAKIN_SHORT) != 0 {
            if both(sig::BREAKIN_LONG, sig::BREAKIN_SHORT) {
                d.reason = Reason::Conflict;
                return None;
            }
            plan = Some(if s & sig::BREAKIN_LONG != 0 {
                (
                    1,
                    Setup::BreakIn,
                    Reason::BreakinLong,
                    x.val(),
                    x.low() - buf,
                    Some(x.poc()),
                    Some(x.vah()),
                    None,
                )
            } else {
                (
                    -1,
                    Setup::BreakIn,
                    Reason::BreakinShort,
                    x.vah(),
                    x.high() + buf,
                    Some(x.poc()),
                    Some(x.val()),
                    None,
                )
            });
        } else if let Some(r) = retest_entry.filter(|r| r.1 == Setup::FailedBreakout) {
            plan = Some(r);
        } else if s & (sig::FAILBREAK_LONG | sig::FAILBREAK_SHORT) != 0 {
            if both(sig::FAILBREAK_LONG, sig::FAILBREAK_SHORT) {
                d.reason = Reason::Conflict;
                return None;
            }
            plan = Some(if s & sig::FAILBREAK_SHORT != 0 {
                let poke = fmax(x.high(), above_reset_extreme);
                (
                    -1,
                    Setup::FailedBreakout,
                    Reason::FailbreakShort,
                    x.vah(),
                    poke + buf,
                    Some(x.poc()),
                    Some(x.val()),
                    None,
                )
            } else {
                let poke = fmin(x.low(), below_reset_extreme);
                (
                    1,
                    Setup::FailedBreakout,
                    Reason::FailbreakLong,
                    x.val(),
                    poke - buf,
                    Some(x.poc()),
                    Some(x.vah()),
                    None,
                )
            });
        } else if let Some(r) = retest_entry {
            plan = Some(r);
        } else if s & (sig::BREAKOUT_LONG | sig::BREAKOUT_SHORT) != 0 {
            if both(sig::BREAKOUT_LONG, sig::BREAKOUT_SHORT) {
                d.reason = Reason::Conflict;
                return None;
            }
            let (side, t) = if s & sig::BREAKOUT_LONG != 0 {
                (1i8, self.s.above)
            } else {
                (-1i8, self.s.below)
            };
            let level = t.locked.unwrap_or(if side > 0 { x.vah() } else { x.val() });
            if self.p.enable_retest_mode {
                // Arm a retest (only from FLAT with nothing working).
                if flat && self.s.working.is_none() {
                    self.s.retest = Some(Retest {
                        side,
                        level,
                        poke_extreme: t.extreme,
                        pullback_extreme: if side > 0 { x.low() } else { x.high() },
                        armed_ts_min: x.ts_min(),
                    });
                    d.events |= event::RETEST_ARMED;
                    d.reason = Reason::RetestArmed;
                }
                return None;
            }
            let reason = if side > 0 {
                Reason::BreakoutLong
            } else {
                Reason::BreakoutShort
            };
            plan = Some((
                side,
                Setup::Breakout,
                reason,
                level,
                level - side as f64 * buf,
                None,
                None,
                Some(level),
            ));
        }
        let (side, setup, reason, boundary, stop, tp1, tp2, cil) = plan?;
        if let Some(pos) = &self.s.position {
            if pos.side == side || !self.p.enable_flip_on_signal {
                return None;
            }
        } else if in_cooldown {
            d.reason = Reason::Cooldown;
            return None;
        }
        if self.s.working.is_some() {
            return None;
        }
        match self.build_entry(x, side, setup, reason, boundary, stop, tp1, tp2, cil, mtm) {
            Ok(o) => Some(o),
            Err(r) => {
                d.reason = r;
                None
            }
        }
    }
}
