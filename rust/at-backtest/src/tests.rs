//! Fill-model tests on hand-built tables (expected prices worked by hand from SPEC §12.2)
//! and property-style checks on the seeded synthetic table.

use at_strategy::{LimitPriceMode, MinuteInput, Params, Reason, StopFillMode};

use crate::synth::synthetic_table;
use crate::table::OwnedTable;
use crate::{run, run_batch, run_with, Output, RunPath};

pub(crate) const M: i64 = 60_000;
/// 07:58 UTC on some day, so that the 08:00 funding instant falls two minutes in.
pub(crate) const T0: i64 = 1_700_006_400_000 + 7 * 3_600_000 + 58 * M; // 1_700_006_400_000 is a UTC midnight

pub(crate) fn bar(i: i64, o: f64, h: f64, l: f64, c: f64) -> MinuteInput {
    MinuteInput {
        ts_min: T0 + i * M,
        open: o,
        high: h,
        low: l,
        close: c,
        volume: 10.0,
        // a trade printed at each level (the crossing of §6.3 is proven when asked)
        vah_trade_dist: 0.0,
        val_trade_dist: 0.0,
        mid_close: c,
        spread_avg: 1.0,
        poc: 50_000.0,
        vah: 50_100.0,
        val: 49_900.0,
        va_valid: true,
        of_1m: 0.0,
        of_norm_1m: 0.0,
        qimb_close: 0.0,
        qimb_ema: 0.0,
        ambiguous_frac: 0.2,
    }
}

/// The §20.5 break-in bar.
pub(crate) fn signal_bar() -> MinuteInput {
    let mut b = bar(0, 49_850.0, 49_920.0, 49_820.0, 49_950.0);
    b.of_1m = 0.5;
    b.of_norm_1m = 0.05;
    b.qimb_close = 0.15;
    b
}

/// Rows: (bar, next quote bid, next quote ask). Quote 100 ms after each close; lows at
/// +10 s and highs at +20 s into the minute.
fn table(rows: &[(MinuteInput, f64, f64)]) -> OwnedTable {
    let mut t = OwnedTable::default();
    for (x, b, a) in rows {
        t.push(
            x,
            x.ts_min + M + 100,
            *b,
            *a,
            x.ts_min + 10_000,
            x.ts_min + 20_000,
        );
    }
    t
}

