//! Bindings of at-backtest (arrays in, arrays out; no logic here).
//!
//! The feature table crosses as a dict of 1-d NumPy arrays borrowed in place (never
//! copied); every run releases the GIL. Column names and dtypes are listed in
//! `at_core/_core.pyi` (`MINUTE_TABLE_COLUMNS` in `at_core.backtest`).

use at_backtest::synth::synthetic_table;
use at_backtest::table::FundingHistory;
use at_backtest::{
    daily_days, run, run_batch_daily, BacktestResult, Metrics, MinuteTable, OwnedTable, TickPath,
    TradeRecord,
};
use at_strategy::Action;
use at_types::AtError;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::errors::to_py;
use crate::strategy::params_from_dict;

fn bad(location: &str, message: String) -> PyErr {
    to_py(AtError::InvalidInput {
        location: location.into(),
        message,
    })
}

fn arr<'py, T: numpy::Element>(
    d: &Bound<'py, PyDict>,
    key: &str,
) -> PyResult<PyReadonlyArray1<'py, T>> {
    let v = d
        .get_item(key)?
        .ok_or_else(|| bad("feature table", format!("missing column `{key}`")))?;
    v.extract::<PyReadonlyArray1<'py, T>>().map_err(|_| {
        bad(
            "feature table",
            format!(
                "column `{key}` must be a 1-d {} array",
                std::any::type_name::<T>()
            ),
        )
    })
}

fn sl<'a, T: numpy::Element>(a: &'a PyReadonlyArray1<'_, T>, key: &str) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| {
        bad(
            "feature table",
            format!("column `{key}` must be contiguous"),
        )
    })
}

const F64_COLS: [&str; 20] = [
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vah_trade_dist",
    "val_trade_dist",
    "mid_close",
    "spread_avg",
    "poc",
    "vah",
    "val",
    "of_1m",
    "of_norm_1m",
    "qimb_close",
    "qimb_ema",
    "ambiguous_frac",
    "next_bid",
    "next_ask",
    "tick_price",
];
const I64_COLS: [&str; 5] = ["ts_min", "next_quote_ts", "low_ts", "high_ts", "tick_ts"];

/// Borrowed NumPy columns of one table.
struct Cols<'py> {
    f: Vec<PyReadonlyArray1<'py, f64>>,
    i: Vec<PyReadonlyArray1<'py, i64>>,
    valid: PyReadonlyArray1<'py, bool>,
    tick_start: Option<PyReadonlyArray1<'py, u32>>,
    /// Optional funding history (`funding_ts` int64 ms, `funding_rate` fraction).
    funding: Option<(PyReadonlyArray1<'py, i64>, PyReadonlyArray1<'py, f64>)>,
}

impl<'py> Cols<'py> {
    fn from_dict(d: &Bound<'py, PyDict>) -> PyResult<Self> {
        let has_ticks = d.contains("tick_start")?;
        let mut f = Vec::new();
        for k in F64_COLS {
            if k == "tick_price" && !has_ticks {
                continue;
            }
            f.push(arr::<f64>(d, k)?);
        }
        let mut i = Vec::new();
        for k in I64_COLS {
            if k == "tick_ts" && !has_ticks {
                continue;
            }
            i.push(arr::<i64>(d, k)?);
        }
        let tick_start = if has_ticks {
            Some(arr::<u32>(d, "tick_start")?)
        } else {
            None
        };
        let funding = match (d.contains("funding_ts")?, d.contains("funding_rate")?) {
            (true, true) => Some((arr::<i64>(d, "funding_ts")?, arr::<f64>(d, "funding_rate")?)),
            (false, false) => None,
            _ => {
                return Err(bad(
                    "feature table",
                    "funding history needs both `funding_ts` and `funding_rate`".into(),
                ))
            }
        };
        Ok(Self {
            f,
            i,
            valid: arr::<bool>(d, "va_valid")?,
            tick_start,
            funding,
        })
    }

