//! The streaming driver (ticks in, one event at a time) against the batch backtest of the
//! same ticks (features in one batch run → feature columns → minute table → `run`): every
//! trade, fill, equity value and decision must be bit-identical, for market and limit
//! entries, with and without the tick path, with a funding history.

mod common;

use at_backtest::features::{minute_table, FeatureColumns};
use at_backtest::stream::{Decided, FillMode, StreamingDriver};
use at_backtest::{run, run_with, BacktestResult, Output, RunPath};
use at_features::columns::output_columns;
use at_features::engine::run_batch;
use at_features::PriceScale;
use at_strategy::{ExitKind, Params, Permission, Reason, StopFillMode};
use at_types::{Quote, Trade};
use common::{configs, ticks, Events, DAY0, HOUR};

fn tick_path_columns(trades: &[Trade], ts_min: &[i64]) -> (Vec<i64>, Vec<f64>, Vec<u32>) {
    let scale = PriceScale::new(0.1);
    let ts: Vec<i64> = trades.iter().map(|t| t.ts_ms).collect();
    let px: Vec<f64> = trades.iter().map(|t| scale.price(t.price_ticks)).collect();
    let mut start: Vec<u32> = ts_min
        .iter()
        .map(|m| ts.partition_point(|&x| x < *m) as u32)
        .collect();
    start.push(ts.partition_point(|&x| x < ts_min[ts_min.len() - 1] + 60_000) as u32);
    (ts, px, start)
}

fn batch(
    trades: &[Trade],
    quotes: &[Quote],
    p: Params,
    funding: Option<&(Vec<i64>, Vec<f64>)>,
) -> BacktestResult {
    let (c1, c2) = configs();
    let out = run_batch(&c1, &c2, trades, quotes).unwrap();
    let cols = output_columns(&PriceScale::new(c1.tick_size), &out);
    let fc = FeatureColumns::from_columns(&cols).unwrap();
    let mut t = minute_table(&fc, c2.use_bvc_fallback).unwrap();
    if p.stop_fill_mode == StopFillMode::TickPath {
        (t.tick_ts, t.tick_price, t.tick_start) = tick_path_columns(trades, &t.ts_min);
    }
    let mut v = t.view();
    if let Some((ts, rate)) = funding {
        v.funding = Some(at_backtest::table::FundingHistory { ts, rate });
    }
    let r = run(&v, p).unwrap();
    let reference = run_with(&v, p, RunPath::Reference { rows: &[] }, Output::Full).unwrap();
    assert_eq!(format!("{r:?}"), format!("{reference:?}"));
    r
}

fn stream(
    trades: &[Trade],
    quotes: &[Quote],
    p: Params,
    funding: Option<&(Vec<i64>, Vec<f64>)>,
) -> (BacktestResult, Vec<Decided>) {
    let (c1, c2) = configs();
    let mut d = StreamingDriver::new(c1, c2, p, funding.cloned()).unwrap();
    let mut out = Vec::new();
    // one event at a time, quotes first within a millisecond (as the batch feed)
    for ev in Events::new(trades, quotes) {
        ev.push(&mut d, &mut out);
    }
    let r = d.finish(&mut out).unwrap();
    (r, out)
}

fn same(a: &BacktestResult, b: &BacktestResult, what: &str) {
    assert_eq!(a.trades.len(), b.trades.len(), "{what}: trade count");
    for (x, y) in a.trades.iter().zip(&b.trades) {
        assert_eq!(format!("{x:?}"), format!("{y:?}"), "{what}: trade");
    }
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.equity), bits(&b.equity), "{what}: equity");
    assert_eq!(a.decisions, b.decisions, "{what}: decisions");
    assert_eq!(
        format!("{:?}", a.metrics),
        format!("{:?}", b.metrics),
        "{what}: metrics"
    );
}

