//! Setups (SPEC §6.4–§6.7): initiative, entry plans and sizing, the candidate of a bar.

use super::*;

/// Which initiative thresholds a check uses.
#[derive(Clone, Copy)]
pub(crate) enum Family {
    Entry,
    Breakout,
    Fail,
}

impl Kernel {
    #[inline]
    pub(crate) fn of_pass<B: Bar>(
        &self,
        x: &B,
        raw: f64,
        norm: f64,
        dir: f64,
        strict: bool,
    ) -> bool {
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
    pub(crate) fn build_entry<B: Bar>(
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

    /// The `sig::*` bits of the setups that fire at bar `x` (which has trades and a usable
    /// VA) given the acceptance sequences `a` (above) and `b` (below) after advancing them
    /// over `x`, with crossing distance `dc()` (asked for only when a break-in may fire).
    /// Pure: firing a breakout (marking its sequence `fired`) is up to the caller.
    #[inline]
    pub(crate) fn setup_signals<B: Bar>(
        &self,
        x: &B,
        dc: impl Fn() -> f64,
        a: &SeqTrack,
        b: &SeqTrack,
    ) -> u8 {
        let k = self.p.accept_outside_k;
        let mut s = 0;
        if x.low() < x.val()
            && x.close() > x.val()
            && x.crossed_val(dc())
            && self.initiative(x, 1, Family::Entry)
        {
            s |= sig::BREAKIN_LONG;
        }
        if x.high() > x.vah()
            && x.close() < x.vah()
            && x.crossed_vah(dc())
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

    /// Pick the entry this bar supports (if any), handling PENDING_RETEST; sets hold
    /// reasons on `d`. Returns the sized order and whether the leverage cap was hit.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn candidate<B: Bar>(
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