    fn table(&self) -> PyResult<MinuteTable<'_>> {
        let f = |n: usize| sl(&self.f[n], F64_COLS[n]);
        let i = |n: usize| sl(&self.i[n], I64_COLS[n]);
        let ticks = match &self.tick_start {
            Some(ts) => Some(TickPath {
                ts: i(4)?,
                price: f(19)?,
                start: sl(ts, "tick_start")?,
            }),
            None => None,
        };
        Ok(MinuteTable {
            ts_min: i(0)?,
            open: f(0)?,
            high: f(1)?,
            low: f(2)?,
            close: f(3)?,
            volume: f(4)?,
            vah_trade_dist: f(5)?,
            val_trade_dist: f(6)?,
            mid_close: f(7)?,
            spread_avg: f(8)?,
            poc: f(9)?,
            vah: f(10)?,
            val: f(11)?,
            va_valid: sl(&self.valid, "va_valid")?,
            of_1m: f(12)?,
            of_norm_1m: f(13)?,
            qimb_close: f(14)?,
            qimb_ema: f(15)?,
            ambiguous_frac: f(16)?,
            next_quote_ts: i(1)?,
            next_bid: f(17)?,
            next_ask: f(18)?,
            low_ts: i(2)?,
            high_ts: i(3)?,
            ticks,
            funding: match &self.funding {
                Some((ts, rate)) => Some(FundingHistory {
                    ts: sl(ts, "funding_ts")?,
                    rate: sl(rate, "funding_rate")?,
                }),
                None => None,
            },
        })
    }
}

fn metrics_dict<'py>(py: Python<'py>, m: &Metrics) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in Metrics::NAMES.iter().zip(m.values()) {
        d.set_item(*k, v)?;
    }
    Ok(d)
}

/// Closed trades as columns: the `trades` layout of every result (`backtest()`,
/// `StreamingDriver.finish()` and `.trades_since()`).
pub(crate) fn trades_dict<'py>(py: Python<'py>, t: &[TradeRecord]) -> PyResult<Bound<'py, PyDict>> {
    let tr = PyDict::new(py);
    macro_rules! col {
        ($name:literal, $e:expr) => {
            tr.set_item($name, t.iter().map($e).collect::<Vec<_>>().into_pyarray(py))?;
        };
    }
    col!("side", |x| x.side);
    col!("decision_ts_ms", |x| x.decision_ts_ms);
    col!("fill_ts_ms", |x| x.fill_ts_ms);
    col!("entry_price", |x| x.entry_price);
    col!("entry_maker", |x| x.entry_maker);
    col!("qty", |x| x.qty);
    col!("stop_initial", |x| x.stop_initial);
    col!("tp1", |x| x.tp1);
    col!("tp2", |x| x.tp2);
    col!("tp1_ts_ms", |x| x.tp1_ts_ms);
    col!("tp1_price", |x| x.tp1_price);
    col!("tp1_qty", |x| x.tp1_qty);
    col!("exit_decision_ts_ms", |x| x.exit_decision_ts_ms);
    col!("exit_ts_ms", |x| x.exit_ts_ms);
    col!("exit_price", |x| x.exit_price);
    col!("gross_pnl", |x| x.gross_pnl);
    col!("fees", |x| x.fees);
    col!("funding", |x| x.funding);
    col!("slippage_cost", |x| x.slippage_cost);
    col!("net_pnl", |x| x.net_pnl);
    col!("entry_spread", |x| x.entry_spread);
    col!("ambiguous_frac_at_entry", |x| x.ambiguous_frac_at_entry);
    col!("leverage_cap_hit", |x| x.leverage_cap_hit);
    tr.set_item(
        "setup",
        PyList::new(py, t.iter().map(|x| x.setup.as_str()))?,
    )?;
    tr.set_item(
        "entry_reason",
        PyList::new(py, t.iter().map(|x| x.entry_reason.as_str()))?,
    )?;
    tr.set_item(
        "exit_reason",
        PyList::new(py, t.iter().map(|x| x.exit_reason.as_str()))?,
    )?;
    Ok(tr)
}

pub(crate) fn result_dict<'py>(py: Python<'py>, r: BacktestResult) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("metrics", metrics_dict(py, &r.metrics)?)?;
    let tr = trades_dict(py, &r.trades)?;
    out.set_item("trades", tr)?;
    out.set_item("equity", r.equity.into_pyarray(py))?;
    // Codes, not strings: 43,200 Python strings per month would dominate a backtest.
    let ds = r.decisions;
    // a compacting live driver has dropped its oldest minutes: its days are not all known
    let days = daily_days(&ds.ts_min);
    if days.len() == r.daily_returns.len() {
        out.set_item(DAILY_DAYS, days.into_pyarray(py))?;
    } else {
        out.set_item(DAILY_DAYS, py.None())?;
    }
    out.set_item(DAILY_RETURNS, r.daily_returns.into_pyarray(py))?;
    let dd = PyDict::new(py);
    dd.set_item("ts_min", ds.ts_min.into_pyarray(py))?;
    dd.set_item("action", ds.action.into_pyarray(py))?;
    dd.set_item("reason", ds.reason.into_pyarray(py))?;
    dd.set_item("signals", ds.signals.into_pyarray(py))?;
    dd.set_item("events", ds.events.into_pyarray(py))?;
    dd.set_item("heat", ds.heat.into_pyarray(py))?;
    out.set_item("decisions", dd)?;
    Ok(out)
}