#[test]
fn a_streamed_day_equals_its_batch_backtest() {
    let (trades, quotes) = ticks(10, 7);
    let base = Params {
        tick_size: 0.1,
        max_daily_loss_pct: 0.0,
        ..Params::default()
    };
    // hourly instants (a made-up venue), so that positions cross some of them
    let funding: (Vec<i64>, Vec<f64>) =
        ((1..10).map(|h| DAY0 + h * HOUR).collect(), vec![0.0003; 9]);
    let cases = [
        (
            "market",
            Params {
                use_limit_for_entry: false,
                ..base
            },
            None,
        ),
        (
            "limit",
            Params {
                use_limit_for_entry: true,
                ..base
            },
            None,
        ),
        (
            "market+tick_path",
            Params {
                use_limit_for_entry: false,
                stop_fill_mode: StopFillMode::TickPath,
                ..base
            },
            None,
        ),
        (
            "limit+tick_path+funding",
            Params {
                use_limit_for_entry: true,
                stop_fill_mode: StopFillMode::TickPath,
                ..base
            },
            Some(&funding),
        ),
    ];
    let mut traded = 0;
    for (what, p, f) in cases {
        let b = batch(&trades, &quotes, p, f);
        let (s, decided) = stream(&trades, &quotes, p, f);
        same(&b, &s, what);
        assert_eq!(
            decided.len(),
            b.decisions.len(),
            "{what}: one report per minute"
        );
        for (k, d) in decided.iter().enumerate() {
            assert_eq!(d.decision.ts_min, b.decisions.ts_min[k], "{what}");
            assert_eq!(d.equity.to_bits(), b.equity[k].to_bits(), "{what}");
        }
        traded += b.trades.len();
        if f.is_some() {
            assert!(
                b.metrics.funding != 0.0 || b.trades.is_empty(),
                "{what}: funding"
            );
        }
    }
    eprintln!("trades compared: {traded}");
    assert!(traded >= 8, "too few trades to compare: {traded}");
}

/// One fill as the exchange would report it.
#[derive(Debug, Clone, Copy)]
enum Report {
    Entry {
        ts: i64,
        price: f64,
        qty: f64,
        fee: f64,
        maker: bool,
    },
    Exit {
        kind: ExitKind,
        ts: i64,
        price: f64,
        qty: f64,
        fee: f64,
    },
}

impl Report {
    fn ts(&self) -> i64 {
        match *self {
            Report::Entry { ts, .. } | Report::Exit { ts, .. } => ts,
        }
    }
}

/// The fills of a paper run, as an exchange would have reported them.
fn reports_of(r: &BacktestResult, p: &Params) -> Vec<Report> {
    let fee = |px: f64, qty: f64, maker: bool| {
        px * qty
            * if maker {
                p.maker_fee_bps
            } else {
                p.taker_fee_bps
            }
            / 1e4
    };
    let mut out = Vec::new();
    for t in &r.trades {
        out.push(Report::Entry {
            ts: t.fill_ts_ms,
            price: t.entry_price,
            qty: t.qty,
            fee: fee(t.entry_price, t.qty, t.entry_maker),
            maker: t.entry_maker,
        });
        let target_maker = !p.use_market_for_exit;
        if t.tp1_qty > 0.0 {
            out.push(Report::Exit {
                kind: ExitKind::Tp1,
                ts: t.tp1_ts_ms,
                price: t.tp1_price,
                qty: t.tp1_qty,
                fee: fee(t.tp1_price, t.tp1_qty, target_maker),
            });
        }
        let rest = ((t.qty - t.tp1_qty) / p.qty_step).round() * p.qty_step;
        let (kind, maker) = match t.exit_reason {
            Reason::EndOfData => continue, // closed by `finish`, as in the paper run
            Reason::Stop | Reason::BreakevenStop => (ExitKind::Stop, false),
            Reason::Tp2 => (ExitKind::Tp2, target_maker),
            _ => (ExitKind::Market, false),
        };
        out.push(Report::Exit {
            kind,
            ts: t.exit_ts_ms,
            price: t.exit_price,
            qty: rest,
            fee: fee(t.exit_price, rest, maker),
        });
    }
    out.sort_by_key(|r| r.ts());
    out
}

