//! How many independent trials a sweep made: the N of the deflated Sharpe's expected
//! maximum. A grid of 10,000 combinations is not 10,000 independent experiments: a
//! neighbourhood of near-identical parameter sets trades the same days the same way.
//!
//! Estimator: the effective number of a set of correlated series from their mean squared
//! correlation, `N_eff = N / (1 + (N − 1)·ρ̄²)`, the participation ratio `(Σλ)² / Σλ²` of
//! the correlation matrix in the equicorrelated case. Why this one:
//! - k clusters of identical strategies read as k (ρ² is 1 inside a cluster, 0 across),
//!   where the mean correlation (`ρ̄ + (1 − ρ̄)·N`, the other common choice) reads as about
//!   N, because it averages positive and negative correlations away (a long and a short
//!   variant of one rule are one trial, not two);
//! - it needs only `Σ r²` over all pairs, which is `‖ZᵀZ‖²_F` for the standardised T × N
//!   returns Z: O(N·T²) through the T × T dual, never the N × N matrix;
//! - sample correlations of independent series are not 0: `E[r²] = 1/(T − 1)`. Uncorrected,
//!   any N independent series over T days would read as about T − 1 trials, so ρ̄² is taken
//!   net of that noise: `(r̄² − 1/(T−1)) / (1 − 1/(T−1))`, floored at 0.
//!
//! Constant series (combinations that never trade) have no correlation; they are all the
//! same series and count as one trial together.

/// The effective number of trials and what it was computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EffectiveTrials {
    pub n_eff: f64,
    /// Trials with a constant return series (counted once, together).
    pub n_flat: usize,
    /// Mean squared correlation over all pairs of non-constant trials, as measured.
    pub mean_sq_corr: f64,
    /// The same, net of the sampling noise `1/(T − 1)` (what `n_eff` uses).
    pub mean_sq_corr_net: f64,
}

/// `returns` is N × T row-major (trial i's T returns at `i*t .. (i+1)*t`).
pub fn effective_trials(returns: &[f64], t: usize) -> EffectiveTrials {
    assert!(
        t > 0 && returns.len().is_multiple_of(t),
        "returns are N x T"
    );
    let mut gram = vec![0.0f64; t * t];
    let mut z = vec![0.0f64; t];
    let (mut m, mut n_flat) = (0usize, 0usize);
    for row in returns.chunks_exact(t) {
        let mean = row.iter().sum::<f64>() / t as f64;
        let ss: f64 = row.iter().map(|x| (x - mean) * (x - mean)).sum();
        if ss <= 0.0 || !ss.is_finite() {
            n_flat += 1;
            continue;
        }
        let inv = 1.0 / ss.sqrt();
        for (zi, x) in z.iter_mut().zip(row) {
            *zi = (x - mean) * inv;
        }
        m += 1;
        // upper triangle of Z'Z
        for a in 0..t {
            let za = z[a];
            let g = &mut gram[a * t..(a + 1) * t];
            for b in a..t {
                g[b] += za * z[b];
            }
        }
    }
    let flat_trials = usize::from(n_flat > 0);
    if m < 2 || t < 3 {
        return EffectiveTrials {
            n_eff: (m + flat_trials).max(1) as f64,
            n_flat,
            mean_sq_corr: f64::NAN,
            mean_sq_corr_net: f64::NAN,
        };
    }
    let mut fro = 0.0;
    for a in 0..t {
        for b in a..t {
            let g = gram[a * t + b];
            fro += if a == b { g * g } else { 2.0 * g * g };
        }
    }
    let mf = m as f64;
    // Σ_{i,j} r_ij² = ‖Z'Z‖²_F; the diagonal holds m ones
    let mean_sq = ((fro - mf) / (mf * (mf - 1.0))).clamp(0.0, 1.0);
    let noise = 1.0 / (t as f64 - 1.0);
    let net = ((mean_sq - noise) / (1.0 - noise)).max(0.0);
    let n_eff = mf / (1.0 + (mf - 1.0) * net);
    EffectiveTrials {
        n_eff: n_eff + flat_trials as f64,
        n_flat,
        mean_sq_corr: mean_sq,
        mean_sq_corr_net: net,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    fn noise(n: usize, t: usize, seed: u64) -> Vec<f64> {
        let mut rng = Rng::new(seed);
        (0..n * t).map(|_| rng.normal() * 0.01).collect()
    }

    #[test]
    fn independent_series_count_as_themselves_not_as_the_days() {
        let (n, t) = (300, 60);
        let e = effective_trials(&noise(n, t, 1), t);
        assert!(e.n_eff > 0.7 * n as f64, "{e:?}");
        assert!(e.n_eff <= n as f64, "{e:?}");
        // uncorrected, the same data would read as about T − 1
        let raw = n as f64 / (1.0 + (n as f64 - 1.0) * e.mean_sq_corr);
        assert!(raw < 2.0 * t as f64, "{raw}");
    }

    #[test]
    fn clusters_of_near_identical_strategies_count_as_the_clusters() {
        let (k, per, t) = (5, 40, 90);
        let base = noise(k, t, 2);
        let mut rng = Rng::new(3);
        let mut r = Vec::new();
        for c in 0..k {
            for _ in 0..per {
                for d in 0..t {
                    r.push(base[c * t + d] + 1e-5 * rng.normal());
                }
            }
        }
        let e = effective_trials(&r, t);
        assert!((4.0..6.5).contains(&e.n_eff), "{e:?}");
        // a long and a short variant of each rule: still 5 trials
        let mirrored: Vec<f64> = r
            .iter()
            .chain(r.iter())
            .enumerate()
            .map(|(i, x)| if i < r.len() { *x } else { -*x })
            .collect();
        let e2 = effective_trials(&mirrored, t);
        assert!((4.0..6.5).contains(&e2.n_eff), "{e2:?}");
    }

    #[test]
    fn flat_trials_count_once() {
        let t = 30;
        let mut r = noise(10, t, 4);
        r.extend(std::iter::repeat_n(0.0, 50 * t));
        let e = effective_trials(&r, t);
        assert_eq!(e.n_flat, 50);
        assert!(e.n_eff <= 11.0 && e.n_eff > 7.0, "{e:?}");
    }
}
