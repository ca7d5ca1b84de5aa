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

use crate::input::{Bar, MinuteInput};
use crate::params::{LimitPriceMode, OfThresholdMode, Params, QimbSource};
use crate::prepared::PreMinute;
use crate::reason::{event, sig, Reason};
use crate::sizing::{size_position, tp1_steps, SizeReject};
use at_types::AtError;

pub(crate) const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

mod acceptance;
mod book;
mod fast;
mod signals;
mod types;

pub(crate) use acceptance::{advance_acceptance, fmax, fmin, spread_dist, va_ok};
pub use fast::IdleCols;
pub(crate) use signals::Family;
use types::PosView;
pub use types::{
    Action, Decision, EntryOrder, ExitKind, ExitOrder, KernelState, Mode, Permission, Position,
    Retest, SeqTrack, Setup,
};

/// The kernel: parameters + state.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Kernel {
    p: Params,
    s: KernelState,
    min_qty_steps: i64,
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
            permission: Permission::Allowed,
        };
        Ok(Self {
            min_qty_steps: p.min_qty_steps(),
            p,
            s,
        })
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

        // ---- not permitted to open (observation, deactivated, halted): no working entry
        let permitted = self.s.permission == Permission::Allowed;
        if !permitted && self.s.working.take().is_some() {
            d.cancel_entry = true;
            d.events |= event::ENTRY_CANCELLED;
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

        // the setups were evaluated (and are logged); the entry is not placed
        let cand = match cand {
            Some(_) if !permitted => {
                d.reason = Reason::EntryNotPermitted;
                None
            }
            c => c,
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
}
