//! Acceptance sequences (SPEC §6.2) and the boundary-crossing distance (§6.3): pure
//! functions of the bars, shared by the kernel and the batch precomputation.

use super::SeqTrack;
use crate::input::Bar;

/// NaN-ignoring max/min (a missing extreme must not poison a stop level).
#[inline]
pub(crate) fn fmax(a: f64, b: f64) -> f64 {
    a.max(b)
}
#[inline]
pub(crate) fn fmin(a: f64, b: f64) -> f64 {
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
            if va_ok && x.close() > x.vah() && x.crossed_vah(dc()) {
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
            if va_ok && x.close() < x.val() && x.crossed_val(dc()) {
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
