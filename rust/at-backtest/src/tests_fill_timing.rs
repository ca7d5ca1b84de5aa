//! When a fill happens, and what the position may see after it (issue 9, defects 1 and 2).
//!
//! Each table here sets every timestamp by hand: the first quote after each close (the
//! market-fill reference) and the first prints at each minute's low and high. The SPEC §20.5
//! break-in bar (minute 0) decides a long: stop 49,818, TP1 = POC 50,000, TP2 = VAH 50,100.

use at_strategy::{LimitPriceMode, MinuteInput, Params, Reason, StopFillMode};

use crate::run;
use crate::table::OwnedTable;
use crate::tests::{bar, params, signal_bar, M, T0};

/// One row: the bar, its fill reference `(next quote ts, bid, ask)` and the offsets (ms
/// into the minute) of the first print at its low and at its high.
struct R {
    x: MinuteInput,
    quote: (i64, f64, f64),
    low_at: i64,
    high_at: i64,
}

fn table(rows: &[R]) -> OwnedTable {
    let mut t = OwnedTable::default();
    for r in rows {
        let (qts, b, a) = r.quote;
        t.push(
            &r.x,
            qts,
            b,
            a,
            r.x.ts_min + r.low_at,
            r.x.ts_min + r.high_at,
        );
    }
    t
}

fn limit_params() -> Params {
    Params {
        use_limit_for_entry: true,
        limit_price_mode: LimitPriceMode::Close,
        limit_order_timeout_minutes: 1,
        ..params()
    }
}

/// Defect 1, resting limit: minute 1 printed 50,050 (beyond TP1) at +5 s, then
/// traded down through the 49,950 limit at +30 s and closed at 49,960. The targets were
/// reached only before the order filled: no target may be credited in that minute.
#[test]
fn limit_fill_minute_does_not_credit_a_high_printed_before_the_fill() {
    let m1 = T0 + M;
    let t = table(&[
        R {
            x: signal_bar(),
            quote: (m1 + 100, 49_955.0, 49_956.0), // not marketable: the limit rests
            low_at: 10_000,
            high_at: 20_000,
        },
        R {
            x: bar(1, 49_955.0, 50_050.0, 49_945.0, 49_960.0),
            quote: (m1 + M + 100, 49_960.0, 49_961.0),
            low_at: 30_000,
            high_at: 5_000,
        },
        R {
            x: bar(2, 49_960.0, 49_970.0, 49_950.0, 49_965.0),
            quote: (m1 + 2 * M + 100, 49_965.0, 49_966.0),
            low_at: 10_000,
            high_at: 20_000,
        },
    ]);
    let r = run(&t.view(), limit_params()).unwrap();
    assert_eq!(r.trades.len(), 1, "{:?}", r.trades);
    let tr = &r.trades[0];
    assert_eq!(
        (tr.entry_price, tr.entry_maker, tr.fill_ts_ms),
        (49_950.0, true, m1 + 30_000)
    );
    assert_eq!(tr.tp1_qty, 0.0, "TP1 credited from a pre-fill high: {tr:?}");
    assert_eq!(tr.exit_reason, Reason::EndOfData, "{tr:?}");
    assert_eq!(tr.exit_ts_ms, m1 + 2 * M, "{tr:?}");
}

/// Defect 1, market entry: the first quote after the decision arrives 30 s into minute 1
/// (a quiet book); minute 1 printed its high beyond TP1 at +10 s, before the fill.
#[test]
fn market_fill_minute_does_not_credit_a_high_printed_before_the_fill() {
    let m1 = T0 + M;
    let t = table(&[
        R {
            x: signal_bar(),
            quote: (m1 + 30_000, 49_950.0, 49_951.0),
            low_at: 10_000,
            high_at: 20_000,
        },
        R {
            x: bar(1, 49_952.0, 50_050.0, 49_940.0, 49_960.0),
            quote: (m1 + M + 100, 49_960.0, 49_961.0),
            low_at: 40_000,
            high_at: 10_000,
        },
    ]);
    let r = run(&t.view(), params()).unwrap();
    let tr = &r.trades[0];
    assert_eq!(tr.fill_ts_ms, m1 + 30_000);
    assert_eq!(tr.tp1_qty, 0.0, "TP1 credited from a pre-fill high: {tr:?}");
    assert_eq!(tr.exit_reason, Reason::EndOfData, "{tr:?}");
}

/// Defect 1, stop side: the minute's low (below the stop) printed at +10 s, the market
/// entry filled at +30 s and the minute closed well above the stop. The stop is not known
/// to have traded after the fill; it must not be taken from the pre-fill low.
#[test]
fn market_fill_minute_does_not_stop_on_a_low_printed_before_the_fill() {
    let m1 = T0 + M;
    let t = table(&[
        R {
            x: signal_bar(),
            quote: (m1 + 30_000, 49_950.0, 49_951.0),
            low_at: 10_000,
            high_at: 20_000,
        },
        R {
            x: bar(1, 49_952.0, 49_990.0, 49_800.0, 49_980.0),
            quote: (m1 + M + 100, 49_980.0, 49_981.0),
            low_at: 10_000,
            high_at: 50_000,
        },
    ]);
    let r = run(&t.view(), params()).unwrap();
    let tr = &r.trades[0];
    assert_eq!(tr.fill_ts_ms, m1 + 30_000);
    assert_ne!(
        tr.exit_reason,
        Reason::Stop,
        "stop from a pre-fill low: {tr:?}"
    );
    // The same low printed after the fill stops the position at its level.
    let t = table(&[
        R {
            x: signal_bar(),
            quote: (m1 + 30_000, 49_950.0, 49_951.0),
            low_at: 10_000,
            high_at: 20_000,
        },
        R {
            x: bar(1, 49_952.0, 49_990.0, 49_800.0, 49_980.0),
            quote: (m1 + M + 100, 49_980.0, 49_981.0),
            low_at: 40_000,
            high_at: 50_000,
        },
    ]);
    let r = run(&t.view(), params()).unwrap();
    let tr = &r.trades[0];
    assert_eq!(
        (tr.exit_reason, tr.exit_price, tr.exit_ts_ms),
        (Reason::Stop, 49_817.0, m1 + 40_000)
    );
}