/// Live mode: the same decisions and the same book when the exchange reports the fills
/// the fill model made (reported as time passes them, before their minute closes).
#[test]
fn external_fills_book_like_the_fill_model() {
    let (trades, quotes) = ticks(10, 7);
    let p = Params {
        tick_size: 0.1,
        max_daily_loss_pct: 0.0,
        use_limit_for_entry: true,
        funding_rate_8h_bps: 0.0, // funding is reported separately in live mode
        ..Params::default()
    };
    let (paper, _) = stream(&trades, &quotes, p, None);
    let reports = reports_of(&paper, &p);
    assert!(paper.trades.len() >= 8, "{}", paper.trades.len());
    let (c1, c2) = configs();
    let mut d = StreamingDriver::with_mode(c1, c2, p, None, FillMode::External).unwrap();
    let mut out = Vec::new();
    let mut k = 0;
    for ev in Events::new(&trades, &quotes) {
        let ts = ev.ts_ms();
        // report every fill time has passed, before the event that may close its minute
        while k < reports.len() && reports[k].ts() < ts {
            match reports[k] {
                Report::Entry {
                    ts,
                    price,
                    qty,
                    fee,
                    maker,
                } => {
                    assert!(d.entry_fill(ts, price, qty, fee, maker, None).unwrap());
                }
                Report::Exit {
                    kind,
                    ts,
                    price,
                    qty,
                    fee,
                } => {
                    d.exit_fill(kind, ts, price, qty, fee).unwrap();
                }
            }
            k += 1;
        }
        ev.push(&mut d, &mut out);
    }
    assert_eq!(k, reports.len());
    let live = d.finish(&mut out).unwrap();
    // the book and the decisions are the same; what the exchange's price already holds
    // (slippage) and the quote at the fill (spread) are not known to a report
    assert_eq!(live.trades.len(), paper.trades.len());
    for (a, b) in live.trades.iter().zip(&paper.trades) {
        let mut b = b.clone();
        b.slippage_cost = 0.0;
        b.entry_spread = a.entry_spread;
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&live.equity), bits(&paper.equity));
    assert_eq!(live.decisions, paper.decisions);
    assert_eq!(
        live.metrics.net_pnl.to_bits(),
        paper.metrics.net_pnl.to_bits()
    );
}

