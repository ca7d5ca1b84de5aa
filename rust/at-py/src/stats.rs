//! Bindings of `at-stats`: a sweep's returns matrix in, its statistics out (arrays and
//! scalars); the kernels run without the GIL.

use at_stats::{cscv, rolling_windows, sweep_stats, walk_forward, CscvConfig, Select, Window};
use numpy::{IntoPyArray, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;

fn rows_of(returns: &PyReadonlyArray2<'_, f64>) -> PyResult<(Vec<f64>, usize)> {
    let a = returns.as_array();
    let t = a.ncols();
    // row-major copy (the input may be a strided or Fortran-ordered view)
    Ok((a.iter().copied().collect(), t))
}

/// Per-combination Sharpe statistics of a sweep (`returns`: combinations x periods,
/// per-period simple returns): sharpe, skew, kurt, psr, dsr, min_track_record arrays and
/// the sweep's sharpe_sd, threshold, n_eff (with the correlations it came from) and best.
#[pyfunction]
#[pyo3(signature = (returns, confidence = 0.95))]
fn sweep_statistics<'py>(
    py: Python<'py>,
    returns: PyReadonlyArray2<'py, f64>,
    confidence: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let (r, t) = rows_of(&returns)?;
    let s = py
        .detach(|| sweep_stats(&r, t, confidence))
        .map_err(to_py)?;
    let out = PyDict::new(py);
    out.set_item("n_trials", s.n_trials)?;
    out.set_item("n_periods", s.n_periods)?;
    out.set_item("sharpe", s.sharpe.into_pyarray(py))?;
    out.set_item("skew", s.skew.into_pyarray(py))?;
    out.set_item("kurt", s.kurt.into_pyarray(py))?;
    out.set_item("psr", s.psr.into_pyarray(py))?;
    out.set_item("dsr", s.dsr.into_pyarray(py))?;
    out.set_item("min_track_record", s.min_track_record.into_pyarray(py))?;
    out.set_item("sharpe_sd", s.sharpe_sd)?;
    out.set_item("threshold", s.threshold)?;
    out.set_item("n_eff", s.trials.n_eff)?;
    out.set_item("n_flat", s.trials.n_flat)?;
    out.set_item("mean_sq_corr", s.trials.mean_sq_corr)?;
    out.set_item("mean_sq_corr_net", s.trials.mean_sq_corr_net)?;
    out.set_item("best", s.best)?;
    out.set_item("confidence", s.confidence)?;
    Ok(out)
}

/// Probability of backtest overfitting by CSCV over `blocks` contiguous blocks, purging
/// `purge` periods after each boundary between the halves.
#[pyfunction]
#[pyo3(signature = (returns, blocks = 16, purge = 0, threads = 1))]
fn cscv_pbo<'py>(
    py: Python<'py>,
    returns: PyReadonlyArray2<'py, f64>,
    blocks: usize,
    purge: usize,
    threads: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let (r, t) = rows_of(&returns)?;
    let cfg = CscvConfig {
        blocks,
        purge,
        threads,
    };
    let p = py.detach(|| cscv(&r, t, &cfg)).map_err(to_py)?;
    let out = PyDict::new(py);
    out.set_item("pbo", p.pbo)?;
    out.set_item("n_splits", p.n_splits)?;
    out.set_item("logits", p.logits.into_pyarray(py))?;
    out.set_item("selected", p.selected.into_pyarray(py))?;
    out.set_item("is_sharpe", p.is_sharpe.into_pyarray(py))?;
    out.set_item("oos_sharpe", p.oos_sharpe.into_pyarray(py))?;
    out.set_item("slope", p.slope)?;
    out.set_item("intercept", p.intercept)?;
    out.set_item("prob_oos_loss", p.prob_oos_loss)?;
    out.set_item("bounds", p.bounds.into_pyarray(py))?;
    Ok(out)
}

/// PSR of a per-period Sharpe `sr` over `n` periods against `sr_star` (raw kurtosis).
#[pyfunction]
#[pyo3(signature = (sr, n, skew = 0.0, kurt = 3.0, sr_star = 0.0))]
fn probabilistic_sharpe(sr: f64, n: usize, skew: f64, kurt: f64, sr_star: f64) -> f64 {
    at_stats::psr(sr, sr_star, n, skew, kurt)
}

