//! Stage 2 per-minute outputs checked by hand or against brute force: the warm-up gate on
//! `va_valid` (SPEC §16.1) and the distance from VAH / VAL to the minute's nearest traded
//! price (SPEC §6.3).

mod common;
use at_features::engine::run_batch;
use at_features::stage2::{nearest_trade_dist_ticks, FeatureRow, Stage2, Stage2Input};
use at_features::{minute_of, PriceScale, Stage1Config, Stage2Config};
use common::{market, Rng, M};

/// A minute with a quote and the given base-resolution histogram (sorted, no zero bins).
fn minute(ts: i64, hist: &[(i64, i64)]) -> Stage2Input<'_> {
    Stage2Input {
        ts_min: ts,
        mid_close_ticks: 500_000.5,
        spread_close_ticks: Some(1),
        close_ticks: hist.last().map(|b| b.0),
        volume: hist.iter().map(|b| b.1 as f64 * 1e-8).sum(),
        hist,
    }
}

/// Five traded prices around 500,000 ticks, most volume in the middle.
const BUSY: [(i64, i64); 5] = [
    (499_998, 10),
    (499_999, 20),
    (500_000, 40),
    (500_001, 20),
    (500_002, 10),
];

fn feed(cfg: Stage2Config, minutes: i64, t0: i64) -> Vec<FeatureRow> {
    let mut s = Stage2::new(cfg).unwrap();
    (0..minutes)
        .map(|k| s.push(minute(t0 + k * M, &BUSY)).unwrap())
        .collect()
}

#[test]
fn va_is_not_valid_before_the_default_240_minute_warm_up() {
    // min_va_bins is met from the very first minute; the warm-up still gates validity.
    let t0 = 1_700_000_000_000 - 1_700_000_000_000 % M;
    let rows = feed(
        Stage2Config {
            min_va_bins: 3,
            ..Stage2Config::default()
        },
        300,
        t0,
    );
    assert!(
        rows[0].va_bin_count >= 3 && rows[0].vah.is_finite(),
        "{:?}",
        rows[0]
    );
    for (k, r) in rows.iter().enumerate() {
        // the 240-minute window ending at minute k starts at or after the first minute
        assert_eq!(r.va_valid, k >= 239, "minute {k}: {r:?}");
    }
}

#[test]
fn warm_up_window_is_the_longer_of_warmup_and_rolling_window() {
    let t0 = 30 * M;
    let cfg = |warmup_minutes, rolling_window_minutes| Stage2Config {
        min_va_bins: 3,
        warmup_minutes,
        rolling_window_minutes,
        ..Stage2Config::default()
    };
    let first_valid = |rows: &[FeatureRow]| rows.iter().position(|r| r.va_valid);
    // warm-up longer than the profile window
    assert_eq!(first_valid(&feed(cfg(10, 3), 20, t0)), Some(9));
    // profile window longer than the warm-up
    assert_eq!(first_valid(&feed(cfg(2, 7), 20, t0)), Some(6));
    // no warm-up at all and a one-minute window: valid from the first minute
    assert_eq!(first_valid(&feed(cfg(0, 1), 5, t0)), Some(0));
    // validity is still gated by min_va_bins after the warm-up
    let rows = feed(
        Stage2Config {
            min_va_bins: 6,
            ..cfg(2, 2)
        },
        5,
        t0,
    );
    assert!(rows.iter().all(|r| !r.va_valid));
}

#[test]
fn a_hole_in_the_minutes_starts_a_new_segment_from_scratch() {
    let cfg = Stage2Config {
        min_va_bins: 3,
        warmup_minutes: 5,
        rolling_window_minutes: 3,
        ..Stage2Config::default()
    };
    let mut s = Stage2::new(cfg.clone()).unwrap();
    for k in 0..6 {
        s.push(minute(k * M, &BUSY)).unwrap();
    }
    assert!(s.push(minute(6 * M, &BUSY)).unwrap().va_valid);
    // minute 8 does not follow minute 6: a data gap; the warm-up starts again
    let after: Vec<FeatureRow> = (8..20)
        .map(|k| s.push(minute(k * M, &BUSY)).unwrap())
        .collect();
    assert_eq!(s.gaps(), 1);
    assert!(after[..4].iter().all(|r| !r.va_valid), "{after:?}");
    assert!(after[4].va_valid);
    // and the segment is computed exactly as by a fresh engine (sigma, profile, widths)
    let mut fresh = Stage2::new(cfg).unwrap();
    let alone: Vec<FeatureRow> = (8..20)
        .map(|k| fresh.push(minute(k * M, &BUSY)).unwrap())
        .collect();
    assert_eq!(
        format!("{after:?}"),
        format!("{alone:?}"),
        "bit-identical (NaN-aware)"
    );
}