/// Partial entry fills accumulate to the order's quantity at the average price; an order
/// that ends part-filled opens with what filled; unexplained reports halt the driver.
#[test]
fn partial_and_unexplained_external_fills() {
    let (trades, quotes) = ticks(10, 7);
    let p = Params {
        tick_size: 0.1,
        max_daily_loss_pct: 0.0,
        use_limit_for_entry: false,
        funding_rate_8h_bps: 0.0,
        ..Params::default()
    };
    let (c1, c2) = configs();
    let mut d =
        StreamingDriver::with_mode(c1.clone(), c2.clone(), p, None, FillMode::External).unwrap();
    let mut out: Vec<Decided> = Vec::new();
    // nothing decided yet: a fill cannot be explained
    assert!(d
        .entry_fill(DAY0, 42_000.0, 0.01, 0.0, false, None)
        .is_err());
    assert!(d.halted().is_some());

    let mut d = StreamingDriver::with_mode(c1, c2, p, None, FillMode::External).unwrap();
    let mut order = None;
    let mut events = Events::new(&trades, &quotes);
    while order.is_none() {
        let Some(ev) = events.next() else { break };
        let before = out.len();
        ev.push(&mut d, &mut out);
        order = out[before..].iter().find_map(|x| x.decision.entry);
    }
    let o = order.expect("an entry is decided in 10 hours");
    assert!(o.qty_steps >= 4, "{o:?}");
    let now = out.last().unwrap().decision.ts_min + 60_000 + 10;
    let q1 = ((o.qty_steps / 2) as f64) * p.qty_step;
    let q2 = ((o.qty_steps - o.qty_steps / 2) as f64) * p.qty_step;
    let position = |d: &StreamingDriver| d.core().unwrap().kernel().position().copied();

    // two partial fills complete the order at the average price, fees summed
    let mut a = d.clone();
    assert!(!a.entry_fill(now, 42_000.0, q1, 1.0, false, None).unwrap());
    assert!(
        position(&a).is_none(),
        "not open before the order is filled"
    );
    assert!(a
        .entry_fill(now + 5, 42_010.0, q2, 2.0, false, None)
        .unwrap());
    let pos = position(&a).unwrap();
    assert_eq!(pos.qty_steps, o.qty_steps);
    let avg = (42_000.0 * q1 + 42_010.0 * q2) / (o.qty_steps as f64 * p.qty_step);
    assert!(
        (pos.entry_price - avg).abs() < 1e-9,
        "{} vs {avg}",
        pos.entry_price
    );
    assert_eq!(pos.fees, 3.0);

    // the order ends part-filled: the position is what filled, TP1's share recomputed
    let mut b = d.clone();
    b.entry_fill(now, 42_000.0, q1, 1.0, false, None).unwrap();
    b.entry_end(now + 30_000, None).unwrap();
    let pos = position(&b).unwrap();
    assert_eq!(pos.qty_steps, o.qty_steps / 2);
    assert!(pos.tp1_steps < pos.qty_steps);

    // the order ends unfilled: nothing open, nothing working
    let mut c = d.clone();
    c.entry_end(now, None).unwrap();
    assert!(position(&c).is_none());
    assert!(c.core().unwrap().kernel().working_entry().is_none());

    // unexplained: a market exit with no position, more than the order, off the qty grid
    let mut e = d.clone();
    assert!(e
        .exit_fill(ExitKind::Market, now, 42_000.0, q1, 0.0)
        .is_err());
    assert!(e.halted().is_some());
    let mut f = d.clone();
    assert!(f
        .entry_fill(
            now,
            42_000.0,
            (o.qty_steps + 1) as f64 * p.qty_step,
            0.0,
            false,
            None
        )
        .is_err());
    let mut g = d.clone();
    assert!(g
        .entry_fill(now, 42_000.0, 0.0005, 0.0, false, None)
        .is_err());
    assert!(g.halted().unwrap().contains("multiple"), "{:?}", g.halted());
}

#[test]
fn a_stream_with_a_data_gap_equals_its_batch_backtest() {
    // 14 hours with the events of 06:00-06:40 removed: a 40-minute hole, then a new
    // segment that warms up again
    let (trades, quotes) = ticks(14, 11);
    let hole = |ts: i64| (DAY0 + 6 * HOUR..DAY0 + 6 * HOUR + 40 * 60_000).contains(&ts);
    let trades: Vec<Trade> = trades.into_iter().filter(|t| !hole(t.ts_ms)).collect();
    let quotes: Vec<Quote> = quotes.into_iter().filter(|q| !hole(q.ts_ms)).collect();
    let p = Params {
        tick_size: 0.1,
        max_daily_loss_pct: 0.0,
        use_limit_for_entry: false,
        ..Params::default()
    };
    let b = batch(&trades, &quotes, p, None);
    let (s, _) = stream(&trades, &quotes, p, None);
    same(&b, &s, "gap");
    assert_eq!(b.metrics.n_gaps, 1.0);
    assert_eq!(
        b.metrics.gap_minutes,
        40.0 - 5.0,
        "5 quiet minutes, then the hole"
    );
    assert!(!b.trades.is_empty());
}

