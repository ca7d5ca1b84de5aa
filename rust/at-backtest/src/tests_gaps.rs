//! Data gaps in a minute table (engine module notes): no position is held and no order
//! is priced across a hole, the same on every run path.

use crate::engine::{run, run_batch, run_with, BacktestResult, Output, RunPath};
use crate::prepared::Prepared;
use crate::synth::synthetic_table;
use crate::table::OwnedTable;
use at_strategy::{Params, Reason, StopFillMode};

const MIN: i64 = 60_000;

fn fingerprint(r: &BacktestResult) -> (Vec<u64>, String, Vec<u64>, String) {
    (
        r.metrics.values().iter().map(|v| v.to_bits()).collect(),
        format!("{:?}", r.trades),
        r.equity.iter().map(|v| v.to_bits()).collect(),
        format!("{:?}", r.decisions),
    )
}

/// Open a hole of `minutes` minutes before row `at`: every later time moves; the rows
/// before the hole lose the fill reference that was on its far side.
fn open_gap(t: &mut OwnedTable, at: usize, minutes: i64) {
    let shift = minutes * MIN;
    for v in [&mut t.ts_min, &mut t.low_ts, &mut t.high_ts] {
        v.iter_mut().skip(at).for_each(|x| *x += shift);
    }
    for j in 0..t.ts_min.len() {
        if t.next_quote_ts[j] >= 0 && (j >= at || t.next_quote_ts[j] >= t.ts_min[at] - shift) {
            if j >= at {
                t.next_quote_ts[j] += shift;
            } else {
                t.next_quote_ts[j] = -1;
                t.next_bid[j] = f64::NAN;
                t.next_ask[j] = f64::NAN;
            }
        }
    }
    if !t.tick_start.is_empty() {
        let from = t.tick_start[at] as usize;
        t.tick_ts.iter_mut().skip(from).for_each(|x| *x += shift);
    }
}

/// A table with holes placed where the gapless run holds positions.
fn table_with_gaps(seed: u64, ticks: usize, p: Params) -> (OwnedTable, Vec<usize>) {
    let mut t = synthetic_table(4 * 1440, seed, 1_704_067_200_000 + 300_000, ticks);
    let r = run(&t.view(), p).unwrap();
    let mut cuts = Vec::new();
    for tr in r
        .trades
        .iter()
        .filter(|tr| tr.exit_ts_ms - tr.fill_ts_ms > 3 * MIN)
    {
        // the row after the one in which the trade was filled
        let row = t.ts_min.partition_point(|&x| x <= tr.fill_ts_ms) + 1;
        if cuts.last().is_none_or(|&c| row > c + 600) && row < t.ts_min.len() {
            cuts.push(row);
        }
        if cuts.len() == 3 {
            break;
        }
    }
    assert_eq!(cuts.len(), 3, "seed {seed}: not enough long trades");
    // 9 hours, 15 months, 7 minutes
    for (&c, h) in cuts.iter().zip([9 * 60, 460 * 1440, 7]) {
        open_gap(&mut t, c, h);
    }
    (t, cuts)
}

#[test]
fn no_position_is_held_across_a_gap_and_every_path_agrees() {
    let variants = [
        Params::default(),
        Params {
            stop_fill_mode: StopFillMode::TickPath,
            max_hold_minutes: 240,
            ..Params::default()
        },
    ];
    for (seed, p) in [(3u64, variants[0]), (5, variants[1])] {
        let ticks = usize::from(p.stop_fill_mode == StopFillMode::TickPath) * 2;
        let (t, cuts) = table_with_gaps(seed, ticks, p);
        let v = t.view();
        let a = run_with(&v, p, RunPath::Reference { rows: &[] }, Output::Full).unwrap();
        assert_eq!(a.metrics.n_gaps, 3.0);
        assert_eq!(a.metrics.gap_minutes, (9 * 60 + 460 * 1440 + 7) as f64);
        // no trade spans a hole: entry and exit in the same segment
        for tr in &a.trades {
            for &c in &cuts {
                assert!(
                    !(tr.fill_ts_ms < v.ts_min[c] && tr.exit_ts_ms > v.ts_min[c - 1] + MIN),
                    "trade {tr:?} spans the gap before row {c}"
                );
            }
        }
        // the positions open at the holes were closed at the last mark before them
        let gap_exits: Vec<_> = a
            .trades
            .iter()
            .filter(|tr| tr.exit_reason == Reason::DataGap)
            .collect();
        assert!(!gap_exits.is_empty(), "seed {seed}: no position met a gap");
        for tr in gap_exits {
            let c = *cuts
                .iter()
                .find(|&&c| tr.exit_ts_ms == v.ts_min[c - 1] + MIN)
                .expect("a DATA_GAP exit at the end of a row before a hole");
            let last = (0..c).rev().find(|&j| v.mid_close[j].is_finite()).unwrap();
            assert_eq!(tr.exit_price, v.mid_close[last]);
        }
        // every path gives the same result
        assert_eq!(fingerprint(&a), fingerprint(&run(&v, p).unwrap()), "scan");
        let mut prep = Prepared::with_rows(&v);
        prep.add(&v, &p).unwrap();
        let b = run_with(&v, p, RunPath::Prepared(&prep), Output::Full).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b), "prepared");
        let m = run_batch(&v, &[p, p], 2).unwrap();
        for r in m {
            assert_eq!(
                r.unwrap().values().map(f64::to_bits),
                a.metrics.values().map(f64::to_bits),
                "batch"
            );
        }
    }
}

#[test]
fn the_days_covered_are_counted_not_the_calendar_span() {
    let mut t = synthetic_table(2 * 1440, 9, 1_704_067_200_000, 0);
    open_gap(&mut t, 1440, 460 * 1440);
    let r = run(&t.view(), Params::default()).unwrap();
    assert_eq!(r.metrics.n_days, 2.0);
    assert_eq!(r.metrics.n_gaps, 1.0);
}

/// No number that misleads (issue 10 §6): an annualised Sharpe needs
/// `SHARPE_MIN_DAYS` daily returns; with no trade the per-trade ratios are n/a.
#[test]
fn sharpe_and_trade_ratios_are_na_when_they_cannot_be_measured() {
    use crate::metrics::SHARPE_MIN_DAYS;
    let short = synthetic_table(3 * 1440, 9, 1_704_067_200_000, 0);
    let r = run(&short.view(), Params::default()).unwrap();
    assert!(r.metrics.n_trades > 0.0 && r.metrics.n_days == 3.0);
    assert!(r.metrics.sharpe.is_nan(), "{}", r.metrics.sharpe);
    assert!(r.metrics.win_rate.is_finite() && r.metrics.profit_factor.is_finite());
    let days = SHARPE_MIN_DAYS + 1;
    let long = synthetic_table(days * 1440, 9, 1_704_067_200_000, 0);
    let r = run(&long.view(), Params::default()).unwrap();
    assert!(r.metrics.sharpe.is_finite(), "{} days", r.metrics.n_days);
    // a risk too small for the minimum quantity: every entry is refused
    let never = Params {
        risk_pct: 1e-9,
        ..Params::default()
    };
    let r = run(&short.view(), never).unwrap();
    assert_eq!(r.metrics.n_trades, 0.0);
    for (name, v) in [
        ("profit_factor", r.metrics.profit_factor),
        ("win_rate", r.metrics.win_rate),
        ("pnl_per_trade", r.metrics.pnl_per_trade),
        ("sharpe", r.metrics.sharpe),
    ] {
        assert!(v.is_nan(), "{name} = {v} with no trade");
    }
}
