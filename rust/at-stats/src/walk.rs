//! Walk-forward and hold-out selection over a sweep's returns matrix: in each window the
//! combination that scores best on the training days is chosen, and only then scored on
//! the test days, which start after an embargo (`purge` periods) so that no test day's
//! returns depend on a training day (feature windows, positions held across the boundary).
//!
//! Selection is on what the daily returns can tell: the compounded return (for metrics of
//! money made: net P&L, return) or the per-period Sharpe. The windows' test days, each with
//! the combination chosen before it, stitch into one out-of-sample return series: the
//! curve a trader re-optimising on that schedule would have had.

use at_types::AtError;

use crate::sharpe::Moments;

/// Period index ranges `[lo, hi)` of one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub train: (usize, usize),
    pub test: (usize, usize),
}

/// What a window's training days choose by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// Compounded return over the training days.
    Return,
    /// Per-period Sharpe over the training days (0 for a flat series).
    Sharpe,
}

/// One window's choice and how it did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowResult {
    pub window: Window,
    pub selected: u32,
    /// The chosen combination over the training days.
    pub is_return: f64,
    pub is_sharpe: f64,
    /// The same combination over the test days (Sharpe NaN for a 1-period test).
    pub oos_return: f64,
    pub oos_sharpe: f64,
}

fn bad(message: String) -> AtError {
    AtError::InvalidInput {
        location: "walk-forward".into(),
        message,
    }
}

/// Rolling (or `anchored`: training always from period 0) windows over `t` periods:
/// `train` periods, `purge` skipped, `test` periods; each next window `step` later.
pub fn rolling_windows(
    t: usize,
    train: usize,
    test: usize,
    step: usize,
    purge: usize,
    anchored: bool,
) -> Result<Vec<Window>, AtError> {
    if train < 2 || test < 1 || step < 1 {
        return Err(bad(format!(
            "train needs 2+ periods, test and step 1+ (got train {train}, test {test}, step {step})"
        )));
    }
    let mut out = Vec::new();
    let mut end = train;
    while end + purge + test <= t {
        let lo = if anchored { 0 } else { end - train };
        out.push(Window {
            train: (lo, end),
            test: (end + purge, end + purge + test),
        });
        end += step;
    }
    if out.is_empty() {
        return Err(bad(format!(
            "{t} periods hold no window of {train} training + {purge} embargo + {test} test periods"
        )));
    }
    Ok(out)
}

fn score(r: &[f64], select: Select) -> (f64, f64) {
    let ret = r.iter().fold(1.0, |acc, x| acc * (1.0 + x)) - 1.0;
    let sharpe = if r.len() >= 2 {
        Moments::of(r).sharpe()
    } else {
        f64::NAN
    };
    match select {
        Select::Return => (ret, sharpe),
        Select::Sharpe => (sharpe, ret),
    }
}

/// Choose on each window's training days, score on its test days. `returns`: N × T
/// row-major, finite. The best training score wins; ties go to the lower index (the order
/// the sweep stored the combinations in).
pub fn walk_forward(
    returns: &[f64],
    t: usize,
    windows: &[Window],
    select: Select,
) -> Result<Vec<WindowResult>, AtError> {
    crate::check_matrix(returns, t, 1, 1, "walk-forward")?;
    let mut out = Vec::with_capacity(windows.len());
    for w in windows {
        let ((a, b), (c, d)) = (w.train, w.test);
        if !(a < b && b <= c && c < d && d <= t) {
            return Err(bad(format!(
                "window train {a}..{b} test {c}..{d} is not ordered within {t} periods"
            )));
        }
        let (mut best, mut best_score) = (0usize, f64::NEG_INFINITY);
        for (i, row) in returns.chunks_exact(t).enumerate() {
            let (s, _) = score(&row[a..b], select);
            if s > best_score {
                (best, best_score) = (i, s);
            }
        }
        let row = &returns[best * t..(best + 1) * t];
        let is_ret = score(&row[a..b], Select::Return).0;
        let oos = &row[c..d];
        out.push(WindowResult {
            window: *w,
            selected: best as u32,
            is_return: is_ret,
            is_sharpe: Moments::of(&row[a..b]).sharpe(),
            oos_return: score(oos, Select::Return).0,
            oos_sharpe: if oos.len() >= 2 {
                Moments::of(oos).sharpe()
            } else {
                f64::NAN
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_and_anchored_windows_leave_the_embargo_free() {
        let w = rolling_windows(12, 5, 2, 2, 1, false).unwrap();
        assert_eq!(
            w,
            vec![
                Window {
                    train: (0, 5),
                    test: (6, 8)
                },
                Window {
                    train: (2, 7),
                    test: (8, 10)
                },
                Window {
                    train: (4, 9),
                    test: (10, 12)
                },
            ]
        );
        let a = rolling_windows(12, 5, 2, 2, 1, true).unwrap();
        assert_eq!(
            a[2],
            Window {
                train: (0, 9),
                test: (10, 12)
            }
        );
        assert!(rolling_windows(6, 5, 2, 1, 1, false).is_err());
    }

    /// Combination 1 wins the first half and loses the second; 2 the other way round: each
    /// window picks the one that was best before it and is scored on what came after.
    #[test]
    fn each_window_chooses_on_its_training_days_only() {
        let t = 8;
        let mut r = vec![0.0; 3 * t];
        for p in 0..t {
            r[t + p] = if p < 4 { 0.01 } else { -0.01 };
            r[2 * t + p] = if p < 4 { -0.01 } else { 0.02 };
        }
        let w = [
            Window {
                train: (0, 4),
                test: (4, 6),
            },
            Window {
                train: (3, 6),
                test: (6, 8),
            },
        ];
        let res = walk_forward(&r, t, &w, Select::Return).unwrap();
        assert_eq!(res[0].selected, 1);
        assert!((res[0].oos_return - (0.99f64 * 0.99 - 1.0)).abs() < 1e-15);
        // days 3..6: 1 earns +1 % then loses twice, 2 loses once then earns twice
        assert_eq!(res[1].selected, 2);
        assert!((res[1].oos_return - (1.02f64 * 1.02 - 1.0)).abs() < 1e-15);
        // flat combination 0 never wins a window that has a positive choice
        assert!(res.iter().all(|x| x.selected != 0));
    }
}