/// One full backtest: metrics, trades, equity curve, per-minute decisions.
#[pyfunction]
fn backtest<'py>(
    py: Python<'py>,
    table: &Bound<'py, PyDict>,
    params: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let p = params_from_dict(params)?;
    let cols = Cols::from_dict(table)?;
    let t = cols.table()?;
    let r = py.detach(|| run(&t, p)).map_err(to_py)?;
    result_dict(py, r)
}

/// Many parameter sets over one table (shared, not copied): a dict of metric columns plus
/// `error` (None, or the message of a set whose parameters were invalid).
#[pyfunction]
#[pyo3(signature = (table, params, threads = 1))]
fn backtest_batch<'py>(
    py: Python<'py>,
    table: &Bound<'py, PyDict>,
    params: &Bound<'py, PyList>,
    threads: usize,
) -> PyResult<Bound<'py, PyDict>> {
    // Invalid sets get their error in their slot; the others still run.
    let mut sets = Vec::with_capacity(params.len());
    let mut errors: Vec<Option<String>> = Vec::with_capacity(params.len());
    for (i, item) in params.iter().enumerate() {
        let d = item
            .cast_into::<PyDict>()
            .map_err(|_| bad(&format!("params[{i}]"), "must be a dict".into()))?;
        match params_from_dict(&d) {
            Ok(p) => {
                sets.push(p);
                errors.push(None);
            }
            Err(e) => {
                sets.push(at_strategy::Params::default());
                errors.push(Some(format!("params[{i}]: {e}")));
            }
        }
    }
    let cols = Cols::from_dict(table)?;
    let t = cols.table()?;
    let days = daily_days(t.ts_min);
    let res = py
        .detach(|| run_batch_daily(&t, &sets, threads))
        .map_err(to_py)?;
    let n = res.len();
    let mut columns = vec![Vec::with_capacity(n); Metrics::NAMES.len()];
    let mut daily = Vec::with_capacity(n * days.len());
    for (i, r) in res.iter().enumerate() {
        let vals = match (r, &errors[i]) {
            (Ok((m, d)), None) if d.len() == days.len() => {
                daily.extend_from_slice(d);
                m.values()
            }
            (Ok((_, d)), None) => {
                return Err(bad(
                    &format!("params[{i}]"),
                    format!("{} daily returns for {} days", d.len(), days.len()),
                ))
            }
            (Err(e), None) => {
                errors[i] = Some(format!("params[{i}]: {e}"));
                [f64::NAN; Metrics::NAMES.len()]
            }
            _ => [f64::NAN; Metrics::NAMES.len()],
        };
        if errors[i].is_some() {
            daily.extend(std::iter::repeat_n(f64::NAN, days.len()));
        }
        for (c, v) in columns.iter_mut().zip(vals) {
            c.push(v);
        }
    }
    let out = PyDict::new(py);
    for (name, c) in Metrics::NAMES.iter().zip(columns) {
        out.set_item(*name, c.into_pyarray(py))?;
    }
    out.set_item("error", PyList::new(py, errors)?)?;
    let daily = Array2::from_shape_vec((n, days.len()), daily)
        .map_err(|e| bad("daily returns", e.to_string()))?;
    out.set_item(DAILY_RETURNS, daily.into_pyarray(py))?;
    out.set_item(DAILY_DAYS, days.into_pyarray(py))?;
    Ok(out)
}

/// Result keys of the per-day returns (not metrics): a (sets x days) matrix and the UTC
/// day number of each column.
const DAILY_RETURNS: &str = "daily_returns";
const DAILY_DAYS: &str = "daily_days";

/// Action names in code order (`decisions["action"]` indexes into it).
#[pyfunction]
fn backtest_action_names() -> Vec<&'static str> {
    [
        Action::Hold,
        Action::EnterLong,
        Action::EnterShort,
        Action::Exit,
    ]
    .iter()
    .map(|a| a.as_str())
    .collect()
}

