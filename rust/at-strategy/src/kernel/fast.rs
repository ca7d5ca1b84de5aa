//! The fast paths: idle scans and precomputed minutes (bit-identical to `decide`).

use super::*;

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

impl Kernel {
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
    pub(crate) fn continue_sequences(
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
    pub(crate) fn idle_minute<B: Bar>(&mut self, x: &B, va_ok: bool) -> Option<u8> {
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
    pub(crate) fn is_quiet<B: Bar>(&self, x: &B, has: bool, va_ok: bool) -> bool {
        has && va_ok
            && x.low() > x.val()
            && x.high() < x.vah()
            && self.s.above.locked.is_none()
            && self.s.below.locked.is_none()
            && self.s.retest.is_none()
    }
}
