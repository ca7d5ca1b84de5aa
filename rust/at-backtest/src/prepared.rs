//! Per-table work shared by every backtest over one feature table.
//!
//! The straightforward path (`RunPath::Reference`, `Engine::new`) recomputes, for every
//! parameter set and minute, things that depend on the table alone or on a handful of
//! parameters most grids never vary: the acceptance sequences
//! and breakin / failed-breakout signals (`at_strategy::prepare_minutes`, keyed by
//! `signal_key`), and the ambiguity statistics of the metrics. `Prepared` computes each
//! once; `Engine::with_prepared` reads them. Results are bit-identical to the
//! straightforward path (tests in `tests.rs` compare metrics, trades and equity).

use at_strategy::{
    prepare_minutes, sig, signal_key, MinuteInput, Params, PreMinute, SeqTrack, SignalKey,
};
use at_types::AtError;

use crate::table::MinuteTable;

/// Table-only ambiguity statistics (SPEC §12.6): over minutes with trades, in row order.
#[derive(Debug, Clone, Default)]
pub struct AmbiguityStats {
    pub sum: f64,
    pub n: f64,
    pub max: f64,
}

#[inline]
fn has_trades(t: &MinuteTable, m: usize) -> bool {
    t.close[m].is_finite() && t.high[m].is_finite() && t.low[m].is_finite()
}

/// Minutes counted by the ambiguity statistics: with trades and a finite fraction.
#[inline]
fn counted(t: &MinuteTable, m: usize) -> bool {
    has_trades(t, m) && t.ambiguous_frac[m].is_finite()
}

impl AmbiguityStats {
    fn new(t: &MinuteTable) -> Self {
        let mut s = AmbiguityStats::default();
        for m in 0..t.len() {
            // Same order and operations as `MetricsAcc::minute`: identical sums.
            if counted(t, m) {
                let v = t.ambiguous_frac[m];
                s.sum += v;
                s.n += 1.0;
                if v > s.max {
                    s.max = v;
                }
            }
        }
        s
    }
}

impl AmbiguityStats {
    /// `t.validate()`, then the statistics and the number of counted minutes strictly
    /// above `threshold` (what `count_above` gives), from the same pass over the table.
    pub fn validate_with_high(t: &MinuteTable, threshold: f64) -> Result<(Self, f64), AtError> {
        let (sum, n, max, above) = t.validate_with_ambiguity(threshold)?;
        Ok((AmbiguityStats { sum, n, max }, above as f64))
    }
}

/// Number of counted minutes whose fraction is strictly above `threshold`.
fn count_above(t: &MinuteTable, threshold: f64) -> f64 {
    (0..t.len())
        .filter(|&m| counted(t, m) && t.ambiguous_frac[m] > threshold)
        .count() as f64
}

/// Where the idle skip may jump, for one signal key and one `accept_outside_k`.
///
/// Pitfall: whether a sequence already fired its breakout signal looks like strategy
/// state, but it is set whenever the signal fires, whatever the position, cooldown or
/// kill switch: so it too depends only on the table, the signal key and
/// `accept_outside_k`, and a minute where no setup fires is known in advance.
#[derive(Debug, Clone)]
pub struct IdlePlan {
    /// Per minute: `EVENT` (some setup fires), `FIRED_ABOVE` / `FIRED_BELOW` (the
    /// sequence's breakout has fired, after this minute).
    pub flags: Vec<u8>,
    /// First minute `>= m` with `EVENT` (`n` if none).
    pub next_event: Vec<u32>,
}

impl IdlePlan {
    pub const EVENT: u8 = 1;
    pub const FIRED_ABOVE: u8 = 2;
    pub const FIRED_BELOW: u8 = 4;

