//! Property tests: rolling histogram = from-scratch histogram at every minute, value-area
//! invariants, batch = streaming bit for bit, and causality (no look-ahead).

mod common;
use at_features::engine::{run_batch, FeatureEngine, MinuteOutput};
use at_features::profile::{value_area, RollingProfile};
use at_features::{QuoteMatch, Stage1Config, Stage2Config};
use common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn from_scratch(
    minutes: &[(i64, Vec<(i64, i64)>)],
    upto: usize,
    window: i64,
    width: Option<i64>,
) -> Vec<(i64, i64)> {
    let t = minutes[upto].0;
    let mut h: BTreeMap<i64, i64> = BTreeMap::new();
    for (ts, hist) in &minutes[..=upto] {
        if *ts > t - window * M {
            for &(e, v) in hist {
                let k = match width {
                    Some(w) => e.div_euclid(w) * w,
                    None => e,
                };
                *h.entry(k).or_insert(0) += v;
            }
        }
    }
    h.into_iter().filter(|(_, v)| *v != 0).collect()
}

fn minutes_strategy() -> impl Strategy<Value = Vec<(i64, Vec<(i64, i64)>)>> {
    prop::collection::vec(
        (
            1i64..4,
            prop::collection::btree_map(-40i64..40, 1i64..1_000_000, 0..12),
        ),
        1..120,
    )
    .prop_map(|v| {
        let mut t = 0;
        let mut drift = 0;
        v.into_iter()
            .map(|(gap, m)| {
                t += gap * M; // gaps of up to 2 missing minutes
                drift += 3;
                (
                    t,
                    m.into_iter().map(|(k, v)| (1_000 + drift + k, v)).collect(),
                )
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn rolling_histogram_equals_from_scratch(
        minutes in minutes_strategy(),
        window in 1i64..40,
        widths in prop::collection::vec(1i64..9, 1..6),
    ) {
        let mut p = RollingProfile::new(window, 1);
        for (i, (ts, hist)) in minutes.iter().enumerate() {
            p.push(*ts, hist);
            prop_assert_eq!(p.base_hist(), from_scratch(&minutes, i, window, None), "minute {}", i);
            if i % 7 == 3 {
                p.rebucket(widths[i % widths.len()]);
            }
            let agg: Vec<(i64, i64)> = p.agg_hist().into_iter().filter(|(_, v)| *v != 0).collect();
            prop_assert_eq!(agg, from_scratch(&minutes, i, window, Some(p.width())));
            let st = p.stats(0.7);
            prop_assert_eq!(st.total, from_scratch(&minutes, i, window, None).iter().map(|x| x.1).sum::<i64>());
        }
    }

    #[test]
    fn value_area_is_contiguous_contains_poc_and_covers(
        vols in prop::collection::vec(0i64..1_000, 1..80),
        frac in 0.05f64..1.0,
    ) {
        let total: i64 = vols.iter().sum();
        match value_area(&vols, 100, 3, frac) {
            None => prop_assert_eq!(total, 0),
            Some(va) => {
                let (l, r, poc) = (((va.val - 100) / 3) as usize, ((va.vah - 100) / 3) as usize, ((va.poc - 100) / 3) as usize);
                prop_assert!(l <= poc && poc <= r);
                prop_assert_eq!(vols[poc], *vols.iter().max().unwrap());
                // contiguous: the VA volume is exactly the sum of every bin between VAL and VAH
                prop_assert_eq!(va.va_volume, vols[l..=r].iter().sum::<i64>());
                prop_assert!(va.va_volume as f64 >= frac * total as f64);
                prop_assert_eq!(va.total, total);
                // minimal: without its last-added edge bin it would fall short (unless it
                // is the POC alone); the last-added bin is one of the two edges
                if l < r {
                    prop_assert!(((va.va_volume - vols[l]) as f64) < frac * total as f64
                        || ((va.va_volume - vols[r]) as f64) < frac * total as f64);
                }
            }
        }
    }
}

fn dbg(out: &[MinuteOutput]) -> Vec<String> {
    out.iter().map(|o| format!("{o:?}")).collect()
}

fn stream(
    c1: &Stage1Config,
    c2: &Stage2Config,
    trades: &[at_features::Trade],
    quotes: &[at_features::Quote],
    seed: u64,
) -> Vec<MinuteOutput> {
    // events fed one by one, same-millisecond trades and quotes in a random interleaving,
    // close_minute called at random points (like a live timer), results collected as they come
    let mut r = common::Rng::new(seed);
    let mut e = FeatureEngine::new(c1.clone(), c2.clone()).unwrap();
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < trades.len() || j < quotes.len() {
        let take_trade = if i == trades.len() {
            false
        } else if j == quotes.len() {
            true
        } else if trades[i].ts_ms == quotes[j].ts_ms {
            r.below(2) == 0
        } else {
            trades[i].ts_ms < quotes[j].ts_ms
        };
        let ts = if take_trade {
            trades[i].ts_ms
        } else {
            quotes[j].ts_ms
        };
        if r.below(50) == 0 {
            // the timer closes every minute that ended before this event
            let m = at_features::minute_of(ts) - M;
            if m >= 0 && e.stage1().last_ts() < m + M {
                out.extend(e.close_minute(m).unwrap());
            }
        }
        if take_trade {
            e.push_trade(trades[i]).unwrap();
            i += 1;
        } else {
            e.push_quote(quotes[j]).unwrap();
            j += 1;
        }
        out.extend(e.take_ready().unwrap());
    }
    out.extend(e.finish().unwrap());
    out
}

fn small_cfg() -> (Stage1Config, Stage2Config) {
    (
        Stage1Config::default(),
        Stage2Config {
            rolling_window_minutes: 30,
            warmup_minutes: 30,
            min_va_bins: 5,
            spread_lookback_minutes: 10,
            use_bvc_fallback: true,
            ..Stage2Config::default()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn batch_and_streaming_are_bit_identical(seed in 0u64..10_000, rule in prop::bool::ANY) {
        let (mut c1, c2) = small_cfg();
        c1.quote_match = if rule { QuoteMatch::AtOrBefore } else { QuoteMatch::StrictlyBefore };
        let (trades, quotes) = market(seed, 45, 1_700_000_000_000);
        prop_assert!(trades.len() > 1_000 && quotes.len() > 1_000);
        let batch = run_batch(&c1, &c2, &trades, &quotes).unwrap();
        prop_assert!(batch.len() >= 40, "{} minutes", batch.len());
        prop_assert!(batch.iter().any(|o| o.1.va_valid));
        let streamed = stream(&c1, &c2, &trades, &quotes, seed ^ 77);
        prop_assert_eq!(dbg(&batch), dbg(&streamed));
        // a contiguous minute grid
        for w in batch.windows(2) {
            prop_assert_eq!(w[1].0.ts_min - w[0].0.ts_min, M);
        }
    }

    #[test]
    fn no_look_ahead(seed in 0u64..10_000, cut_min in 1i64..40) {
        let (c1, c2) = small_cfg();
        let t0 = 1_700_000_000_000;
        let (trades, quotes) = market(seed, 45, t0);
        let full = run_batch(&c1, &c2, &trades, &quotes).unwrap();
        let cut = at_features::minute_of(t0) + cut_min * M; // drop every event at or after
        let tt: Vec<_> = trades.iter().copied().filter(|t| t.ts_ms < cut).collect();
        let qq: Vec<_> = quotes.iter().copied().filter(|q| q.ts_ms < cut).collect();
        let part = run_batch(&c1, &c2, &tt, &qq).unwrap();
        prop_assert!(!part.is_empty());
        let n = part.len();
        prop_assert_eq!(dbg(&full[..n]), dbg(&part));
    }
}

#[test]
fn stage2_from_stored_columns_equals_the_engine() {
    use at_features::columns::{output_columns, stage2_from_columns, Stage2Source};
    let (c1, c2) = small_cfg();
    let (trades, quotes) = market(5, 60, 1_700_000_000_000);
    let out = run_batch(&c1, &c2, &trades, &quotes).unwrap();
    let cols = output_columns(&at_features::PriceScale::new(0.1), &out);
    let f = |n: &str| cols.f64s.iter().find(|(k, _)| *k == n).unwrap().1.clone();
    let i = |n: &str| cols.i64s.iter().find(|(k, _)| *k == n).unwrap().1.clone();
    let (ts, b, a, c, v) = (
        i("ts_min"),
        f("bid_px_close"),
        f("ask_px_close"),
        f("close"),
        f("volume"),
    );
    let (hm, hb, hq) = (i("hist_minute"), i("hist_bin"), i("hist_qty"));
    let src = Stage2Source {
        ts_min: &ts,
        bid_px_close: &b,
        ask_px_close: &a,
        close: &c,
        volume: &v,
        hist_minute: &hm,
        hist_bin: &hb,
        hist_qty: &hq,
    };
    let rows = stage2_from_columns(&c2, &src).unwrap();
    let engine_rows: Vec<String> = out.iter().map(|o| format!("{:?}", o.1)).collect();
    let stored_rows: Vec<String> = rows.iter().map(|r| format!("{r:?}")).collect();
    assert_eq!(engine_rows, stored_rows);
}
