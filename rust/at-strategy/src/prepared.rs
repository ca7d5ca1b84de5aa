//! The part of every minute's decision that does not depend on the position, computed
//! once per feature table for the batch runner (`Kernel::decide_prepared`).
//!
//! Pitfall: the acceptance sequences (SPEC §6.2) look stateful, but their state (count,
//! locked boundary, poke extreme) depends only on the bars and the crossing distance
//! (`crossing_spread_mult`, `tick_size`), not on trades, cooldowns or the kill switch; and
//! the break-in / failed-breakout signals depend only on the bar and the initiative
//! thresholds. A grid of 1,000 sets that varies sizing, `accept_outside_k`, cooldown or
//! retest mode shares all of it, so the batch runner computes it once per distinct
//! `SignalKey` instead of once per set and minute. What stays per set is the breakout
//! signal (`count >= accept_outside_k`, once per sequence) and everything after it.

use crate::input::MinuteInput;
use crate::kernel::{advance_acceptance, va_ok, Family, Kernel, SeqTrack};
use crate::params::Params;
use crate::reason::sig;
use at_types::AtError;

/// One minute's precomputed acceptance state (after this minute) and signal bits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreMinute {
    /// Locked VAH of the sequence above (NaN = no sequence) and its poke extreme.
    pub above_locked: f64,
    pub above_extreme: f64,
    pub below_locked: f64,
    pub below_extreme: f64,
    pub above_count: u32,
    pub below_count: u32,
    /// `sig::BREAKIN_*` / `sig::FAILBREAK_*`: the setup fires at this bar. `sig::BREAKOUT_*`:
    /// the bar closes beyond the VA with breakout initiative (fires if the sequence count
    /// reaches `accept_outside_k` and the sequence has not fired yet).
    pub bits: u8,
    /// `VA_OK`, `START_ABOVE`, `START_BELOW`, `AFTER_GAP`.
    pub flags: u8,
}

impl PreMinute {
    pub const VA_OK: u8 = 1;
    /// A new sequence above (below) started at this bar: its `fired` flag starts false.
    pub const START_ABOVE: u8 = 2;
    pub const START_BELOW: u8 = 4;
    /// The first minute after a data gap (its `ts_min` does not follow the previous one):
    /// the sequences were reset before it (`Kernel::forget_market`).
    pub const AFTER_GAP: u8 = 8;
    pub const STATIC_SIGNALS: u8 =
        sig::BREAKIN_LONG | sig::BREAKIN_SHORT | sig::FAILBREAK_LONG | sig::FAILBREAK_SHORT;

    /// The sequence above as the kernel holds it, given the kernel's `fired` flag before
    /// this minute (kept while the same sequence continues).
    #[inline]
    pub fn above(&self, fired: bool) -> SeqTrack {
        let live = !self.above_locked.is_nan();
        SeqTrack {
            count: self.above_count,
            locked: if live { Some(self.above_locked) } else { None },
            extreme: self.above_extreme,
            fired: fired && live && self.flags & Self::START_ABOVE == 0,
        }
    }

    #[inline]
    pub fn below(&self, fired: bool) -> SeqTrack {
        let live = !self.below_locked.is_nan();
        SeqTrack {
            count: self.below_count,
            locked: if live { Some(self.below_locked) } else { None },
            extreme: self.below_extreme,
            fired: fired && live && self.flags & Self::START_BELOW == 0,
        }
    }
}

/// The parameters `prepare_minutes` reads, as exact bit patterns: two sets with equal keys
/// share one precomputation.
pub type SignalKey = [u64; 15];

pub fn signal_key(p: &Params) -> SignalKey {
    [
        p.tick_size.to_bits(),
        p.crossing_spread_mult.to_bits(),
        p.ambiguous_trade_frac_max.to_bits(),
        p.use_qimb as u64,
        p.qimb_source as u64,
        p.qimb_entry_min.to_bits(),
        p.qimb_breakout_min.to_bits(),
        p.qimb_fail_min.to_bits(),
        p.of_threshold_mode as u64,
        p.of_entry_min.to_bits(),
        p.of_entry_min_norm.to_bits(),
        p.of_breakout_min.to_bits(),
        p.of_breakout_min_norm.to_bits(),
        p.of_fail_min.to_bits(),
        p.of_fail_min_norm.to_bits(),
    ]
}

/// Precompute every minute of `rows` for parameters `p` (only the `signal_key` fields
/// matter). Runs exactly the code `Kernel::decide` runs for these parts.
pub fn prepare_minutes<I>(rows: I, p: &Params) -> Result<Vec<PreMinute>, AtError>
where
    I: IntoIterator<Item = MinuteInput>,
{
    let k = Kernel::new(*p)?;
    let mut a = SeqTrack::NONE;
    let mut b = SeqTrack::NONE;
    let rows = rows.into_iter();
    let mut out = Vec::with_capacity(rows.size_hint().0);
    let mut prev_ts: Option<i64> = None;
    for x in rows {
        let x = &x;
        let after_gap = prev_ts.is_some_and(|t| x.ts_min - t > crate::kernel::MINUTE);
        prev_ts = Some(x.ts_min);
        if after_gap {
            a = SeqTrack::NONE;
            b = SeqTrack::NONE;
        }
        let has = x.has_trades();
        let ok = va_ok(x);
        let dc = k.spread_dist(x, p.crossing_spread_mult);
        let (a0, b0) = (a.locked.is_some(), b.locked.is_some());
        if has {
            advance_acceptance(&mut a, &mut b, x, ok, || dc);
        }
        let mut bits = 0u8;
        if has && ok {
            if x.low < x.val
                && x.close > x.val
                && x.crossed_val(dc)
                && k.initiative(x, 1, Family::Entry)
            {
                bits |= sig::BREAKIN_LONG;
            }
            if x.high > x.vah
                && x.close < x.vah
                && x.crossed_vah(dc)
                && k.initiative(x, -1, Family::Entry)
            {
                bits |= sig::BREAKIN_SHORT;
            }
            if x.high > x.vah && x.close < x.vah && k.initiative(x, -1, Family::Fail) {
                bits |= sig::FAILBREAK_SHORT;
            }
            if x.low < x.val && x.close > x.val && k.initiative(x, 1, Family::Fail) {
                bits |= sig::FAILBREAK_LONG;
            }
            if x.close > x.vah && k.initiative(x, 1, Family::Breakout) {
                bits |= sig::BREAKOUT_LONG;
            }
            if x.close < x.val && k.initiative(x, -1, Family::Breakout) {
                bits |= sig::BREAKOUT_SHORT;
            }
        }
        let mut flags = if ok { PreMinute::VA_OK } else { 0 };
        if after_gap {
            flags |= PreMinute::AFTER_GAP;
        }
        if !a0 && a.locked.is_some() {
            flags |= PreMinute::START_ABOVE;
        }
        if !b0 && b.locked.is_some() {
            flags |= PreMinute::START_BELOW;
        }
        out.push(PreMinute {
            above_locked: a.locked.unwrap_or(f64::NAN),
            above_extreme: a.extreme,
            below_locked: b.locked.unwrap_or(f64::NAN),
            below_extreme: b.extreme,
            above_count: a.count,
            below_count: b.count,
            bits,
            flags,
        });
    }
    Ok(out)
}
