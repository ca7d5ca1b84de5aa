//! Idle stretches: rows where nothing is open, working or pending and no setup fires
//! change nothing but clocks, marks and the acceptance sequences; the prepared and scan
//! paths apply them in bulk (bit-identical to stepping them, as the tests check).

use at_strategy::{Bar, IdleCols, Reason};

use super::{day_end_row, Engine, DAY, MINUTE};
use crate::prepared::{engine_mark, kernel_mark, last_mark};
use crate::table::{HotRow, Row};

/// The first row in `m + 1..end` that does not follow its predecessor by one minute (the
/// first after a data gap), or `end`. Rows strictly increase on minute boundaries, so the
/// rows up to `j` are contiguous exactly when `ts[j] - ts[m] == (j - m)` minutes: a
/// monotone predicate, found by binary search (one comparison when there is no gap).
#[inline]
fn first_gap_row(ts: &[i64], m: usize, end: usize) -> usize {
    let ok = |k: usize| ts[m + k] - ts[m] == k as i64 * MINUTE;
    if end <= m + 1 || ok(end - 1 - m) {
        return end;
    }
    // ok(lo) and !ok(hi): the last contiguous row is m + lo
    let (mut lo, mut hi) = (0usize, end - 1 - m);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    m + lo + 1
}

impl Engine<'_, '_> {
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
    pub(super) fn idle(&self) -> bool {
        self.c.exit.is_none() && self.c.entry.is_none() && self.c.k.is_idle()
    }

    /// The scan path's idle skip: row `m` runs through `step`; if everything is still idle
    /// after it, the following rows of the same UTC day are scanned with
    /// `Kernel::idle_scan` (acceptance sequences only, most minutes reading a handful of
    /// columns) up to the first where a setup fires that the kernel could act on, and the
    /// rows before it are applied at once as in `skip_idle`. Returns the next row to
    /// process.
    pub(super) fn scan_idle(&mut self, m: usize) -> usize {
        self.step(m);
        if !self.idle() {
            return m + 1;
        }
        let t = self.t;
        let ts = t.ts_min;
        let day_end = (ts[m].div_euclid(DAY) + 1) * DAY;
        // ... and not past a data gap (its first row goes through `step`)
        let end = first_gap_row(ts, m, day_end_row(ts, m, day_end));
        let a = m + 1;
        let keep = self.c.keep;
        let base = self.c.decisions.reason.len();
        let reasons = &mut self.c.decisions.reason;
        // The hold reason `Kernel::decide` gives an idle minute without a setup to act
        // on, indexed by has trades + (has trades and a usable VA).
        let codes = if self.c.k.state().kill {
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
        let j = self.c.k.idle_scan(
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
        debug_assert!(!keep || self.c.decisions.reason.len() == base + (j - a));
        if j > a {
            let last = j - 1;
            let s = self.c.k.state();
            let (above, below) = (s.above, s.below);
            let kpx = last_mark(t, a, last, kernel_mark);
            self.c
                .k
                .skip_idle_minutes((j - a) as u64, ts[last], kpx, above, below);
            if let Some(px) = last_mark(t, a, last, engine_mark) {
                self.c.last_mark = px;
            }
            if ts[last] >= self.c.next_funding {
                self.funding(ts[last]);
            }
            self.c.acc.repeat_minutes(j - a);
            if keep {
                let eq = self.c.d.equity;
                self.c.equity.resize(self.c.equity.len() + (j - a), eq);
                let base = self.c.decisions.len();
                self.c.decisions.extend_idle(&ts[a..j]);
                for &(r, sig) in &fired {
                    self.c.decisions.signals[base + r - a] = sig;
                }
            }
        }
        self.fired = fired;
        j
    }

    /// Rows `m..e`: idle, no setup fires. The first row of every UTC day among them runs
    /// through `step` (day roll, kill switch, daily returns, funding clock); the rest of
    /// that day repeats it exactly and is applied at once.
    pub(super) fn skip_idle(&mut self, m: usize, e: usize) {
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
                self.c
                    .k
                    .skip_idle_minutes((end - j - 1) as u64, ts[last], kpx, above, below);
                if let Some(px) = last_mark(t, j + 1, last, engine_mark) {
                    self.c.last_mark = px;
                }
                if ts[last] >= self.c.next_funding {
                    self.funding(ts[last]);
                }
                self.c.acc.repeat_minutes(end - j - 1);
                if self.c.keep {
                    self.keep_idle_rows(j + 1, end);
                }
            }
            j = end;
        }
    }

    /// Full output for skipped idle rows: the decision each would have produced (flat, no
    /// signal, no day roll, equity = cash, heat 0).
    pub(super) fn keep_idle_rows(&mut self, a: usize, b: usize) {
        let kill = self.c.k.state().kill;
        let eq = self.c.d.equity;
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
            self.c.equity.push(eq);
            self.c.decisions.reason.push(reason.code());
        }
        self.c.decisions.extend_idle(&self.t.ts_min[a..b]);
    }
}
