//! A streaming driver that compacts its minute table decides exactly as one that never
//! does: every decision, equity value, trade and metric bit for bit, in paper mode with
//! limit entries waiting across compactions and with the tick path; a snapshot taken
//! between compactions restores and continues the same; the table stays bounded.

mod common;

use at_backtest::stream::{Decided, StreamingDriver};
use at_strategy::{Params, StopFillMode};
use at_types::{Quote, Trade};
use common::{configs, ticks, Events};

/// Feed every event to each driver in turn; `check` after each event.
fn feed(
    ds: &mut [StreamingDriver],
    trades: &[Trade],
    quotes: &[Quote],
    mut check: impl FnMut(&mut [StreamingDriver], &[Vec<Decided>]),
) -> Vec<Vec<Decided>> {
    let mut outs: Vec<Vec<Decided>> = vec![Vec::new(); ds.len()];
    for ev in Events::new(trades, quotes) {
        for (d, out) in ds.iter_mut().zip(outs.iter_mut()) {
            ev.push(d, out);
        }
        check(ds, &outs);
    }
    outs
}

#[test]
fn a_compacting_driver_decides_as_one_that_never_compacts() {
    let (trades, quotes) = ticks(10, 7);
    let base = Params {
        tick_size: 0.1,
        max_daily_loss_pct: 0.0,
        use_limit_for_entry: true,
        limit_order_timeout_minutes: 3, // orders that wait across compactions
        ..Params::default()
    };
    let tick = Params {
        stop_fill_mode: StopFillMode::TickPath,
        ..base
    };
    let mut traded = 0;
    for p in [base, tick] {
        let (c1, c2) = configs();
        let whole = StreamingDriver::new(c1.clone(), c2.clone(), p, None).unwrap();
        let mut small = StreamingDriver::new(c1.clone(), c2.clone(), p, None).unwrap();
        small.set_keep_rows(Some(2));
        let mut restored_once = false;
        let mut most_rows = 0;
        let mut outs = feed(&mut [whole, small], &trades, &quotes, |ds, outs| {
            most_rows = most_rows.max(ds[1].minutes());
            // halfway: the compacted driver goes through a snapshot and carries on
            if !restored_once && outs[1].len() == 300 {
                let bytes = ds[1].snapshot().unwrap();
                ds[1] = StreamingDriver::restore(&bytes, c1.clone(), c2.clone(), p, None, {
                    at_backtest::stream::FillMode::Paper
                })
                .unwrap();
                restored_once = true;
            }
        });
        assert!(restored_once);
        assert!(most_rows <= 8, "the compacted table held {most_rows} rows");
        let (a, b) = (std::mem::take(&mut outs[0]), std::mem::take(&mut outs[1]));
        assert_eq!(a.len(), b.len());
        assert!(a.len() > 500);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.decision, y.decision);
            assert_eq!(x.equity.to_bits(), y.equity.to_bits());
        }
        let (c1, c2) = configs();
        let mut whole = StreamingDriver::new(c1.clone(), c2.clone(), p, None).unwrap();
        let mut small = StreamingDriver::new(c1, c2, p, None).unwrap();
        small.set_keep_rows(Some(2));
        let mut ds = [whole.clone(), small.clone()];
        feed(&mut ds, &trades, &quotes, |_, _| {});
        [whole, small] = ds;
        let (mut o1, mut o2) = (Vec::new(), Vec::new());
        let (ra, rb) = (
            whole.finish(&mut o1).unwrap(),
            small.finish(&mut o2).unwrap(),
        );
        assert_eq!(o1, o2, "the closing minutes");
        assert_eq!(format!("{:?}", ra.trades), format!("{:?}", rb.trades)); // NaN fields
        assert_eq!(format!("{:?}", ra.metrics), format!("{:?}", rb.metrics));
        // the per-row records of a compacted driver are those of the rows it kept
        let kept = rb.equity.len();
        assert!(kept < ra.equity.len());
        let tail = &ra.equity[ra.equity.len() - kept..];
        assert_eq!(
            tail.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            rb.equity.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        traded += ra.trades.len();
    }
    assert!(traded >= 4, "too few trades to compare: {traded}");
}

/// Without `set_keep_rows` a driver never compacts: a replay's `finish` reports every
/// minute.
#[test]
fn a_driver_compacts_only_when_told() {
    let (trades, quotes) = ticks(2, 3);
    let (c1, c2) = configs();
    let p = Params {
        tick_size: 0.1,
        ..Params::default()
    };
    let mut ds = [StreamingDriver::new(c1, c2, p, None).unwrap()];
    let outs = feed(&mut ds, &trades, &quotes, |_, _| {});
    assert_eq!(ds[0].minutes(), outs[0].len());
    assert!(outs[0].len() > 100);
}
