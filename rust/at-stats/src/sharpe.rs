//! The Sharpe ratio as an estimate with a sampling distribution (Bailey & López de Prado,
//! "The Deflated Sharpe Ratio", 2014; "The Sharpe Ratio Efficient Frontier", 2012).
//!
//! Pitfalls these functions are written against:
//! - Every Sharpe here is **per period** (daily), never annualised: the formulas' √(T−1)
//!   and the skew / kurtosis terms are in the units of the observations. Annualising first
//!   and then plugging in T daily observations overstates the confidence by √365.
//! - Kurtosis is the **raw** fourth standardised moment (3 for a normal), not the excess;
//!   the variance term is `1 − γ₃·SR + (γ₄ − 1)/4 · SR²`. Many published snippets pass the
//!   excess kurtosis and understate the variance of non-normal Sharpe estimates.
//! - The expected maximum Sharpe under the null is for the number of **independent**
//!   trials (see `trials`), scaled by the standard deviation of the trials' Sharpe
//!   estimates, not by 1/√T.

use crate::normal::{cdf, inv_cdf};

/// Euler–Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// The sample moments a Sharpe's distribution needs, over one return series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    /// Observations.
    pub n: usize,
    pub mean: f64,
    /// Standard deviation with ddof = 1 (the Sharpe's denominator, as in the metrics).
    pub sd: f64,
    /// Skewness γ₃ = m₃ / m₂^(3/2) (population moments).
    pub skew: f64,
    /// Raw kurtosis γ₄ = m₄ / m₂² (population moments; 3 for a normal).
    pub kurt: f64,
}

impl Moments {
    /// Moments of `r`. A constant series (a combination that never trades) has sd 0,
    /// skew 0 and kurtosis 3 (it is treated as a degenerate normal, Sharpe 0).
    pub fn of(r: &[f64]) -> Moments {
        let n = r.len();
        let nf = n as f64;
        let mean = r.iter().sum::<f64>() / nf;
        let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
        for &x in r {
            let d = x - mean;
            let d2 = d * d;
            m2 += d2;
            m3 += d2 * d;
            m4 += d2 * d2;
        }
        let sd = if n > 1 {
            (m2 / (nf - 1.0)).sqrt()
        } else {
            f64::NAN
        };
        let (m2, m3, m4) = (m2 / nf, m3 / nf, m4 / nf);
        let (skew, kurt) = if m2 > 0.0 {
            (m3 / m2.powf(1.5), m4 / (m2 * m2))
        } else {
            (0.0, 3.0)
        };
        Moments {
            n,
            mean,
            sd,
            skew,
            kurt,
        }
    }

    /// Per-period Sharpe ratio `mean / sd`; 0 for a constant series (nothing ventured).
    pub fn sharpe(&self) -> f64 {
        if self.sd > 0.0 {
            self.mean / self.sd
        } else if self.sd == 0.0 {
            0.0
        } else {
            f64::NAN
        }
    }
}

/// Variance factor of a Sharpe estimate: `1 − γ₃·SR + (γ₄ − 1)/4 · SR²`.
fn sr_variance_factor(sr: f64, skew: f64, kurt: f64) -> f64 {
    1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
}

/// Probabilistic Sharpe Ratio: the probability that the true per-period Sharpe exceeds
/// `sr_star`, given an estimate `sr` from `n` observations with skewness `skew` and raw
/// kurtosis `kurt`. NaN with fewer than 2 observations or a non-positive variance factor.
pub fn psr(sr: f64, sr_star: f64, n: usize, skew: f64, kurt: f64) -> f64 {
    let v = sr_variance_factor(sr, skew, kurt);
    if n < 2 || v.is_nan() || v <= 0.0 {
        return f64::NAN;
    }
    cdf((sr - sr_star) * ((n - 1) as f64).sqrt() / v.sqrt())
}

