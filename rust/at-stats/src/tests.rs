//! CSCV against a slow, independent implementation (concatenate each half's kept periods,
//! take the Sharpe from scratch, rank by sorting), and the statistics' behaviour on
//! generated return matrices: noise looks overfit, a planted edge does not.

use crate::testing::Rng;
use crate::*;

fn matrix(n: usize, t: usize, seed: u64, edge: &[(usize, f64)]) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    let mut r: Vec<f64> = (0..n * t).map(|_| 0.01 * rng.normal()).collect();
    for &(i, mu) in edge {
        for x in &mut r[i * t..(i + 1) * t] {
            *x += mu * 0.01;
        }
    }
    r
}

/// The reference: every split spelled out period by period.
fn slow_cscv(r: &[f64], t: usize, s: usize, purge: usize) -> Vec<(f64, u32, f64, f64)> {
    let n = r.len() / t;
    let (base, rem) = (t / s, t % s);
    let mut bounds = vec![0];
    for b in 0..s {
        bounds.push(bounds[b] + base + usize::from(b < rem));
    }
    let mut out = Vec::new();
    for mask in 0u32..(1 << s) {
        if mask.count_ones() as usize != s / 2 {
            continue;
        }
        let half = |want: bool| -> Vec<usize> {
            let mut keep = Vec::new();
            for b in 0..s {
                let is = mask >> b & 1 == 1;
                if is != want {
                    continue;
                }
                let after_other = b > 0 && (mask >> (b - 1) & 1 == 1) != is;
                let lo = bounds[b] + if after_other { purge } else { 0 };
                keep.extend(lo..bounds[b + 1]);
            }
            keep
        };
        let (is_p, oos_p) = (half(true), half(false));
        let sr = |i: usize, ps: &[usize]| {
            let xs: Vec<f64> = ps.iter().map(|&p| r[i * t + p]).collect();
            Moments::of(&xs).sharpe()
        };
        let is_sr: Vec<f64> = (0..n).map(|i| sr(i, &is_p)).collect();
        let oos_sr: Vec<f64> = (0..n).map(|i| sr(i, &oos_p)).collect();
        let best = (0..n).fold(0, |b, i| if is_sr[i] > is_sr[b] { i } else { b });
        let mut sorted = oos_sr.clone();
        sorted.sort_by(f64::total_cmp);
        // average 1-based rank of the selected trial's OOS Sharpe
        let first = sorted.iter().position(|&x| x == oos_sr[best]).unwrap();
        let last = sorted.iter().rposition(|&x| x == oos_sr[best]).unwrap();
        let rank = (first + last) as f64 / 2.0 + 1.0;
        let w = rank / (n as f64 + 1.0);
        out.push(((w / (1.0 - w)).ln(), best as u32, is_sr[best], oos_sr[best]));
    }
    out
}

#[test]
fn cscv_equals_the_split_by_split_reference() {
    for (purge, threads, t) in [(0, 1, 60), (2, 2, 61), (1, 3, 47)] {
        let r = matrix(25, t, 7 + purge as u64, &[(3, 0.05)]);
        let cfg = CscvConfig {
            blocks: 8,
            purge,
            threads,
        };
        let got = cscv(&r, t, &cfg).unwrap();
        let want = slow_cscv(&r, t, 8, purge);
        assert_eq!(got.n_splits, 70);
        for (k, &(l, sel, is, oos)) in want.iter().enumerate() {
            assert_eq!(got.selected[k], sel, "split {k}");
            assert!((got.logits[k] - l).abs() < 1e-12, "split {k}");
            assert!((got.is_sharpe[k] - is).abs() < 1e-10, "split {k}");
            assert!((got.oos_sharpe[k] - oos).abs() < 1e-10, "split {k}");
        }
        let pbo = want.iter().filter(|x| x.0 <= 0.0).count() as f64 / 70.0;
        assert_eq!(got.pbo, pbo);
    }
}

#[test]
fn pure_noise_is_overfit_half_the_time() {
    let mut pbos = Vec::new();
    for seed in 0..4 {
        let r = matrix(200, 320, 100 + seed, &[]);
        let cfg = CscvConfig {
            blocks: 16,
            purge: 0,
            threads: 2,
        };
        let p = cscv(&r, 320, &cfg).unwrap();
        assert_eq!(p.n_splits, 12_870);
        pbos.push(p.pbo);
    }
    let mean = pbos.iter().sum::<f64>() / pbos.len() as f64;
    assert!((0.35..0.65).contains(&mean), "{pbos:?}");
}

#[test]
fn a_planted_strong_edge_is_not_overfit() {
    // one trial earns 0.3 sd a day more than the 199 noise trials
    let r = matrix(200, 320, 9, &[(17, 0.3)]);
    let cfg = CscvConfig {
        blocks: 16,
        purge: 1,
        threads: 2,
    };
    let p = cscv(&r, 320, &cfg).unwrap();
    assert!(p.pbo < 0.05, "{}", p.pbo);
    let picked = p.selected.iter().filter(|&&s| s == 17).count();
    assert!(picked as f64 > 0.9 * p.n_splits as f64);
    assert!(p.prob_oos_loss < 0.05);
    let s = sweep_stats(&r, 320, 0.95).unwrap();
    assert_eq!(s.best, 17);
    assert!(s.dsr[17] > 0.95, "{}", s.dsr[17]);
}

#[test]
fn the_best_of_noise_is_deflated() {
    let (n, t) = (1000, 250);
    let r = matrix(n, t, 11, &[]);
    let s = sweep_stats(&r, t, 0.95).unwrap();
    let b = s.best;
    // alone it looks significant; against 1,000 trials it is what luck gives
    assert!(s.psr[b] > 0.99, "psr {}", s.psr[b]);
    assert!(s.dsr[b] < 0.8, "dsr {}", s.dsr[b]);
    assert!(s.trials.n_eff > 0.7 * n as f64, "{:?}", s.trials);
    // the threshold is near the best Sharpe: E[max] of N(0, σ) over N draws
    assert!((s.threshold / s.sharpe[b] - 1.0).abs() < 0.25);
}

#[test]
fn bad_splits_are_refused_with_the_reason() {
    let r = matrix(5, 30, 1, &[]);
    let e = |blocks, purge| {
        cscv(
            &r,
            30,
            &CscvConfig {
                blocks,
                purge,
                threads: 1,
            },
        )
        .unwrap_err()
        .to_string()
    };
    assert!(e(7, 0).contains("even"), "{}", e(7, 0));
    assert!(e(16, 1).contains("leave a block empty"), "{}", e(16, 1));
    let mut bad = r.clone();
    bad[2 * 30 + 4] = f64::NAN;
    let msg = cscv(
        &bad,
        30,
        &CscvConfig {
            blocks: 4,
            purge: 0,
            threads: 1,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("combination 2 period 4"), "{msg}");
}