    /// Mirrors the breakout step of `Kernel::decide_prepared` minute by minute.
    fn new(pre: &[PreMinute], k: u32) -> Self {
        let mut flags = Vec::with_capacity(pre.len());
        let (mut fa, mut fb) = (false, false);
        for pm in pre {
            let a = pm.above(fa);
            let b = pm.below(fb);
            fa = a.fired;
            fb = b.fired;
            // A data gap is an event: the engine flattens and forgets the sequences there.
            let mut ev =
                pm.bits & PreMinute::STATIC_SIGNALS != 0 || pm.flags & PreMinute::AFTER_GAP != 0;
            if pm.bits & sig::BREAKOUT_LONG != 0 && a.count >= k && !fa {
                fa = true;
                ev = true;
            }
            if pm.bits & sig::BREAKOUT_SHORT != 0 && b.count >= k && !fb {
                fb = true;
                ev = true;
            }
            flags.push(
                (u8::from(ev) * Self::EVENT)
                    | (u8::from(fa) * Self::FIRED_ABOVE)
                    | (u8::from(fb) * Self::FIRED_BELOW),
            );
        }
        let n = pre.len();
        let mut next_event = vec![n as u32; n];
        let mut next = n as u32;
        for m in (0..n).rev() {
            if flags[m] & Self::EVENT != 0 {
                next = m as u32;
            }
            next_event[m] = next;
        }
        Self { flags, next_event }
    }

    /// The acceptance sequences as the kernel holds them after minute `m`.
    pub fn tracks(&self, pre: &[PreMinute], m: usize) -> (SeqTrack, SeqTrack) {
        let f = self.flags[m];
        (
            SeqTrack {
                fired: f & Self::FIRED_ABOVE != 0,
                ..pre[m].above(false)
            },
            SeqTrack {
                fired: f & Self::FIRED_BELOW != 0,
                ..pre[m].below(false)
            },
        )
    }
}

/// Ambiguity statistics and precomputed minutes (per signal key, with the count of
/// high-ambiguity minutes for its `ambiguous_trade_frac_max`) and idle plans (per signal
/// key and `accept_outside_k`) of one table. Holds no copy of the table.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub ambiguity: AmbiguityStats,
    /// The kernel inputs as rows (`with_rows`; one contiguous row per minute reads faster
    /// than 19 column streams when many sets reuse it), or empty (read the columns).
    pub rows: Vec<MinuteInput>,
    minutes: Vec<(SignalKey, Vec<PreMinute>, f64)>,
    plans: Vec<(SignalKey, u32, IdlePlan)>,
}

/// The kernel's mark of row `m` (see `Kernel::decide`), if finite.
#[inline]
pub fn kernel_mark(t: &MinuteTable, m: usize) -> Option<f64> {
    if t.mid_close[m].is_finite() {
        Some(t.mid_close[m])
    } else if has_trades(t, m) {
        Some(t.close[m])
    } else {
        None
    }
}

/// The backtester's mark of row `m` (see `Engine::step`), if finite.
#[inline]
pub fn engine_mark(t: &MinuteTable, m: usize) -> Option<f64> {
    if t.mid_close[m].is_finite() {
        Some(t.mid_close[m])
    } else if t.close[m].is_finite() {
        Some(t.close[m])
    } else {
        None
    }
}

/// The last finite mark among rows `a..=b` (scanning back from `b`; usually `b` itself).
#[inline]
pub fn last_mark(
    t: &MinuteTable,
    a: usize,
    b: usize,
    f: fn(&MinuteTable, usize) -> Option<f64>,
) -> Option<f64> {
    (a..=b).rev().find_map(|m| f(t, m))
}

impl Prepared {
    pub fn new(t: &MinuteTable) -> Self {
        Self {
            ambiguity: AmbiguityStats::new(t),
            rows: Vec::new(),
            minutes: Vec::new(),
            plans: Vec::new(),
        }
    }

    /// `new` plus the rows (worth it for a batch, not for one run).
    pub fn with_rows(t: &MinuteTable) -> Self {
        Self {
            rows: t.rows(),
            ..Self::new(t)
        }
    }

    /// Compute the precomputed minutes and idle plan for `p` unless already there.
    pub fn add(&mut self, t: &MinuteTable, p: &Params) -> Result<(), AtError> {
        let key = signal_key(p);
        if !self.minutes.iter().any(|(k, _, _)| *k == key) {
            let m = prepare_minutes((0..t.len()).map(|m| t.input(m)), p)?;
            let high = count_above(t, p.ambiguous_trade_frac_max);
            self.minutes.push((key, m, high));
        }
        let k = p.accept_outside_k;
        if !self.plans.iter().any(|(kk, a, _)| *kk == key && *a == k) {
            let pre = self.minutes(p).expect("just added").0;
            let plan = IdlePlan::new(pre, k);
            self.plans.push((key, k, plan));
        }
        Ok(())
    }

