//! The streaming driver (ticks in, one event at a time) against the batch backtest of the
//! same ticks (features in one batch run → feature columns → minute table → `run`): every
//! trade, fill, equity value and decision must be bit-identical, for market and limit
//! entries, with and without the tick path, with a funding history.

use at_backtest::features::{minute_table, FeatureColumns};
use at_backtest::stream::{Decided, StreamingDriver};
use at_backtest::{run, run_with, BacktestResult, Output, RunPath};
use at_features::columns::output_columns;
use at_features::engine::run_batch;
use at_features::{PriceScale, Stage1Config, Stage2Config};
use at_strategy::{Params, StopFillMode};
use at_synth::gen::Generator;
use at_synth::params::SynthParams;
use at_types::{Quote, Trade};

const DAY0: i64 = 1_704_067_200_000; // 2024-01-01 00:00 UTC
const HOUR: i64 = 3_600_000;

fn ticks(hours: i64, seed: u64) -> (Vec<Trade>, Vec<Quote>) {
    let mut g = Generator::new(seed, DAY0, SynthParams::default()).unwrap();
    let b = g.generate_until(DAY0 + hours * HOUR).unwrap();
    let trades = (0..b.n_trades())
        .map(|i| {
            let mut t = b.trade(i);
            t.size *= 0.001;
            t
        })
        .collect();
    let quotes = (0..b.n_quotes())
        .map(|i| {
            let mut q = b.quote(i);
            q.bid_sz *= 0.001;
            q.ask_sz *= 0.001;
            q
        })
        .collect();
    (trades, quotes)
}

fn configs() -> (Stage1Config, Stage2Config) {
    let c1 = Stage1Config::default();
    let c2 = Stage2Config {
        rolling_window_minutes: 120,
        ..Stage2Config::default()
    };
    (c1, c2)
}

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
    let fc = FeatureColumns::gather(
        |n| cols.f64s.iter().find(|x| x.0 == n).map(|x| x.1.as_slice()),
        |n| cols.i64s.iter().find(|x| x.0 == n).map(|x| x.1.as_slice()),
        |n| cols.bools.iter().find(|x| x.0 == n).map(|x| x.1.as_slice()),
    )
    .unwrap();
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
    let (mut i, mut j) = (0, 0);
    while i < trades.len() || j < quotes.len() {
        let quote_next =
            j < quotes.len() && (i == trades.len() || quotes[j].ts_ms <= trades[i].ts_ms);
        if quote_next {
            d.push_quote(quotes[j], &mut out).unwrap();
            j += 1;
        } else {
            d.push_trade(trades[i], &mut out).unwrap();
            i += 1;
        }
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