/// Expected maximum of `n_trials` independent standard normal variables (the False
/// Strategy Theorem's approximation): `(1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e))`.
/// Accepts a fractional N (an effective number of trials); 0 for N <= 1.
pub fn expected_max_normal(n_trials: f64) -> f64 {
    if n_trials.is_nan() || n_trials <= 1.0 {
        return 0.0;
    }
    (1.0 - EULER_GAMMA) * inv_cdf(1.0 - 1.0 / n_trials)
        + EULER_GAMMA * inv_cdf(1.0 - 1.0 / (n_trials * std::f64::consts::E))
}

/// The deflated threshold SR₀: the Sharpe the best of `n_trials` independent trials
/// reaches by luck alone when their estimates spread with standard deviation `sr_sd`.
pub fn deflated_threshold(sr_sd: f64, n_trials: f64) -> f64 {
    sr_sd * expected_max_normal(n_trials)
}

/// Deflated Sharpe Ratio: PSR against the deflated threshold.
pub fn dsr(sr: f64, n: usize, skew: f64, kurt: f64, sr_sd: f64, n_trials: f64) -> f64 {
    psr(sr, deflated_threshold(sr_sd, n_trials), n, skew, kurt)
}

/// Minimum track record length: the observations needed for PSR(`sr_star`) to reach
/// `confidence` (e.g. 0.95) with the estimate's skew and kurtosis. Infinite when `sr`
/// does not exceed `sr_star` (no length is enough).
pub fn min_track_record(sr: f64, sr_star: f64, skew: f64, kurt: f64, confidence: f64) -> f64 {
    if sr.is_nan() || sr <= sr_star {
        return f64::INFINITY;
    }
    let z = inv_cdf(confidence);
    1.0 + sr_variance_factor(sr, skew, kurt) * (z / (sr - sr_star)).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// The reference values, computed independently from the papers' formulas.
    #[test]
    fn expected_maximum_of_standard_normals() {
        for (n, want) in [(10.0, 1.5746), (100.0, 2.5306), (1000.0, 3.2551)] {
            let got = expected_max_normal(n);
            assert!(close(got, want, 5e-5), "N {n}: {got}");
        }
        assert_eq!(expected_max_normal(1.0), 0.0);
    }

    #[test]
    fn probabilistic_sharpe_reference() {
        let got = psr(0.1, 0.0, 1000, -0.5, 4.0);
        assert!(close(got, 0.998942, 5e-7), "{got}");
    }

    #[test]
    fn deflated_sharpe_reference() {
        let sr0 = deflated_threshold(0.05, 100.0);
        assert!(close(sr0, 0.12653, 5e-6), "{sr0}");
        let got = dsr(0.1, 1000, -0.5, 4.0, 0.05, 100.0);
        assert!(close(got, 0.207416, 5e-6), "{got}");
    }

    /// MinTRL is the length at which PSR reaches the confidence exactly.
    #[test]
    fn min_track_record_is_where_psr_reaches_the_confidence() {
        let (sr, skew, kurt) = (0.08, -0.3, 5.0);
        let t = min_track_record(sr, 0.0, skew, kurt, 0.95);
        // PSR with n observations uses √(n − 1): at n = MinTRL it is 0.95
        let v = sr_variance_factor(sr, skew, kurt);
        let p = cdf(sr * (t - 1.0).sqrt() / v.sqrt());
        assert!(close(p, 0.95, 1e-12), "{p}");
        assert_eq!(min_track_record(0.0, 0.0, 0.0, 3.0, 0.95), f64::INFINITY);
    }

    #[test]
    fn moments_of_a_known_series() {
        let m = Moments::of(&[1.0, 2.0, 3.0, 4.0]);
        assert!(close(m.mean, 2.5, 1e-15));
        assert!(close(m.sd, (5.0f64 / 3.0).sqrt(), 1e-15));
        assert!(close(m.skew, 0.0, 1e-15));
        // population m2 = 1.25, m4 = (2·5.0625 + 2·0.0625)/4 = 2.5625 → 1.64
        assert!(close(m.kurt, 1.64, 1e-12));
        let flat = Moments::of(&[0.0; 5]);
        assert_eq!((flat.sharpe(), flat.skew, flat.kurt), (0.0, 0.0, 3.0));
    }
}