    /// The precomputed minutes for `p` and the number of minutes above its ambiguity
    /// threshold (after `add(p)`).
    pub fn minutes(&self, p: &Params) -> Option<(&[PreMinute], f64)> {
        let key = signal_key(p);
        self.minutes
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, m, h)| (m.as_slice(), *h))
    }

    /// The idle plan for `p` (after `add(p)`).
    pub fn plan(&self, p: &Params) -> Option<&IdlePlan> {
        let key = signal_key(p);
        self.plans
            .iter()
            .find(|(k, a, _)| *k == key && *a == p.accept_outside_k)
            .map(|(_, _, pl)| pl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{run, run_batch, run_with, BacktestResult, Output, RunPath};
    use crate::synth::synthetic_table;
    use at_strategy::{LimitPriceMode, OfThresholdMode, QimbSource, StopFillMode};

    /// Bit patterns of everything a backtest reports (Debug prints every f64 exactly,
    /// NaN and -0.0 included).
    fn fingerprint(r: &BacktestResult) -> (Vec<u64>, String, Vec<u64>, String) {
        (
            r.metrics.values().iter().map(|v| v.to_bits()).collect(),
            format!("{:?}", r.trades),
            r.equity.iter().map(|v| v.to_bits()).collect(),
            format!("{:?}", r.decisions),
        )
    }

    fn sets() -> Vec<Params> {
        let d = Params::default();
        vec![
            d,
            Params {
                accept_outside_k: 1,
                enable_retest_mode: false,
                cooldown_minutes: 0,
                ..d
            },
            Params {
                accept_outside_k: 5,
                use_limit_for_entry: false,
                cooldown_minutes: 9,
                risk_pct: 0.01,
                ..d
            },
            Params {
                accept_outside_k: 2,
                limit_price_mode: LimitPriceMode::Boundary,
                limit_order_timeout_minutes: 3,
                enable_flip_on_signal: false,
                use_market_for_exit: false,
                ..d
            },
            Params {
                qimb_source: QimbSource::Ema,
                of_threshold_mode: OfThresholdMode::Both,
                crossing_spread_mult: 3.0,
                ambiguous_trade_frac_max: 0.2,
                max_hold_minutes: 15,
                extend_if_profitable: false,
                ..d
            },
            // Big risk and a tight kill switch: the kill switch trips and idle days follow.
            Params {
                risk_pct: 0.5,
                max_leverage: 50.0,
                max_daily_loss_pct: 0.01,
                stop_fill_mode: StopFillMode::TickPath,
                ..d
            },
            Params {
                use_qimb: false,
                of_threshold_mode: OfThresholdMode::Raw,
                of_entry_min: 5.0,
                tp1_pct: 0.0,
                move_stop_to_breakeven_after_tp1: false,
                ..d
            },
        ]
    }

    #[test]
    fn prepared_path_is_bit_identical_to_reference() {
        for seed in [1u64, 2, 7, 42] {
            let ticks = if seed == 7 { 2 } else { 0 };
            let t = synthetic_table(6 * 1440, seed, 1_704_067_200_000 + 300_000, ticks);
            let v = t.view();
            let ps = sets();
            for p in &ps {
                let a = run_with(&v, *p, RunPath::Reference { rows: &[] }, Output::Full).unwrap();
                let mut prep = if seed % 2 == 0 {
                    Prepared::new(&v)
                } else {
                    Prepared::with_rows(&v)
                };
                prep.add(&v, p).unwrap();
                let b = run_with(&v, *p, RunPath::Prepared(&prep), Output::Full).unwrap();
                assert!(
                    a.metrics.n_trades > 0.0,
                    "seed {seed}: no trades, weak test"
                );
                assert_eq!(fingerprint(&a), fingerprint(&b), "seed {seed} params {p:?}");
                let c = run(&v, *p).unwrap();
                assert_eq!(
                    fingerprint(&a),
                    fingerprint(&c),
                    "scan path, seed {seed} {p:?}"
                );
                let m = run_with(&v, *p, RunPath::Reference { rows: &[] }, Output::Metrics)
                    .map(|r| r.metrics)
                    .unwrap();
                assert_eq!(
                    a.metrics.values().map(f64::to_bits),
                    m.values().map(f64::to_bits)
                );
            }
            for threads in [1, 2] {
                let batch = run_batch(&v, &ps, threads).unwrap();
                for (p, r) in ps.iter().zip(batch) {
                    let want = run_with(&v, *p, RunPath::Reference { rows: &[] }, Output::Full)
                        .unwrap()
                        .metrics;
                    assert_eq!(
                        r.unwrap().values().map(f64::to_bits),
                        want.values().map(f64::to_bits),
                        "seed {seed} threads {threads}"
                    );
                }
            }
        }
    }

    #[test]
    fn scan_path_with_funding_history_and_gaps_matches_reference() {
        use crate::table::FundingHistory;
        let mut t = synthetic_table(5 * 1440, 11, 1_704_067_200_000, 0);
        // A gap of a few hours (the idle scan's day ends must still land on UTC days).
        for v in [
            &mut t.ts_min,
            &mut t.next_quote_ts,
            &mut t.low_ts,
            &mut t.high_ts,
        ] {
            for x in v.iter_mut().skip(2_000) {
                *x += 4 * 3_600_000;
            }
        }
        let fts: Vec<i64> = (1..16)
            .map(|i| 1_704_067_200_000 + i * 28_860_000)
            .collect();
        let rate: Vec<f64> = (0..15).map(|i| (i as f64 - 6.0) * 1e-4).collect();
        let mut v = t.view();
        v.funding = Some(FundingHistory {
            ts: &fts,
            rate: &rate,
        });
        for p in sets() {
            let a = run_with(&v, p, RunPath::Reference { rows: &[] }, Output::Full).unwrap();
            assert!(a.metrics.n_trades > 0.0);
            assert_eq!(fingerprint(&a), fingerprint(&run(&v, p).unwrap()), "{p:?}");
        }
    }

    #[test]
    fn decision_rows_read_back() {
        let t = synthetic_table(2 * 1440, 5, 1_704_067_200_000, 0);
        let r = run(&t.view(), Params::default()).unwrap();
        let d = &r.decisions;
        assert_eq!(d.len(), t.ts_min.len());
        let entries = (0..d.len())
            .map(|i| d.row(i))
            .filter(|row| row.action != at_strategy::Action::Hold)
            .count();
        assert!(entries > 0);
        let row = d.row(7);
        assert_eq!(row.ts_min, t.ts_min[7]);
        assert_eq!(row.reason.code(), d.reason[7]);
    }

    #[test]
    fn kill_switch_idle_days_match_reference() {
        let t = synthetic_table(10 * 1440, 3, 1_704_067_200_000, 0);
        let v = t.view();
        let p = Params {
            risk_pct: 0.9,
            max_leverage: 100.0,
            max_daily_loss_pct: 0.005,
            ..Params::default()
        };
        let a = run_with(&v, p, RunPath::Reference { rows: &[] }, Output::Full).unwrap();
        let mut prep = Prepared::new(&v);
        prep.add(&v, &p).unwrap();
        let b = run_with(&v, p, RunPath::Prepared(&prep), Output::Full).unwrap();
        assert!(a.metrics.n_kill_switch > 0.0);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a), fingerprint(&run(&v, p).unwrap()));
    }

    #[test]
    fn ambiguity_count_above_is_strict() {
        let mut t = synthetic_table(4, 1, 0, 0);
        t.ambiguous_frac = vec![0.1, 0.2, 0.2, 0.3];
        let v = t.view();
        assert_eq!(count_above(&v, 0.2), 1.0);
        assert_eq!(count_above(&v, 0.0), 4.0);
        assert_eq!(count_above(&v, 0.3), 0.0);
        t.close[3] = f64::NAN; // no trades: not counted
        assert_eq!(count_above(&t.view(), 0.2), 0.0);
    }
}
