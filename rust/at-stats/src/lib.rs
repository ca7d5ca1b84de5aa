//! Research statistics of a parameter sweep: how much of the best combination's edge is
//! real. Inputs are per-period (daily UTC) returns of every combination, N × T row-major;
//! nothing here knows about trading.
//!
//! - `sharpe`: probabilistic and deflated Sharpe, expected maximum under the null,
//!   minimum track record length;
//! - `trials`: the effective number of independent trials;
//! - `cscv`: probability of backtest overfitting;
//! - `walk`: walk-forward and hold-out selection with an embargo;
//! - `sweep_stats`: all per-combination numbers of one sweep at once.

pub mod cscv;
pub mod normal;
pub mod sharpe;
pub mod trials;
pub mod walk;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use at_types::AtError;

pub use cscv::{cscv, CscvConfig, Pbo};
pub use sharpe::{deflated_threshold, dsr, expected_max_normal, min_track_record, psr, Moments};
pub use trials::{effective_trials, EffectiveTrials};
pub use walk::{rolling_windows, walk_forward, Select, Window, WindowResult};

/// Check a returns matrix (N × T row-major): whole rows of `t >= min_t` periods, at least
/// `min_n` of them, every value finite. Returns N. The error names the combination and
/// the period of the first bad value, under `location`.
pub fn check_matrix(
    returns: &[f64],
    t: usize,
    min_t: usize,
    min_n: usize,
    location: &str,
) -> Result<usize, AtError> {
    let bad = |message: String| AtError::InvalidInput {
        location: location.into(),
        message,
    };
    if t < min_t.max(1) || !returns.len().is_multiple_of(t) {
        return Err(bad(format!(
            "{} returns do not make rows of {t} periods (at least {min_t})",
            returns.len()
        )));
    }
    let n = returns.len() / t;
    if n < min_n.max(1) {
        return Err(bad(format!(
            "needs at least {} combinations, got {n}",
            min_n.max(1)
        )));
    }
    if let Some(k) = returns.iter().position(|x| !x.is_finite()) {
        return Err(bad(format!(
            "combination {} period {} has a non-finite return ({})",
            k / t,
            k % t,
            returns[k]
        )));
    }
    Ok(n)
}

/// Per-combination Sharpe statistics of one sweep, deflated for the sweep's size.
#[derive(Debug, Clone)]
pub struct SweepStats {
    pub n_trials: usize,
    pub n_periods: usize,
    /// Per combination (input order): per-period Sharpe, skewness, raw kurtosis.
    pub sharpe: Vec<f64>,
    pub skew: Vec<f64>,
    pub kurt: Vec<f64>,
    /// PSR against 0: the probability the true Sharpe is positive, this one alone.
    pub psr: Vec<f64>,
    /// DSR: PSR against the deflated threshold (the best of the sweep by luck).
    pub dsr: Vec<f64>,
    /// Periods needed for PSR(0) to reach `confidence` (infinite if Sharpe <= 0).
    pub min_track_record: Vec<f64>,
    /// Standard deviation (ddof 1) of the combinations' Sharpe estimates.
    pub sharpe_sd: f64,
    pub trials: EffectiveTrials,
    /// SR₀ = `sharpe_sd` × E[max of `trials.n_eff` standard normals].
    pub threshold: f64,
    /// The combination with the highest Sharpe.
    pub best: usize,
    pub confidence: f64,
}

/// The statistics of every combination of a sweep. `returns`: N × T row-major, finite.
pub fn sweep_stats(returns: &[f64], t: usize, confidence: f64) -> Result<SweepStats, AtError> {
    let n = check_matrix(returns, t, 2, 1, "sweep returns")?;
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(AtError::InvalidConfig {
            key: "confidence".into(),
            message: format!("must be in (0, 1), got {confidence}"),
        });
    }
    let moments: Vec<Moments> = returns.chunks_exact(t).map(Moments::of).collect();
    let sharpe: Vec<f64> = moments.iter().map(Moments::sharpe).collect();
    let sharpe_sd = if n > 1 { Moments::of(&sharpe).sd } else { 0.0 };
    let trials = effective_trials(returns, t);
    let threshold = deflated_threshold(sharpe_sd, trials.n_eff);
    let best = (0..n)
        .max_by(|&a, &b| sharpe[a].total_cmp(&sharpe[b]).then(b.cmp(&a)))
        .unwrap_or(0);
    Ok(SweepStats {
        n_trials: n,
        n_periods: t,
        psr: moments
            .iter()
            .zip(&sharpe)
            .map(|(m, &sr)| psr(sr, 0.0, t, m.skew, m.kurt))
            .collect(),
        dsr: moments
            .iter()
            .zip(&sharpe)
            .map(|(m, &sr)| psr(sr, threshold, t, m.skew, m.kurt))
            .collect(),
        min_track_record: moments
            .iter()
            .zip(&sharpe)
            .map(|(m, &sr)| min_track_record(sr, 0.0, m.skew, m.kurt, confidence))
            .collect(),
        skew: moments.iter().map(|m| m.skew).collect(),
        kurt: moments.iter().map(|m| m.kurt).collect(),
        sharpe,
        sharpe_sd,
        trials,
        threshold,
        best,
        confidence,
    })
}