/// The race of live trading: the kernel cancels its working entry (permission withdrawn,
/// kill switch) while the exchange fills it, or the graph restarts and decides again
/// before the fills of the time it was down arrive. The fill is real: it opens the
/// position the order would have opened; a part-filled cancelled order opens with what
/// filled once its end is reported; a report naming no known order halts. (Before this,
/// the first case halted the driver: "entry fill without a working entry order".)
#[test]
fn a_cancelled_entry_the_exchange_filled_opens_its_position() {
    let (trades, quotes) = ticks(10, 7);
    let p = Params {
        tick_size: 0.1,
        max_daily_loss_pct: 0.0,
        use_limit_for_entry: true,
        funding_rate_8h_bps: 0.0,
        ..Params::default()
    };
    let (c1, c2) = configs();
    let mut d =
        StreamingDriver::with_mode(c1.clone(), c2.clone(), p, None, FillMode::External).unwrap();
    let mut out: Vec<Decided> = Vec::new();
    let mut events = Events::new(&trades, &quotes);
    let mut feed = |d: &mut StreamingDriver, out: &mut Vec<Decided>| {
        events
            .next()
            .expect("the generated hours hold the case")
            .push(d, out);
    };
    let mut order = None;
    while order.is_none() {
        let before = out.len();
        feed(&mut d, &mut out);
        order = out[before..]
            .iter()
            .find_map(|x| x.decision.entry.map(|o| (o, x.decision.ts_min)));
    }
    let (o, decided) = order.expect("an entry is decided in 10 hours");
    assert!(o.qty_steps >= 4, "{o:?}");
    // the operator withdraws the permission: the next decided minute cancels the entry
    d.set_permission(Permission::Blocked);
    let n = out.len();
    while out.len() == n {
        feed(&mut d, &mut out);
    }
    assert!(out[n].decision.cancel_entry, "{:?}", out[n].decision);
    let core = d.core().unwrap();
    assert!(core.kernel().working_entry().is_none());
    assert_eq!(core.cancelled_entries(), 1);
    let now = out[n].decision.ts_min + 60_000 + 10;
    let qty = o.qty_steps as f64 * p.qty_step;
    let q1 = ((o.qty_steps / 2) as f64) * p.qty_step;
    let position = |d: &StreamingDriver| d.core().unwrap().kernel().position().copied();

    // filled in full before the cancel arrived: the order's position, stop and targets
    let mut a = d.clone();
    assert!(a
        .entry_fill(now, 42_000.0, qty, 1.0, true, Some(decided))
        .unwrap());
    let pos = position(&a).expect("the fill opened the position");
    assert_eq!(pos.qty_steps, o.qty_steps);
    assert_eq!(pos.side, o.side);
    assert_eq!(pos.stop, o.stop);
    assert_eq!(a.core().unwrap().cancelled_entries(), 0);
    assert!(a.halted().is_none());
    // without the order named, the only cancelled one is meant
    let mut a2 = d.clone();
    assert!(a2.entry_fill(now, 42_000.0, qty, 1.0, true, None).unwrap());
    assert_eq!(position(&a2).unwrap().qty_steps, o.qty_steps);

    // part-filled, then the cancel took the rest: open with what filled at the end
    let mut b = d.clone();
    assert!(!b
        .entry_fill(now, 42_000.0, q1, 1.0, true, Some(decided))
        .unwrap());
    assert!(position(&b).is_none());
    b.entry_end(now + 5, Some(decided)).unwrap();
    assert_eq!(position(&b).unwrap().qty_steps, o.qty_steps / 2);

    // cancelled with nothing filled: dropped, nothing open
    let mut c = d.clone();
    c.entry_end(now, Some(decided)).unwrap();
    assert!(position(&c).is_none());
    assert_eq!(c.core().unwrap().cancelled_entries(), 0);

    // a fill naming an order that was never decided halts
    let mut e = d.clone();
    assert!(e
        .entry_fill(now, 42_000.0, qty, 1.0, true, Some(decided + 60_000))
        .is_err());
    assert!(
        e.halted().unwrap().contains("decided at"),
        "{:?}",
        e.halted()
    );

    // the cancelled order survives a snapshot
    let bytes = d.snapshot().unwrap();
    let mut r = StreamingDriver::restore(&bytes, c1, c2, p, None, FillMode::External).unwrap();
    assert!(r
        .entry_fill(now, 42_000.0, qty, 1.0, true, Some(decided))
        .unwrap());
    assert_eq!(position(&r).unwrap().qty_steps, o.qty_steps);
}