pub(crate) fn params() -> Params {
    Params {
        tick_size: 1.0,
        use_limit_for_entry: false,
        max_daily_loss_pct: 0.0,
        cooldown_minutes: 0,
        funding_rate_8h_bps: 0.0,
        ..Params::default()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * (1.0 + b.abs())
}

/// FLAT → LONG → TP1 (partial, stop to breakeven) → TP2 → FLAT, every number by hand.
#[test]
fn flat_long_flat_market_entry_tp1_tp2() {
    let t = table(&[
        (signal_bar(), 49_950.0, 49_951.0),
        (
            bar(1, 49_952.0, 50_010.0, 49_940.0, 50_005.0),
            50_005.0,
            50_006.0,
        ),
        (
            bar(2, 50_005.0, 50_120.0, 49_990.0, 50_090.0),
            50_090.0,
            50_091.0,
        ),
    ]);
    let r = run(&t.view(), params()).unwrap();
    assert_eq!(r.trades.len(), 1, "{:?}", r.trades);
    let tr = &r.trades[0];
    assert_eq!(tr.decision_ts_ms, T0 + 59_999);
    assert_eq!(tr.fill_ts_ms, T0 + M + 100); // first quote after the close
    assert_eq!(tr.entry_price, 49_952.0); // ask 49,951 + 1 tick
    assert!(close(tr.qty, 1.515)); // 200 / (49,950 - 49,818) → 1.515 (sized at the close)
    assert_eq!((tr.tp1_price, tr.tp1_ts_ms), (49_999.0, T0 + M + 20_000)); // POC - 1 tick
    assert!(close(tr.tp1_qty, 0.455)); // round(1515 * 0.3 = 454.5) steps
    assert_eq!(tr.exit_price, 50_099.0); // VAH - 1 tick
    assert_eq!(tr.exit_reason, Reason::Tp2);
    let gross = 0.455 * (49_999.0 - 49_952.0) + 1.06 * (50_099.0 - 49_952.0);
    let fees = (49_952.0 * 1.515 + 49_999.0 * 0.455 + 50_099.0 * 1.06) * 5.0 / 1e4;
    assert!(close(tr.gross_pnl, gross), "{} vs {gross}", tr.gross_pnl);
    assert!(close(tr.fees, fees), "{} vs {fees}", tr.fees);
    assert!(close(tr.slippage_cost, 1.515 + 0.455 + 1.06));
    assert!(close(tr.net_pnl, gross - fees));
    assert!(close(r.metrics.net_pnl, gross - fees));
    assert!(close(r.metrics.final_equity, 10_000.0 + gross - fees));
    assert_eq!(r.metrics.lookahead_violations, 0.0);
    assert_eq!(r.metrics.n_trades, 1.0);
    assert_eq!(r.equity.len(), 3);
}

#[test]
fn limit_entry_fills_only_when_traded_through() {
    let p = Params {
        use_limit_for_entry: true,
        limit_price_mode: LimitPriceMode::Close,
        ..params()
    };
    // Quote after the decision moved up (not marketable); minute 1 trades through 49,950.
    let t = table(&[
        (signal_bar(), 49_955.0, 49_956.0),
        (
            bar(1, 49_955.0, 49_960.0, 49_949.0, 49_958.0),
            49_958.0,
            49_959.0,
        ),
        (
            bar(2, 49_958.0, 49_970.0, 49_950.0, 49_960.0),
            49_960.0,
            49_961.0,
        ),
    ]);
    let r = run(&t.view(), p).unwrap();
    let tr = &r.trades[0];
    assert_eq!((tr.entry_price, tr.entry_maker), (49_950.0, true));
    assert_eq!(tr.fill_ts_ms, T0 + M + 10_000); // the minute's low
                                                // Maker rebate (-1 bp) on entry; the end-of-data exit at the last mark pays taker.
    assert!(
        close(tr.fees, 1.515 * (-49_950.0 * 1e-4 + 49_960.0 * 5e-4)),
        "{}",
        tr.fees
    );
    assert_eq!(tr.slippage_cost, 0.0);
    // A touch is not a fill: minute 1 only touches 49,950, the limit times out after one
    // minute and becomes a market order at the first quote after minute 1's close.
    let t = table(&[
        (signal_bar(), 49_955.0, 49_956.0),
        (
            bar(1, 49_955.0, 49_960.0, 49_950.0, 49_958.0),
            49_958.0,
            49_959.0,
        ),
        (
            bar(2, 49_958.0, 49_970.0, 49_955.0, 49_960.0),
            49_960.0,
            49_961.0,
        ),
    ]);
    let r = run(&t.view(), p).unwrap();
    let tr = &r.trades[0];
    assert_eq!((tr.entry_price, tr.entry_maker), (49_960.0, false)); // ask 49,959 + 1
    assert_eq!(tr.fill_ts_ms, T0 + 2 * M + 100);
    assert_eq!(tr.decision_ts_ms, T0 + 59_999);
    // Marketable on arrival (ask 49,949 <= limit 49,950): taker, capped at the limit.
    let t = table(&[
        (signal_bar(), 49_948.0, 49_949.0),
        (
            bar(1, 49_949.0, 49_960.0, 49_945.0, 49_958.0),
            49_958.0,
            49_959.0,
        ),
    ]);
    let r = run(&t.view(), p).unwrap();
    let tr = &r.trades[0];
    assert_eq!((tr.entry_price, tr.entry_maker), (49_950.0, false));
    assert_eq!(tr.fill_ts_ms, T0 + M + 100);
}

#[test]
fn boundary_limit_mode_rests_at_val() {
    let p = Params {
        use_limit_for_entry: true,
        limit_price_mode: LimitPriceMode::Boundary,
        limit_order_timeout_minutes: 2,
        ..params()
    };
    let t = table(&[
        (signal_bar(), 49_950.0, 49_951.0),
        (
            bar(1, 49_951.0, 49_960.0, 49_930.0, 49_940.0),
            49_940.0,
            49_941.0,
        ),
        (
            bar(2, 49_940.0, 49_945.0, 49_899.0, 49_920.0),
            49_920.0,
            49_921.0,
        ),
        (
            bar(3, 49_920.0, 49_925.0, 49_910.0, 49_920.0),
            49_920.0,
            49_921.0,
        ),
    ]);
    let r = run(&t.view(), p).unwrap();
    let tr = &r.trades[0];
    assert_eq!(
        (tr.entry_price, tr.entry_maker, tr.fill_ts_ms),
        (49_900.0, true, T0 + 2 * M + 10_000)
    );
}

#[test]
fn gap_through_stop_fills_at_the_open() {
    let t = table(&[
        (signal_bar(), 49_950.0, 49_951.0),
        (
            bar(1, 49_952.0, 49_960.0, 49_940.0, 49_950.0),
            49_950.0,
            49_951.0,
        ),
        (
            bar(2, 49_800.0, 49_805.0, 49_790.0, 49_800.0),
            49_800.0,
            49_801.0,
        ),
    ]);
    let r = run(&t.view(), params()).unwrap();
    let tr = &r.trades[0];
    assert_eq!(tr.exit_reason, Reason::Stop);
    assert_eq!(tr.exit_price, 49_799.0); // worse of stop 49,818 and open 49,800, - 1 tick
                                         // Without a gap the stop level itself (minus slippage).
    let t = table(&[
        (signal_bar(), 49_950.0, 49_951.0),
        (
            bar(1, 49_952.0, 49_960.0, 49_810.0, 49_850.0),
            49_850.0,
            49_851.0,
        ),
    ]);
    let r = run(&t.view(), params()).unwrap();
    assert_eq!(r.trades[0].exit_price, 49_817.0);
    assert_eq!(r.trades[0].exit_ts_ms, T0 + M + 10_000);
}

#[test]
fn stop_and_target_in_one_minute_worst_case_vs_tick_path() {
    let rows = [
        (signal_bar(), 49_950.0, 49_951.0),
        (
            bar(1, 49_952.0, 50_010.0, 49_810.0, 49_900.0),
            49_900.0,
            49_901.0,
        ),
    ];
    let t = table(&rows);
    let r = run(&t.view(), params()).unwrap();
    assert_eq!(
        (r.trades[0].exit_reason, r.trades[0].exit_price),
        (Reason::Stop, 49_817.0)
    );
    // Tick path: the ticks went up through TP1 first, then down through breakeven.
    let mut t = table(&rows);
    let m1 = T0 + M;
    t.tick_ts = vec![m1 + 1_000, m1 + 10_000, m1 + 20_000, m1 + 30_000];
    t.tick_price = vec![49_960.0, 50_001.0, 49_950.0, 49_810.0];
    t.tick_start = vec![0, 0, 4];
    let p = Params {
        stop_fill_mode: StopFillMode::TickPath,
        ..params()
    };
    let r = run(&t.view(), p).unwrap();
    let tr = &r.trades[0];
    assert_eq!((tr.tp1_price, tr.tp1_ts_ms), (49_999.0, m1 + 10_000));
    assert_eq!(tr.exit_reason, Reason::BreakevenStop);
    assert_eq!((tr.exit_price, tr.exit_ts_ms), (49_949.0, m1 + 20_000)); // 49,950 beyond BE 49,952, -1
}

#[test]
fn funding_paid_at_eight_utc_on_open_positions() {
    let p = Params {
        funding_rate_8h_bps: 1.0,
        ..params()
    };
    let t = table(&[
        (signal_bar(), 49_950.0, 49_951.0), // 07:58 decision
        (
            bar(1, 49_952.0, 49_960.0, 49_940.0, 49_955.0),
            49_955.0,
            49_956.0,
        ), // 07:59 fill
        (
            bar(2, 49_955.0, 49_960.0, 49_940.0, 49_950.0),
            49_950.0,
            49_951.0,
        ), // 08:00 funding
    ]);
    let r = run(&t.view(), p).unwrap();
    let tr = &r.trades[0];
    // Long pays 1.515 BTC × mid 49,955 (last close mark) × 1 bp.
    assert!(
        close(tr.funding, -1.515 * 49_955.0 * 1e-4),
        "{}",
        tr.funding
    );
    assert!(close(r.metrics.funding, tr.funding));
    assert!(close(tr.net_pnl, tr.gross_pnl - tr.fees + tr.funding));
}

#[test]
fn funding_history_replaces_the_fixed_rate() {
    use crate::table::FundingHistory;
    // History instants: 07:58:30 (no position yet: nothing paid) and 08:00 at 3 bp. The
    // fixed 1 bp of the parameters must not be charged on top.
    let p = Params {
        funding_rate_8h_bps: 1.0,
        ..params()
    };
    let t = table(&[
        (signal_bar(), 49_950.0, 49_951.0),
        (
            bar(1, 49_952.0, 49_960.0, 49_940.0, 49_955.0),
            49_955.0,
            49_956.0,
        ),
        (
            bar(2, 49_955.0, 49_960.0, 49_940.0, 49_950.0),
            49_950.0,
            49_951.0,
        ),
    ]);
    let fts = [T0 + 30_000, T0 + 2 * M];
    let frate = [0.01, 0.0003];
    let mut v = t.view();
    v.funding = Some(FundingHistory {
        ts: &fts,
        rate: &frate,
    });
    let r = run(&v, p).unwrap();
    let tr = &r.trades[0];
    assert!(
        close(tr.funding, -1.515 * 49_955.0 * 3e-4),
        "{}",
        tr.funding
    );
    assert!(close(r.metrics.funding, tr.funding));
    // unordered instants are refused
    let bad_ts = [T0 + 2 * M, T0 + 30_000];
    v.funding = Some(FundingHistory {
        ts: &bad_ts,
        rate: &frate,
    });
    assert!(run(&v, p).is_err());
}

#[test]
fn end_of_data_closes_at_last_mark() {
    let t = table(&[
        (signal_bar(), 49_950.0, 49_951.0),
        (
            bar(1, 49_952.0, 49_960.0, 49_940.0, 49_955.0),
            f64::NAN,
            f64::NAN,
        ),
    ]);
    let r = run(&t.view(), params()).unwrap();
    assert_eq!(r.trades[0].exit_reason, Reason::EndOfData);
    assert_eq!(r.trades[0].exit_price, 49_955.0);
}

#[test]
fn bad_tables_are_rejected_with_column_and_row() {
    let mut t = table(&[
        (signal_bar(), 49_950.0, 49_951.0),
        (bar(1, 1.0, 1.0, 1.0, 1.0), 1.0, 1.0),
    ]);
    t.ts_min[1] = t.ts_min[0];
    let e = run(&t.view(), params()).unwrap_err().to_string();
    assert!(e.contains("row 1") && e.contains("ts_min"), "{e}");
    // A gap is fine; a row off the minute grid after it is not.
    let mut t = table(&[
        (signal_bar(), 49_950.0, 49_951.0),
        (bar(1, 1.0, 1.0, 1.0, 1.0), 1.0, 1.0),
        (bar(2, 1.0, 1.0, 1.0, 1.0), 1.0, 1.0),
    ]);
    t.ts_min[1] += 120_000;
    t.ts_min[2] += 120_000;
    t.next_quote_ts[1] += 120_000;
    t.next_quote_ts[2] += 120_000;
    assert!(run(&t.view(), params()).is_ok());
    t.ts_min[2] += 30_000;
    t.next_quote_ts[2] += 30_000;
    let e = run(&t.view(), params()).unwrap_err().to_string();
    assert!(e.contains("row 2") && e.contains("minute boundary"), "{e}");
    let mut t = table(&[(signal_bar(), 49_950.0, 49_951.0)]);
    t.next_quote_ts[0] = T0 + 59_999; // at the close, not after it
    let e = run(&t.view(), params()).unwrap_err().to_string();
    assert!(
        e.contains("next_quote_ts") && e.contains("look ahead"),
        "{e}"
    );
    let mut t = table(&[(signal_bar(), 49_950.0, 49_951.0)]);
    t.vah.pop();
    assert!(run(&t.view(), params())
        .unwrap_err()
        .to_string()
        .contains("`vah`"));
}

const DAY0: i64 = 1_704_067_200_000; // 2024-01-01 00:00 UTC

/// §21.2: no look-ahead — every fill strictly after its decision; deterministic replay.
#[test]
fn synthetic_no_lookahead_and_deterministic() {
    let t = synthetic_table(4 * 1440, 7, DAY0, 0);
    let p = Params::default();
    let a = run(&t.view(), p).unwrap();
    assert!(a.trades.len() > 15, "only {} trades", a.trades.len());
    assert_eq!(a.metrics.lookahead_violations, 0.0);
    for tr in &a.trades {
        assert!(tr.fill_ts_ms > tr.decision_ts_ms, "{tr:?}");
        assert!(tr.exit_ts_ms >= tr.fill_ts_ms, "{tr:?}");
        if tr.exit_reason != Reason::Stop
            && tr.exit_reason != Reason::Tp2
            && tr.exit_reason != Reason::BreakevenStop
        {
            assert!(tr.exit_ts_ms > tr.exit_decision_ts_ms, "{tr:?}");
        }
    }
    let b = run(&t.view(), p).unwrap();
    // (Debug text compares NaN fields as equal, which `==` does not.)
    assert_eq!(format!("{:?}", a.trades), format!("{:?}", b.trades));
    assert_eq!(format!("{:?}", a.metrics), format!("{:?}", b.metrics));
    // Changing the future never changes the past: truncating the table leaves every trade
    // that closed before the cut identical.
    let cut = 3 * 1440;
    let mut short = t.clone();
    for c in [
        &mut short.open,
        &mut short.high,
        &mut short.low,
        &mut short.close,
        &mut short.volume,
        &mut short.vah_trade_dist,
        &mut short.val_trade_dist,
        &mut short.mid_close,
        &mut short.spread_avg,
        &mut short.poc,
        &mut short.vah,
        &mut short.val,
        &mut short.of_1m,
        &mut short.of_norm_1m,
        &mut short.qimb_close,
        &mut short.qimb_ema,
        &mut short.ambiguous_frac,
        &mut short.next_bid,
        &mut short.next_ask,
    ] {
        c.truncate(cut);
    }
    short.ts_min.truncate(cut);
    short.va_valid.truncate(cut);
    short.next_quote_ts.truncate(cut);
    short.low_ts.truncate(cut);
    short.high_ts.truncate(cut);
    let s = run(&short.view(), p).unwrap();
    let limit = t.ts_min[cut - 1];
    let early: Vec<_> = a.trades.iter().filter(|x| x.exit_ts_ms < limit).collect();
    let early_s: Vec<_> = s.trades.iter().filter(|x| x.exit_ts_ms < limit).collect();
    assert_eq!(format!("{early:?}"), format!("{early_s:?}"));
    assert!(early.len() > 10);
}

/// Parameters that make decisions independent of realised P&L, so two cost models trade
/// the same trades (kill switch off, no profit-dependent extension, no breakeven move).
fn same_trades_params() -> Params {
    Params {
        max_daily_loss_pct: 0.0,
        extend_if_profitable: false,
        move_stop_to_breakeven_after_tp1: false,
        ..Params::default()
    }
}

/// §21.3: one tick of slippage never improves net P&L over zero slippage.
#[test]
fn slippage_never_improves_net_pnl() {
    for seed in 1..=4 {
        let t = synthetic_table(5 * 1440, seed, DAY0, 0);
        let p0 = Params {
            slippage_ticks_entry: 0.0,
            slippage_ticks_exit: 0.0,
            ..same_trades_params()
        };
        let p1 = Params {
            slippage_ticks_entry: 1.0,
            slippage_ticks_exit: 1.0,
            ..same_trades_params()
        };
        let (a, b) = (run(&t.view(), p0).unwrap(), run(&t.view(), p1).unwrap());
        assert_eq!(a.trades.len(), b.trades.len());
        assert!(a.trades.len() > 20);
        // Same trades (sizes differ a little: sizing follows equity); every price is
        // worse by the slippage or equal (a marketable limit is capped at its limit).
        for (x, y) in a.trades.iter().zip(&b.trades) {
            assert_eq!(
                (x.decision_ts_ms, x.exit_reason, x.exit_ts_ms),
                (y.decision_ts_ms, y.exit_reason, y.exit_ts_ms)
            );
            let d = x.side as f64;
            assert!(
                d * (y.entry_price - x.entry_price) >= -1e-9,
                "seed {seed}: {x:?} vs {y:?}"
            );
            assert!(
                d * (y.exit_price - x.exit_price) <= 1e-9,
                "seed {seed}: {x:?} vs {y:?}"
            );
            if x.tp1_qty > 0.0 {
                assert!(d * (y.tp1_price - x.tp1_price) <= 1e-9);
            }
        }
        assert!(b.metrics.net_pnl < a.metrics.net_pnl, "seed {seed}");
    }
}

/// §21.3: taker-only fees never beat maker fees on the same trades.
#[test]
fn taker_only_fees_never_beat_maker() {
    for seed in 1..=4 {
        let t = synthetic_table(5 * 1440, seed, DAY0, 0);
        let maker = same_trades_params();
        let taker = Params {
            maker_fee_bps: maker.taker_fee_bps,
            ..maker
        };
        let (a, b) = (
            run(&t.view(), maker).unwrap(),
            run(&t.view(), taker).unwrap(),
        );
        assert_eq!(a.trades.len(), b.trades.len());
        assert!(
            a.metrics.n_limit_fills > 0.0,
            "seed {seed}: no maker fills to compare"
        );
        for (x, y) in a.trades.iter().zip(&b.trades) {
            assert_eq!(
                (x.decision_ts_ms, x.exit_ts_ms),
                (y.decision_ts_ms, y.exit_ts_ms)
            );
            assert_eq!((x.entry_price, x.exit_price), (y.entry_price, y.exit_price));
            // Taker-only pays the taker rate on every leg's notional; the maker run pays at
            // most that on its own legs (rebates on resting fills).
            let notional = |r: &crate::TradeRecord| {
                let tp1 = if r.tp1_qty > 0.0 {
                    r.tp1_price * r.tp1_qty
                } else {
                    0.0
                };
                r.entry_price * r.qty + tp1 + r.exit_price * (r.qty - r.tp1_qty)
            };
            let rate = taker.taker_fee_bps / 1e4;
            assert!(close(y.fees, rate * notional(y)), "{y:?}");
            assert!(x.fees <= rate * notional(x) + 1e-9, "{x:?}");
            if x.entry_maker {
                assert!(x.fees < rate * notional(x));
            }
        }
        assert!(b.metrics.net_pnl < a.metrics.net_pnl);
    }
}

#[test]
fn batch_equals_single_runs_for_any_thread_count() {
    let t = synthetic_table(2 * 1440, 3, DAY0, 0);
    let mut sets = Vec::new();
    for k in 1..=4u32 {
        for risk in [0.01, 0.02] {
            sets.push(Params {
                accept_outside_k: k,
                risk_pct: risk,
                ..Params::default()
            });
        }
    }
    sets.push(Params {
        risk_pct: 0.0,
        ..Params::default()
    }); // invalid: error in its slot
    let one = run_batch(&t.view(), &sets, 1).unwrap();
    let two = run_batch(&t.view(), &sets, 2).unwrap();
    assert_eq!(one.len(), sets.len());
    for (i, p) in sets.iter().enumerate() {
        if i + 1 == sets.len() {
            assert!(one[i]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("risk_pct"));
            continue;
        }
        // bit patterns: n/a metrics are NaN
        let bits = |m: &crate::Metrics| m.values().map(f64::to_bits);
        let full = run(&t.view(), *p).unwrap().metrics;
        assert_eq!(bits(one[i].as_ref().unwrap()), bits(&full));
        assert_eq!(bits(two[i].as_ref().unwrap()), bits(&full));
        let reference = run_with(
            &t.view(),
            *p,
            RunPath::Reference {
                rows: &t.view().rows(),
            },
            Output::Metrics,
        )
        .map(|r| r.metrics)
        .unwrap();
        assert_eq!(bits(&reference), bits(&full));
    }
}

#[test]
fn metrics_are_consistent_with_the_trade_list() {
    let t = synthetic_table(4 * 1440, 11, DAY0, 0);
    let r = run(&t.view(), Params::default()).unwrap();
    let m = r.metrics;
    let net: f64 = r.trades.iter().map(|x| x.net_pnl).sum();
    assert!(close(m.net_pnl, net));
    assert!(
        close(m.final_equity, 10_000.0 + net),
        "{} vs {}",
        m.final_equity,
        10_000.0 + net
    );
    let wins = r.trades.iter().filter(|x| x.net_pnl > 0.0).count() as f64;
    assert_eq!(m.n_wins, wins);
    assert!(close(m.win_rate, wins / r.trades.len() as f64));
    // Max drawdown from the equity curve by hand.
    let mut peak = 10_000f64;
    let mut dd = 0f64;
    for e in &r.equity {
        peak = peak.max(*e);
        dd = dd.max(peak - e);
    }
    assert!(close(m.max_drawdown, dd));
    assert!(m.spread_paid_mean > 0.0 && m.spread_paid_p90 >= m.spread_paid_p50);
    assert!(m.ambiguous_frac_mean > 0.05 && m.ambiguous_frac_mean < 0.45);
}

#[test]
fn kill_switch_trips_in_a_losing_backtest() {
    // Risking 20 % a trade makes a daily 6 % loss quick.
    let t = synthetic_table(4 * 1440, 5, DAY0, 0);
    let r = run(
        &t.view(),
        Params {
            risk_pct: 0.2,
            max_daily_loss_pct: 0.06,
            ..Params::default()
        },
    )
    .unwrap();
    assert!(r.metrics.n_kill_switch >= 1.0);
    assert!(r.trades.iter().any(|x| x.exit_reason == Reason::KillSwitch));
}

#[test]
fn tick_path_mode_runs_on_synthetic_ticks() {
    let t = synthetic_table(2 * 1440, 9, DAY0, 5);
    let a = run(
        &t.view(),
        Params {
            stop_fill_mode: StopFillMode::TickPath,
            ..Params::default()
        },
    )
    .unwrap();
    let b = run(&t.view(), Params::default()).unwrap();
    assert_eq!(a.metrics.lookahead_violations, 0.0);
    assert!(a.trades.len() > 5 && b.trades.len() > 5);
}