/// DSR: PSR against `sr_sd` x E[max of `n_trials` standard normals].
#[pyfunction]
#[pyo3(signature = (sr, n, sr_sd, n_trials, skew = 0.0, kurt = 3.0))]
fn deflated_sharpe(sr: f64, n: usize, sr_sd: f64, n_trials: f64, skew: f64, kurt: f64) -> f64 {
    at_stats::dsr(sr, n, skew, kurt, sr_sd, n_trials)
}

/// E[max] of `n_trials` independent standard normals (fractional N allowed).
#[pyfunction]
fn expected_max_sharpe(n_trials: f64) -> f64 {
    at_stats::expected_max_normal(n_trials)
}

/// Periods needed for PSR(`sr_star`) to reach `confidence`.
#[pyfunction]
#[pyo3(signature = (sr, skew = 0.0, kurt = 3.0, sr_star = 0.0, confidence = 0.95))]
fn min_track_record(sr: f64, skew: f64, kurt: f64, sr_star: f64, confidence: f64) -> f64 {
    at_stats::min_track_record(sr, sr_star, skew, kurt, confidence)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sweep_statistics, m)?)?;
    m.add_function(wrap_pyfunction!(cscv_pbo, m)?)?;
    m.add_function(wrap_pyfunction!(probabilistic_sharpe, m)?)?;
    m.add_function(wrap_pyfunction!(deflated_sharpe, m)?)?;
    m.add_function(wrap_pyfunction!(expected_max_sharpe, m)?)?;
    m.add_function(wrap_pyfunction!(min_track_record, m)?)?;
    m.add_function(wrap_pyfunction!(walk_forward_windows, m)?)?;
    m.add_function(wrap_pyfunction!(walk_forward_select, m)?)?;
    Ok(())
}

/// Rolling (or anchored) walk-forward windows over `t` periods, as rows of
/// (train_lo, train_hi, test_lo, test_hi) period indices, `[lo, hi)`.
#[pyfunction]
#[pyo3(signature = (t, train, test, step, purge, anchored = false))]
fn walk_forward_windows(
    t: usize,
    train: usize,
    test: usize,
    step: usize,
    purge: usize,
    anchored: bool,
) -> PyResult<Vec<(usize, usize, usize, usize)>> {
    let w = rolling_windows(t, train, test, step, purge, anchored).map_err(to_py)?;
    Ok(w.iter()
        .map(|w| (w.train.0, w.train.1, w.test.0, w.test.1))
        .collect())
}

/// Choose by `select` ("return" or "sharpe") on each window's training periods, score on
/// its test periods: arrays selected, is_return, is_sharpe, oos_return, oos_sharpe.
#[pyfunction]
#[pyo3(signature = (returns, windows, select = "return"))]
fn walk_forward_select<'py>(
    py: Python<'py>,
    returns: PyReadonlyArray2<'py, f64>,
    windows: Vec<(usize, usize, usize, usize)>,
    select: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let sel = match select {
        "return" => Select::Return,
        "sharpe" => Select::Sharpe,
        other => {
            return Err(to_py(at_types::AtError::InvalidConfig {
                key: "select".into(),
                message: format!("must be `return` or `sharpe`, got `{other}`"),
            }))
        }
    };
    let (r, t) = rows_of(&returns)?;
    let ws: Vec<Window> = windows
        .iter()
        .map(|&(a, b, c, d)| Window {
            train: (a, b),
            test: (c, d),
        })
        .collect();
    let res = py.detach(|| walk_forward(&r, t, &ws, sel)).map_err(to_py)?;
    let out = PyDict::new(py);
    let col = |f: fn(&at_stats::WindowResult) -> f64| res.iter().map(f).collect::<Vec<f64>>();
    out.set_item(
        "selected",
        res.iter()
            .map(|x| x.selected)
            .collect::<Vec<u32>>()
            .into_pyarray(py),
    )?;
    out.set_item("is_return", col(|x| x.is_return).into_pyarray(py))?;
    out.set_item("is_sharpe", col(|x| x.is_sharpe).into_pyarray(py))?;
    out.set_item("oos_return", col(|x| x.oos_return).into_pyarray(py))?;
    out.set_item("oos_sharpe", col(|x| x.oos_sharpe).into_pyarray(py))?;
    Ok(out)
}
