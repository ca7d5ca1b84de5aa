//! The volume profile behind one minute's features, for display (the dashboard's
//! histogram view): the same [`RollingProfile`] stage 2 keeps, filled with the stage-1
//! minute histograms of the window that ends at that minute, aggregated at the bin width
//! the stored features applied at that minute.
//!
//! Pitfall: stage 2's bin width at a minute depends on the whole history before it
//! (sigma_240, rebucketing rules), which a caller holding only the window's ticks cannot
//! recompute; the width is therefore an input (the stored `bin_width`). Bin edges are
//! multiples of the width, so the histogram does not depend on where the window starts, and
//! POC / VAH / VAL equal the stored ones.

use crate::profile::{RollingProfile, ValueArea};
use at_types::{AtError, MINUTE_MS};

/// The aggregated histogram at one minute.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileAt {
    /// (lower edge in ticks, volume units), contiguous from the lowest to the highest
    /// occupied bin (zero bins included).
    pub bins: Vec<(i64, i64)>,
    pub va: Option<ValueArea>,
    /// Aggregated bins with non-zero volume (`va_bin_count`).
    pub nonzero_bins: i64,
    pub total: i64,
}

fn bad(location: &str, message: String) -> AtError {
    AtError::InvalidInput {
        location: location.into(),
        message,
    }
}

