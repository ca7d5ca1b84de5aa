//! Golden tests: SPEC §20.3 (value area) and §20.4 (order-flow inference), through the
//! whole engine, with values from the spec text.

mod common;

use at_features::{Stage1Config, Stage2Config};
use common::*;

/// 12:00 UTC on 2024-01-01.
const T12: i64 = 1_704_110_400_000;

#[test]
fn spec_20_4_order_flow_inference() {
    // bid 50,000 / ask 50,001 in ticks of 0.1
    let quotes = vec![qt(T12 + 500, 0, 500_000, 500_010, 1.0, 1.0)];
    let trades = vec![
        tr(T12 + 1_000, 0, 500_010, 0.1, 0),  // at ask
        tr(T12 + 2_000, 1, 500_000, 0.2, 0),  // at bid
        tr(T12 + 3_000, 2, 500_005, 0.15, 0), // inside: tick rule, 50,000.5 > 50,000 -> +1
        tr(T12 + 4_000, 3, 500_010, 0.25, 0), // at ask
    ];
    let c1 = Stage1Config::default();
    let out = batch(&c1, &Stage2Config::default(), &trades, &quotes).unwrap();
    assert_eq!(out.len(), 1);
    let s = &out[0].0;
    assert!((s.of - 0.3).abs() < 1e-12, "OF_1m = {}", s.of);
    assert!((s.volume - 0.7).abs() < 1e-12);
    assert!(
        (s.of / s.volume - 0.3 / 0.7).abs() < 1e-12,
        "OF_norm = 0.43"
    );
    assert!(
        (s.ambiguous_volume / s.volume - 0.15 / 0.7).abs() < 1e-12,
        "ambiguous = 0.21"
    );
    assert_eq!(s.trade_count, 4);

    // without the fallback the inside trade stays unsigned: OF = 0.1 - 0.2 + 0.25
    let c1 = Stage1Config {
        use_tick_rule_fallback: false,
        ..Stage1Config::default()
    };
    let out = batch(&c1, &Stage2Config::default(), &trades, &quotes).unwrap();
    assert!((out[0].0.of - 0.15).abs() < 1e-12);
    assert!((out[0].0.ambiguous_volume - 0.15).abs() < 1e-12);
}

#[test]
fn spec_20_3_value_area_through_the_engine() {
    // Three minutes of quotes with moving mids (so sigma > 0 and the huge alpha clamps the
    // bin width to its maximum, $100 = 1000 ticks), then the §20.3 volumes, spread inside
    // each $100 bin to exercise aggregation.
    let quotes = vec![
        qt(T12, 0, 500_000, 500_001, 1.0, 1.0),
        qt(T12 + M, 1, 500_100, 500_101, 1.0, 1.0),
        qt(T12 + 2 * M, 2, 499_950, 499_951, 1.0, 1.0),
    ];
    let t = T12 + 2 * M + 1_000;
    let mut trades = Vec::new();
    let bins: [(i64, f64); 6] = [
        (498_000, 100.0),
        (499_000, 250.0),
        (500_000, 400.0),
        (501_000, 300.0),
        (502_000, 150.0),
        (503_000, 50.0),
    ];
    for (i, (edge, vol)) in bins.iter().enumerate() {
        // two prints per bin: at the edge and 55.3 dollars above it
        trades.push(tr(t + 10 * i as i64, 2 * i as i64, *edge, vol * 0.4, 0));
        trades.push(tr(
            t + 10 * i as i64 + 5,
            2 * i as i64 + 1,
            edge + 553,
            vol * 0.6,
            0,
        ));
    }
    // the three minutes of data are the whole warm-up (SPEC §16.1 is not the subject here)
    let c2 = Stage2Config {
        alpha_bin: 1e6,
        bin_width_max_ticks: 1_000,
        min_va_bins: 6,
        rolling_window_minutes: 3,
        warmup_minutes: 0,
        ..Stage2Config::default()
    };
    let out = batch(&Stage1Config::default(), &c2, &trades, &quotes).unwrap();
    let f = &out.last().unwrap().1;
    assert_eq!(f.bin_width, 100.0);
    assert_eq!(f.poc, 50_000.0);
    assert_eq!(f.val, 49_900.0);
    assert_eq!(f.vah, 50_100.0);
    assert!((f.va_coverage - 0.76).abs() < 1e-12, "{}", f.va_coverage);
    assert_eq!(f.va_bin_count, 6);
    assert!(f.va_valid);
    assert!((f.total_volume_4h - 1250.0).abs() < 1e-6);
    // with the spec default min_va_bins = 20 the same profile is invalid
    let out = batch(
        &Stage1Config::default(),
        &Stage2Config {
            min_va_bins: 20,
            ..c2
        },
        &trades,
        &quotes,
    )
    .unwrap();
    assert!(!out.last().unwrap().1.va_valid);
}