/// Defect 1, tick path: the ticks of the fill minute before the fill are not the
/// position's; a tick in the fill's own millisecond counts against it (stop), never for it.
#[test]
fn tick_path_ignores_ticks_before_the_fill() {
    let m1 = T0 + M;
    let mut t = table(&[
        R {
            x: signal_bar(),
            quote: (m1 + 30_000, 49_950.0, 49_951.0),
            low_at: 10_000,
            high_at: 20_000,
        },
        R {
            x: bar(1, 49_952.0, 50_050.0, 49_800.0, 49_960.0),
            quote: (m1 + M + 100, 49_960.0, 49_961.0),
            low_at: 10_000,
            high_at: 20_000,
        },
    ]);
    t.tick_ts = vec![m1 + 10_000, m1 + 20_000, m1 + 40_000];
    t.tick_price = vec![49_800.0, 50_050.0, 49_960.0];
    t.tick_start = vec![0, 0, 3];
    let p = Params {
        stop_fill_mode: StopFillMode::TickPath,
        ..params()
    };
    let r = run(&t.view(), p).unwrap();
    let tr = &r.trades[0];
    assert_eq!(tr.fill_ts_ms, m1 + 30_000);
    assert_eq!(tr.tp1_qty, 0.0, "{tr:?}");
    assert_eq!(tr.exit_reason, Reason::EndOfData, "{tr:?}");
}

/// Defect 2: no quote in minute 1, so the decision of minute 0 fills at the first quote of
/// minute 2 (49,850 bid / 49,851 ask: the market moved). Until then the order is pending:
/// minute 1's equity has no position in it, and minute 1's low (below the stop, printed
/// before the fill) cannot stop a position that did not exist yet.
#[test]
fn a_fill_after_a_quiet_minute_is_pending_until_its_quote() {
    let m2 = T0 + 2 * M;
    let t = table(&[
        R {
            x: signal_bar(),
            quote: (m2 + 100, 49_850.0, 49_851.0),
            low_at: 10_000,
            high_at: 20_000,
        },
        R {
            x: bar(1, 49_950.0, 49_955.0, 49_810.0, 49_900.0),
            quote: (m2 + 100, 49_850.0, 49_851.0),
            low_at: 10_000,
            high_at: 20_000,
        },
        R {
            x: bar(2, 49_851.0, 49_870.0, 49_840.0, 49_860.0),
            quote: (m2 + M + 100, 49_860.0, 49_861.0),
            low_at: 10_000,
            high_at: 20_000,
        },
    ]);
    let p = params();
    let r = run(&t.view(), p).unwrap();
    assert_eq!(r.trades.len(), 1, "{:?}", r.trades);
    let tr = &r.trades[0];
    assert_eq!((tr.fill_ts_ms, tr.entry_price), (m2 + 100, 49_852.0));
    assert_ne!(
        tr.exit_reason,
        Reason::Stop,
        "stopped before it was open: {tr:?}"
    );
    assert!(tr.exit_ts_ms > m2, "{tr:?}");
    // Equity at minute 1's close: still all cash, no fee paid, nothing marked.
    assert_eq!(r.equity[1], p.initial_equity, "{:?}", r.equity);
    assert_eq!(r.metrics.lookahead_violations, 0.0);
}

/// Defect 2, exit side: the time stop decided at minute 2's close fills at the first quote
/// after it, which comes only in minute 4 (minute 3 is quiet). Until then the position is
/// open: minute 3's equity still marks it.
#[test]
fn a_market_exit_after_a_quiet_minute_fills_at_its_quote_time() {
    let p = Params {
        max_hold_minutes: 1,
        extend_if_profitable: false,
        ..params()
    };
    let q = |i: i64, b: f64| (T0 + i * M + 100, b, b + 1.0);
    let row = |x: MinuteInput, quote: (i64, f64, f64)| R {
        x,
        quote,
        low_at: 10_000,
        high_at: 20_000,
    };
    let t = table(&[
        row(signal_bar(), q(1, 49_950.0)),
        row(
            bar(1, 49_952.0, 49_960.0, 49_940.0, 49_955.0),
            q(2, 49_955.0),
        ),
        row(
            bar(2, 49_955.0, 49_960.0, 49_950.0, 49_955.0),
            q(4, 49_990.0),
        ),
        row(
            bar(3, 49_955.0, 49_970.0, 49_950.0, 49_965.0),
            q(4, 49_990.0),
        ),
        row(
            bar(4, 49_990.0, 49_995.0, 49_985.0, 49_990.0),
            q(5, 49_990.0),
        ),
    ]);
    let r = run(&t.view(), p).unwrap();
    let tr = &r.trades[0];
    assert_eq!(tr.exit_reason, Reason::TimeStop, "{tr:?}");
    assert_eq!(tr.exit_decision_ts_ms, T0 + 2 * M + 59_999, "{tr:?}");
    assert_eq!((tr.exit_ts_ms, tr.exit_price), (T0 + 4 * M + 100, 49_989.0));
    // At minute 3's close the position is still open and marked at that minute's mid.
    assert_ne!(r.equity[3], r.equity[4], "{:?}", r.equity);
}
