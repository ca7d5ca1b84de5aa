//! Data gaps (stage 1 module notes): minutes are never invented across a gap longer than
//! `max_gap_minutes`, the state before the gap is dropped, and the same ticks give the
//! same minutes and features whether computed alone or after distant data, in a batch or
//! closed by a wall clock.

mod common;
use at_features::engine::{feed_stage1, run_batch, FeatureEngine, MinuteOutput};
use at_features::stage1::Stage1Engine;
use at_features::{Quote, Stage1Config, Stage2Config, Trade};
use common::{market, qt, tr, M};

const DAY: i64 = 86_400_000;

fn c2() -> Stage2Config {
    Stage2Config {
        min_va_bins: 5,
        warmup_minutes: 30,
        rolling_window_minutes: 30,
        ..Stage2Config::default()
    }
}

type Ticks = (Vec<Trade>, Vec<Quote>);

/// Two markets of `minutes` minutes, the second starting `apart` ms after the first.
fn two_windows(minutes: i64, apart: i64) -> (Ticks, Ticks) {
    let t0 = 1_700_000_000_000 - 1_700_000_000_000 % M;
    let a = market(7, minutes, t0);
    let mut b = market(8, minutes, t0 + apart);
    // distinct sequence numbers so that the merged streams stay sorted by (ts, seq)
    let (nt, nq) = (a.0.len() as i64, a.1.len() as i64);
    b.0.iter_mut().for_each(|t| t.seq += nt);
    b.1.iter_mut().for_each(|q| q.seq += nq);
    (a, b)
}

fn cat<T: Clone>(x: &[T], y: &[T]) -> Vec<T> {
    x.iter().chain(y).cloned().collect()
}

/// Debug text of outputs: compares floats bit for bit, NaN equal to NaN.
fn text(v: &[MinuteOutput]) -> Vec<String> {
    v.iter().map(|o| format!("{o:?}")).collect()
}

#[test]
fn no_minute_is_invented_across_a_gap_and_the_later_window_is_computed_as_if_alone() {
    let c1 = Stage1Config::default();
    let ((ta, qa), (tb, qb)) = two_windows(90, 400 * DAY);
    let both = run_batch(&c1, &c2(), &cat(&ta, &tb), &cat(&qa, &qb)).unwrap();
    let a_alone = run_batch(&c1, &c2(), &ta, &qa).unwrap();
    let b_alone = run_batch(&c1, &c2(), &tb, &qb).unwrap();
    // the first window, then at most `max_gap_minutes` empty minutes, then the second
    let last_a = a_alone.last().unwrap().0.ts_min;
    let trailing = both.len() - a_alone.len() - b_alone.len();
    assert_eq!(
        trailing as i64, c1.max_gap_minutes,
        "trailing empty minutes"
    );
    assert!(both[a_alone.len()..a_alone.len() + trailing]
        .iter()
        .all(|(s, _)| s.trade_count == 0 && s.quote_count == 0 && s.ts_min > last_a));
    assert_eq!(text(&both[..a_alone.len()]), text(&a_alone));
    assert_eq!(
        text(&both[a_alone.len() + trailing..]),
        text(&b_alone),
        "the later window's minutes and features do not depend on the earlier one"
    );
    // the VA is not valid across the gap: the later window warms up again
    let first_b = a_alone.len() + trailing;
    assert!(both[first_b..first_b + 29].iter().all(|(_, f)| !f.va_valid));
}

#[test]
fn a_quiet_stretch_up_to_the_limit_is_not_a_gap() {
    let c1 = Stage1Config {
        max_gap_minutes: 3,
        ..Stage1Config::default()
    };
    let t0 = 1_700_000_000_000 - 1_700_000_000_000 % M;
    let quotes = vec![qt(t0 + 5, 0, 500_000, 500_001, 1.0, 1.0)];
    // minutes 1..=3 have no event at all (3 = the limit): emitted, L1 carried
    let trades = vec![
        tr(t0 + 10, 0, 500_001, 1.0, 0),
        tr(t0 + 4 * M + 10, 1, 500_000, 1.0, 0),
    ];
    let mut e = Stage1Engine::new(c1.clone()).unwrap();
    feed_stage1(&mut e, &trades, &quotes).unwrap();
    let m = e.finish();
    assert_eq!(m.len(), 5);
    assert_eq!(e.gaps(), 0);
    assert_eq!(
        m[4].l1_close.unwrap().bid_ticks,
        500_000,
        "quote carried over the quiet stretch"
    );
    // four eventless minutes: a gap; the quote from before it is not carried into the next
    let trades = vec![
        tr(t0 + 10, 0, 500_001, 1.0, 0),
        tr(t0 + 5 * M + 10, 1, 500_000, 1.0, 0),
    ];
    let mut e = Stage1Engine::new(c1).unwrap();
    feed_stage1(&mut e, &trades, &quotes).unwrap();
    let m = e.finish();
    let ts: Vec<i64> = m.iter().map(|s| (s.ts_min - t0) / M).collect();
    assert_eq!(ts, vec![0, 1, 2, 3, 5], "minute 4 is not invented");
    assert_eq!(e.gaps(), 1);
    assert!(m[4].l1_close.is_none(), "no quote carried across the gap");
    assert!(m[4].qimb_ema.is_nan(), "the qimb EMA restarts");
}

#[test]
fn a_wall_clock_sees_the_same_gap_as_a_batch() {
    let c1 = Stage1Config::default();
    let ((ta, qa), (tb, qb)) = two_windows(60, 3 * 3_600_000);
    let batch = run_batch(&c1, &c2(), &cat(&ta, &tb), &cat(&qa, &qb)).unwrap();
    // streaming: the first window, then the clock closes every minute of the gap, then the
    // second window
    let mut e = FeatureEngine::new(c1, c2()).unwrap();
    let mut out = Vec::new();
    feed_stage1(e.stage1(), &ta, &qa).unwrap();
    out.extend(e.take_ready().unwrap());
    let (from, to) = (
        ta.last().unwrap().ts_ms - ta.last().unwrap().ts_ms % M,
        tb[0].ts_ms,
    );
    let mut m = from;
    while m + M <= to - to % M {
        out.extend(e.close_minute(m).unwrap());
        m += M;
    }
    feed_stage1(e.stage1(), &tb, &qb).unwrap();
    out.extend(e.finish().unwrap());
    assert_eq!(text(&out), text(&batch));
}