#[test]
fn trade_distance_with_one_tick_bins_is_exact() {
    let h = [(100, 5), (105, 3), (110, 1)];
    assert_eq!(
        nearest_trade_dist_ticks(&h, 105, 1),
        Some(0),
        "a trade at the level"
    );
    assert_eq!(
        nearest_trade_dist_ticks(&h, 100, 1),
        Some(0),
        "at the lowest trade"
    );
    assert_eq!(
        nearest_trade_dist_ticks(&h, 110, 1),
        Some(0),
        "at the highest trade"
    );
    // between two traded prices: the nearer one
    assert_eq!(nearest_trade_dist_ticks(&h, 103, 1), Some(2));
    assert_eq!(nearest_trade_dist_ticks(&h, 107, 1), Some(2));
    assert_eq!(nearest_trade_dist_ticks(&h, 109, 1), Some(1));
    // outside the traded range: the extreme
    assert_eq!(nearest_trade_dist_ticks(&h, 90, 1), Some(10));
    assert_eq!(nearest_trade_dist_ticks(&h, 125, 1), Some(15));
    assert_eq!(nearest_trade_dist_ticks(&[], 100, 1), None, "no trades");
}

#[test]
fn trade_distance_with_wider_base_bins_takes_the_farthest_point() {
    // bins [100, 101] and [104, 105]: only "some trade in the bin" is known
    let h = [(100, 5), (104, 3)];
    assert_eq!(
        nearest_trade_dist_ticks(&h, 100, 2),
        Some(1),
        "the trade may be at 101"
    );
    assert_eq!(
        nearest_trade_dist_ticks(&h, 101, 2),
        Some(1),
        "the trade may be at 100"
    );
    assert_eq!(
        nearest_trade_dist_ticks(&h, 102, 2),
        Some(2),
        "bin [100, 101] at 100"
    );
    assert_eq!(
        nearest_trade_dist_ticks(&h, 103, 2),
        Some(2),
        "bin [104, 105] at 105"
    );
    assert_eq!(nearest_trade_dist_ticks(&h, 110, 2), Some(6));
    assert_eq!(nearest_trade_dist_ticks(&h, 95, 2), Some(6));
    // the bound is never below the true distance of any trade the bins allow
    let h3 = [(99, 1)]; // bin [99, 101] of 3 ticks
    assert_eq!(nearest_trade_dist_ticks(&h3, 100, 3), Some(1));
}

#[test]
fn trade_distance_matches_brute_force() {
    let mut r = Rng::new(11);
    for case in 0..2_000 {
        let k = 1 + r.below(4) as i64;
        let n = r.below(12) as usize;
        let mut edges: Vec<i64> = (0..n).map(|_| (r.below(60) as i64) * k).collect();
        edges.sort_unstable();
        edges.dedup();
        let h: Vec<(i64, i64)> = edges.iter().map(|&b| (b, 1)).collect();
        let level = r.below(80) as i64 - 10;
        let want = h
            .iter()
            .map(|&(b, _)| (b..b + k).map(|p| (p - level).abs()).max().unwrap())
            .min();
        assert_eq!(
            nearest_trade_dist_ticks(&h, level, k),
            want,
            "case {case}: k {k} level {level} {h:?}"
        );
    }
}

/// The engine's distances equal the brute-force distance from the row's VAH / VAL to the
/// raw trade prices of the minute (one-tick base bins), or bound it from above by less than
/// one base bin (two-tick base bins); NaN where the minute has no trades or no valid VA.
#[test]
fn engine_trade_distances_match_the_raw_trades() {
    let t0 = 1_700_000_000_000 - 1_700_000_000_000 % M;
    let (trades, quotes) = market(5, 90, t0);
    for k in [1i64, 2] {
        let c1 = Stage1Config {
            base_bin_ticks: k,
            ..Stage1Config::default()
        };
        let c2 = Stage2Config {
            base_bin_ticks: k,
            rolling_window_minutes: 30,
            warmup_minutes: 30,
            min_va_bins: 5,
            ..Stage2Config::default()
        };
        let scale = PriceScale::new(c2.tick_size);
        let out = run_batch(&c1, &c2, &trades, &quotes).unwrap();
        let (mut checked, mut empty, mut cold, mut above) = (0, 0, 0, 0);
        for (_, f) in &out {
            let prices: Vec<i64> = trades
                .iter()
                .filter(|t| minute_of(t.ts_ms) == f.ts_min)
                .map(|t| t.price_ticks)
                .collect();
            if prices.is_empty() || !f.va_valid {
                assert!(
                    f.vah_trade_dist.is_nan() && f.val_trade_dist.is_nan(),
                    "{f:?}"
                );
                if prices.is_empty() {
                    empty += 1;
                } else {
                    cold += 1;
                }
                continue;
            }
            for (level, got) in [(f.vah, f.vah_trade_dist), (f.val, f.val_trade_dist)] {
                let lv = scale.ticks(level);
                let want = prices.iter().map(|p| (p - lv).abs()).min().unwrap();
                let got = scale.ticks(got);
                if k == 1 {
                    assert_eq!(got, want, "{f:?}");
                } else {
                    assert!(
                        want <= got && got < want + k,
                        "k {k}: {got} vs {want}: {f:?}"
                    );
                    above += i32::from(got > want);
                }
            }
            checked += 1;
        }
        assert!(
            checked > 30 && empty > 0 && cold > 0,
            "{checked} {empty} {cold}"
        );
        assert!(k == 1 || above > 0, "the two-tick bound is exercised");
    }
}