/// The profile of the `window_minutes` ending at `ts_min` (inclusive), from stage-1
/// histogram rows (`hist_minute`, `hist_bin` ticks, `hist_qty` units; sorted by minute),
/// at `width_ticks`; minutes outside the window are ignored.
pub fn profile_at(
    hist_minute: &[i64],
    hist_bin: &[i64],
    hist_qty: &[i64],
    ts_min: i64,
    window_minutes: i64,
    width_ticks: i64,
    va_fraction: f64,
) -> Result<ProfileAt, AtError> {
    let n = hist_minute.len();
    if hist_bin.len() != n || hist_qty.len() != n {
        return Err(bad(
            "stage-1 histogram",
            format!(
                "hist_minute ({n}), hist_bin ({}) and hist_qty ({}) must have the same length",
                hist_bin.len(),
                hist_qty.len()
            ),
        ));
    }
    if ts_min.rem_euclid(MINUTE_MS) != 0 {
        return Err(bad(
            "ts_min",
            format!("{ts_min} is not a whole minute in ms"),
        ));
    }
    if width_ticks < 1 {
        return Err(bad(
            "bin_width",
            format!("{width_ticks} ticks; must be >= 1"),
        ));
    }
    if window_minutes < 1 {
        return Err(bad(
            "rolling_window_minutes",
            format!("{window_minutes}; must be >= 1"),
        ));
    }
    let first = ts_min - (window_minutes - 1) * MINUTE_MS;
    let mut p = RollingProfile::new(window_minutes, width_ticks);
    let mut hist: Vec<(i64, i64)> = Vec::new();
    let mut i = 0usize;
    while i < n {
        let m = hist_minute[i];
        if i > 0 && m < hist_minute[i - 1] {
            return Err(bad(
                &format!("stage-1 histogram row {i}"),
                format!("minute {m} is out of order"),
            ));
        }
        hist.clear();
        while i < n && hist_minute[i] == m {
            hist.push((hist_bin[i], hist_qty[i]));
            i += 1;
        }
        if (first..=ts_min).contains(&m) {
            p.push(m, &hist);
        }
    }
    let st = p.stats(va_fraction);
    Ok(ProfileAt {
        bins: p.agg_hist(),
        va: st.va,
        nonzero_bins: st.nonzero_bins,
        total: st.total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = MINUTE_MS;

    #[test]
    fn equals_the_rolling_profile_and_ignores_minutes_outside_the_window() {
        // minute k holds volume at ticks 100 + k and 130 - k
        let (mut hm, mut hb, mut hq) = (vec![], vec![], vec![]);
        for k in 0..10i64 {
            for (b, q) in [(100 + k, 5 + k), (130 - k, 7)] {
                hm.push(k * M);
                hb.push(b);
                hq.push(q);
            }
        }
        let got = profile_at(&hm, &hb, &hq, 7 * M, 4, 5, 0.7).unwrap();
        let mut want = RollingProfile::new(4, 5);
        for k in 4..=7i64 {
            want.push(k * M, &[(100 + k, 5 + k), (130 - k, 7)]);
        }
        let st = want.stats(0.7);
        assert_eq!(got.bins, want.agg_hist());
        assert_eq!(got.va, st.va);
        assert_eq!(got.total, (4..=7).map(|k| 5 + k + 7).sum::<i64>());
        assert!(got.bins.iter().all(|(e, _)| e % 5 == 0));
    }

    #[test]
    fn errors_name_the_field() {
        let e = profile_at(&[0], &[1, 2], &[1], 0, 4, 5, 0.7).unwrap_err();
        assert!(e.to_string().contains("hist_bin"), "{e}");
        let e = profile_at(&[0], &[1], &[1], 1, 4, 5, 0.7).unwrap_err();
        assert!(e.to_string().contains("ts_min"), "{e}");
        let e = profile_at(&[0], &[1], &[1], 0, 4, 0, 0.7).unwrap_err();
        assert!(e.to_string().contains("bin_width"), "{e}");
        let e = profile_at(&[M, 0], &[1, 1], &[1, 1], M, 4, 5, 0.7).unwrap_err();
        assert!(e.to_string().contains("out of order"), "{e}");
    }

    /// At every minute of a random walk with changing bin widths (and minutes without
    /// trades), the profile at the applied width equals what stage 2 reported.
    #[test]
    fn equals_stage_2_at_its_applied_width() {
        use crate::stage2::{Stage2, Stage2Input};
        use crate::{units_to_size, PriceScale, Stage2Config};
        let cfg = Stage2Config {
            rolling_window_minutes: 30,
            warmup_minutes: 30,
            rebucket_interval_minutes: 5,
            alpha_bin: 40.0,
            ..Stage2Config::default()
        };
        let scale = PriceScale::new(cfg.tick_size);
        let mut s = Stage2::new(cfg.clone()).unwrap();
        let (mut hm, mut hb, mut hq) = (vec![], vec![], vec![]);
        let (mut x, mut mid) = (0x2545_f491_4f6c_dd1d_u64, 500_000i64);
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n) as i64
        };
        let t0 = 1_700_000_000_000 / M * M;
        let mut widths = std::collections::BTreeSet::new();
        for k in 0..200i64 {
            let ts = t0 + k * M;
            mid += rnd(41) - 20;
            let mut hist: Vec<(i64, i64)> = Vec::new();
            if k % 7 != 3 {
                for b in mid - 15..=mid + 15 {
                    let q = rnd(4) * rnd(1_000);
                    if q > 0 {
                        hist.push((b, q));
                    }
                }
            }
            for &(b, q) in &hist {
                hm.push(ts);
                hb.push(b);
                hq.push(q);
            }
            let row = s
                .push(Stage2Input {
                    ts_min: ts,
                    mid_close_ticks: mid as f64 + 0.5,
                    spread_close_ticks: Some(1),
                    close_ticks: hist.last().map(|h| h.0),
                    volume: 0.0,
                    hist: &hist,
                })
                .unwrap();
            widths.insert(row.bin_width_ticks);
            let w = row.bin_width_ticks;
            let p = profile_at(&hm, &hb, &hq, ts, 30, w, cfg.va_fraction).unwrap();
            let px =
                |f: fn(&ValueArea) -> i64| p.va.as_ref().map_or(f64::NAN, |v| scale.price(f(v)));
            let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
            assert!(same(px(|v| v.poc), row.poc), "poc at minute {k}");
            assert!(same(px(|v| v.vah), row.vah), "vah at minute {k}");
            assert!(same(px(|v| v.val), row.val), "val at minute {k}");
            assert_eq!(
                p.nonzero_bins, row.va_bin_count,
                "va_bin_count at minute {k}"
            );
            assert_eq!(
                units_to_size(p.total),
                row.total_volume_4h,
                "total at minute {k}"
            );
            assert_eq!(p.bins.iter().map(|b| b.1).sum::<i64>(), p.total);
        }
        assert!(widths.len() >= 3, "the widths should change: {widths:?}");
    }

    #[test]
    fn an_empty_window_has_no_value_area() {
        let p = profile_at(&[0], &[1], &[3], 100 * M, 4, 5, 0.7).unwrap();
        assert_eq!((p.bins.len(), p.va, p.total), (0, None, 0));
    }
}