/// Metric names in column order.
#[pyfunction]
fn backtest_metric_names() -> Vec<&'static str> {
    Metrics::NAMES.to_vec()
}

/// Trade table column names in order (the keys of every `trades` dict).
#[pyfunction]
fn backtest_trade_columns() -> Vec<&'static str> {
    at_backtest::TradeRecord::COLUMNS.to_vec()
}

/// Fewest daily returns a Sharpe is reported from (below: NaN, shown as n/a).
#[pyfunction]
fn backtest_sharpe_min_days() -> usize {
    at_backtest::metrics::SHARPE_MIN_DAYS
}

pub(crate) fn owned_dict<'py>(py: Python<'py>, t: OwnedTable) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("ts_min", t.ts_min.into_pyarray(py))?;
    d.set_item("open", t.open.into_pyarray(py))?;
    d.set_item("high", t.high.into_pyarray(py))?;
    d.set_item("low", t.low.into_pyarray(py))?;
    d.set_item("close", t.close.into_pyarray(py))?;
    d.set_item("volume", t.volume.into_pyarray(py))?;
    d.set_item("vah_trade_dist", t.vah_trade_dist.into_pyarray(py))?;
    d.set_item("val_trade_dist", t.val_trade_dist.into_pyarray(py))?;
    d.set_item("mid_close", t.mid_close.into_pyarray(py))?;
    d.set_item("spread_avg", t.spread_avg.into_pyarray(py))?;
    d.set_item("poc", t.poc.into_pyarray(py))?;
    d.set_item("vah", t.vah.into_pyarray(py))?;
    d.set_item("val", t.val.into_pyarray(py))?;
    d.set_item("va_valid", t.va_valid.into_pyarray(py))?;
    d.set_item("of_1m", t.of_1m.into_pyarray(py))?;
    d.set_item("of_norm_1m", t.of_norm_1m.into_pyarray(py))?;
    d.set_item("qimb_close", t.qimb_close.into_pyarray(py))?;
    d.set_item("qimb_ema", t.qimb_ema.into_pyarray(py))?;
    d.set_item("ambiguous_frac", t.ambiguous_frac.into_pyarray(py))?;
    d.set_item("next_quote_ts", t.next_quote_ts.into_pyarray(py))?;
    d.set_item("next_bid", t.next_bid.into_pyarray(py))?;
    d.set_item("next_ask", t.next_ask.into_pyarray(py))?;
    d.set_item("low_ts", t.low_ts.into_pyarray(py))?;
    d.set_item("high_ts", t.high_ts.into_pyarray(py))?;
    if !t.tick_start.is_empty() {
        d.set_item("tick_ts", t.tick_ts.into_pyarray(py))?;
        d.set_item("tick_price", t.tick_price.into_pyarray(py))?;
        d.set_item("tick_start", t.tick_start.into_pyarray(py))?;
    }
    Ok(d)
}

/// A seeded synthetic minute table (bars + features + fill references) for tests and
/// benchmarks; not a market simulator (see at-backtest/src/synth.rs).
#[pyfunction]
#[pyo3(signature = (minutes, seed, start_ms, ticks_per_leg = 0))]
fn synthetic_minute_table<'py>(
    py: Python<'py>,
    minutes: usize,
    seed: u64,
    start_ms: i64,
    ticks_per_leg: usize,
) -> PyResult<Bound<'py, PyDict>> {
    if start_ms.rem_euclid(60_000) != 0 {
        return Err(bad(
            "start_ms",
            format!("{start_ms} is not on a minute boundary"),
        ));
    }
    let t = py.detach(|| synthetic_table(minutes, seed, start_ms, ticks_per_leg));
    owned_dict(py, t)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(backtest, m)?)?;
    m.add_function(wrap_pyfunction!(backtest_batch, m)?)?;
    m.add_function(wrap_pyfunction!(backtest_metric_names, m)?)?;
    m.add_function(wrap_pyfunction!(backtest_trade_columns, m)?)?;
    m.add_function(wrap_pyfunction!(backtest_sharpe_min_days, m)?)?;
    m.add_function(wrap_pyfunction!(backtest_action_names, m)?)?;
    m.add_function(wrap_pyfunction!(synthetic_minute_table, m)?)?;
    Ok(())
}
