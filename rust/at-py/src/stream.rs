//! Bindings of the streaming driver and of the feature → minute-table path (no logic here).
//!
//! `StreamingDriver` takes trades and quotes as dicts of NumPy arrays (the same layout as
//! `FeatureEngine.push`), runs features → kernel → execution core in Rust with the GIL
//! released, and returns the minutes it decided as arrays. `backtest_minute_table` builds
//! the batch backtester's table from stored feature arrays through the same Rust path.

use at_backtest::features::{
    feature_input_columns, minute_table, reference_rows, FeatureColumns, FEATURE_BOOL_COLUMNS,
    FEATURE_F64_COLUMNS, FEATURE_I64_COLUMNS,
};
use at_backtest::stream::{Decided, DriverState, FillMode, StreamingDriver};
use at_features::PriceScale;
use at_strategy::{ExitKind, Permission, SeqTrack};
use at_types::AtError;
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::backtest::{owned_dict, result_dict, trades_dict};
use crate::errors::to_py;
use crate::features::{configs, quote_arrays, quote_cols, trade_arrays, trade_cols};
use crate::strategy::{entry_dict, params_from_dict};

fn bad(location: &str, message: String) -> PyErr {
    to_py(AtError::InvalidInput {
        location: location.into(),
        message,
    })
}

fn decided_dict<'py>(
    py: Python<'py>,
    v: &[Decided],
    qty_step: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    macro_rules! col {
        ($name:literal, $e:expr) => {
            d.set_item($name, v.iter().map($e).collect::<Vec<_>>().into_pyarray(py))?;
        };
    }
    col!("ts_min", |x| x.decision.ts_min);
    col!("action", |x| x.decision.action as u8);
    col!("reason", |x| x.decision.reason.code());
    col!("signals", |x| x.decision.signals);
    col!("events", |x| x.decision.events);
    col!("heat", |x| x.decision.heat);
    col!("equity", |x| x.equity);
    // what an executor must do: the minutes whose decision places, exits or cancels
    let orders = PyList::empty(py);
    for x in v {
        let dec = &x.decision;
        if dec.entry.is_none() && dec.exit.is_none() && !dec.cancel_entry {
            continue;
        }
        let o = PyDict::new(py);
        o.set_item("ts_min", dec.ts_min)?;
        o.set_item("decision_ts_ms", dec.ts_min + 59_999)?;
        match &dec.entry {
            Some(e) => o.set_item("entry", entry_dict(py, e, qty_step)?)?,
            None => o.set_item("entry", py.None())?,
        }
        match &dec.exit {
            Some(e) => {
                let ed = PyDict::new(py);
                ed.set_item("reason", e.reason.as_str())?;
                ed.set_item("qty", e.qty_steps as f64 * qty_step)?;
                o.set_item("exit", ed)?;
            }
            None => o.set_item("exit", py.None())?,
        }
        o.set_item("cancel_entry", dec.cancel_entry)?;
        orders.append(o)?;
    }
    d.set_item("orders", orders)?;
    Ok(d)
}

fn fill_mode(fills: &str) -> PyResult<FillMode> {
    match fills {
        "paper" => Ok(FillMode::Paper),
        "exchange" => Ok(FillMode::External),
        _ => Err(bad(
            "streaming driver `fills`",
            format!("expected paper|exchange, got `{fills}`"),
        )),
    }
}

type Funding = Option<(Vec<i64>, Vec<f64>)>;

fn funding_of(
    funding_ts: Option<PyReadonlyArray1<'_, i64>>,
    funding_rate: Option<PyReadonlyArray1<'_, f64>>,
) -> PyResult<Funding> {
    match (funding_ts, funding_rate) {
        (Some(t), Some(r)) => {
            let nc = || bad("funding history", "arrays must be contiguous".into());
            Ok(Some((
                t.as_slice().map_err(|_| nc())?.to_vec(),
                r.as_slice().map_err(|_| nc())?.to_vec(),
            )))
        }
        (None, None) => Ok(None),
        _ => Err(bad(
            "funding history",
            "needs both `funding_ts` and `funding_rate`".into(),
        )),
    }
}

fn side_name(side: i8) -> &'static str {
    if side > 0 {
        "LONG"
    } else {
        "SHORT"
    }
}

fn state_dict<'py>(py: Python<'py>, s: &DriverState) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("minutes", s.minutes)?;
    d.set_item("last_ts_min", s.last_ts_min)?;
    d.set_item("mode", s.mode.as_str())?;
    let seq = |t: &SeqTrack| -> PyResult<Bound<'py, PyDict>> {
        let o = PyDict::new(py);
        o.set_item("count", t.count)?;
        o.set_item("locked", t.locked)?;
        o.set_item("extreme", t.extreme)?;
        o.set_item("fired", t.fired)?;
        Ok(o)
    };
    let acc = PyDict::new(py);
    acc.set_item("mode", s.mode.as_str())?;
    acc.set_item("above", seq(&s.above)?)?;
    acc.set_item("below", seq(&s.below)?)?;
    match &s.retest {
        None => acc.set_item("retest", py.None())?,
        Some(r) => {
            let o = PyDict::new(py);
            o.set_item("side", r.side)?;
            o.set_item("level", r.level)?;
            o.set_item("poke_extreme", r.poke_extreme)?;
            o.set_item("pullback_extreme", r.pullback_extreme)?;
            o.set_item("armed_ts_min", r.armed_ts_min)?;
            acc.set_item("retest", o)?;
        }
    }
    d.set_item("acceptance", acc)?;
    match &s.position {
        None => d.set_item("position", py.None())?,
        Some(x) => {
            let o = PyDict::new(py);
            o.set_item("side", side_name(x.side))?;
            o.set_item("qty", x.qty)?;
            o.set_item("entry_price", x.entry_price)?;
            o.set_item("entry_ts_ms", x.entry_ts_ms)?;
            o.set_item("stop", x.stop)?;
            o.set_item("tp1", x.tp1)?;
            o.set_item("tp2", x.tp2)?;
            o.set_item("tp1_done", x.tp1_done)?;
            o.set_item("setup", x.setup.as_str())?;
            o.set_item("entry_reason", x.entry_reason.as_str())?;
            o.set_item("exit_pending", x.exit_pending.map(|r| r.as_str()))?;
            d.set_item("position", o)?;
        }
    }
    match &s.working_entry {
        None => d.set_item("working", py.None())?,
        Some(w) => {
            let o = PyDict::new(py);
            o.set_item("side", side_name(w.side))?;
            o.set_item("limit_price", w.limit_price)?;
            o.set_item("qty", w.qty)?;
            o.set_item("filled_qty", w.filled_qty)?;
            o.set_item("stop", w.stop)?;
            o.set_item("tp1", w.tp1)?;
            o.set_item("tp2", w.tp2)?;
            o.set_item("setup", w.setup.as_str())?;
            o.set_item("reason", w.reason.as_str())?;
            o.set_item("decision_ts_min", w.decision_ts_min)?;
            o.set_item("decision_ts_ms", w.decision_ts_ms)?;
            d.set_item("working", o)?;
        }
    }
    d.set_item("cash", s.cash)?;
    d.set_item("equity", s.equity)?;
    d.set_item("kill", s.kill_switch)?;
    d.set_item("heat", s.heat)?;
    d.set_item("day_start_equity", s.day_start_equity)?;
    d.set_item("day_pnl", s.day_pnl)?;
    d.set_item("trades", s.closed_trades)?;
    d.set_item("events", s.events)?;
    d.set_item("halted", s.halted.as_deref())?;
    d.set_item("permission", s.permission.as_str())?;
    Ok(d)
}

/// Ticks + quotes → features → strategy kernel → execution core (paper fills by the
/// backtester's fill model), minute by minute. See `rust/at-backtest/src/stream.rs`.
#[pyclass(name = "StreamingDriver", module = "at_core._core", unsendable)]
pub struct PyStreamingDriver {
    inner: Option<StreamingDriver>,
    scale: PriceScale,
    qty_step: f64,
}

impl PyStreamingDriver {
    fn driver(&mut self) -> PyResult<&mut StreamingDriver> {
        self.inner
            .as_mut()
            .ok_or_else(|| bad("streaming driver", "already finished".into()))
    }
}

#[pymethods]
impl PyStreamingDriver {
    /// `config`: the feature engine's config keys; `params`: the kernel's (both plain
    /// dicts of config keys); optional funding history (instants in ms, rates as
    /// fractions of notional).
    #[new]
    #[pyo3(signature = (config, params, funding_ts = None, funding_rate = None, fills = "paper"))]
    fn new(
        config: &Bound<'_, PyDict>,
        params: &Bound<'_, PyDict>,
        funding_ts: Option<PyReadonlyArray1<'_, i64>>,
        funding_rate: Option<PyReadonlyArray1<'_, f64>>,
        fills: &str,
    ) -> PyResult<Self> {
        let mode = fill_mode(fills)?;
        let (c1, c2) = configs(config)?;
        let p = params_from_dict(params)?;
        let funding = funding_of(funding_ts, funding_rate)?;
        let scale = PriceScale::new(c1.tick_size);
        let qty_step = p.qty_step;
        let inner = StreamingDriver::with_mode(c1, c2, p, funding, mode).map_err(to_py)?;
        Ok(Self {
            inner: Some(inner),
            scale,
            qty_step,
        })
    }

    /// The whole driver as bytes (bit-exact; see `rust/at-backtest/src/stream/snapshot.rs`).
    fn snapshot<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let d = self.driver()?;
        let b = py.detach(|| d.snapshot()).map_err(to_py)?;
        Ok(PyBytes::new(py, &b))
    }

    /// The driver of a `snapshot()`; the other arguments are the constructor's and must
    /// be the ones the snapshot was taken with (a difference is refused, naming the key).
    #[staticmethod]
    #[pyo3(signature = (data, config, params, funding_ts = None, funding_rate = None, fills = "paper"))]
    fn restore(
        py: Python<'_>,
        data: &[u8],
        config: &Bound<'_, PyDict>,
        params: &Bound<'_, PyDict>,
        funding_ts: Option<PyReadonlyArray1<'_, i64>>,
        funding_rate: Option<PyReadonlyArray1<'_, f64>>,
        fills: &str,
    ) -> PyResult<Self> {
        let mode = fill_mode(fills)?;
        let (c1, c2) = configs(config)?;
        let p = params_from_dict(params)?;
        let funding = funding_of(funding_ts, funding_rate)?;
        let scale = PriceScale::new(c1.tick_size);
        let qty_step = p.qty_step;
        let inner = py
            .detach(|| StreamingDriver::restore(data, c1, c2, p, funding, mode))
            .map_err(to_py)?;
        Ok(Self {
            inner: Some(inner),
            scale,
            qty_step,
        })
    }

    /// The trading state now (book, working entry, equity, kill switch, day P&L).
    fn state<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.driver()?.state();
        state_dict(py, &s)
    }

    /// Closed trades from index `n` on, in the `trades` layout of `finish()`.
    fn trades_since<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyDict>> {
        let t = self.driver()?.trades_since(n);
        trades_dict(py, t)
    }

    /// Feed sorted trades and quotes (dicts of arrays, either may be None) in time order;
    /// returns the minutes this closed and decided (arrays: ts_min, action, reason,
    /// signals, events, heat, equity).
    #[pyo3(signature = (trades = None, quotes = None))]
    fn push<'py>(
        &mut self,
        py: Python<'py>,
        trades: Option<&Bound<'py, PyDict>>,
        quotes: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (ta, qa) = (trade_arrays(trades)?, quote_arrays(quotes)?);
        let (t, q) = (trade_cols(&ta, self.scale)?, quote_cols(&qa, self.scale)?);
        let d = self.driver()?;
        let mut out = Vec::new();
        py.detach(|| d.feed(&t, &q, &mut out)).map_err(to_py)?;
        decided_dict(py, &out, self.qty_step)
    }

    /// Close and decide every minute up to and including `ts_min` (the clock passed its
    /// end without a later event).
    fn close_until<'py>(&mut self, py: Python<'py>, ts_min: i64) -> PyResult<Bound<'py, PyDict>> {
        let mut out = Vec::new();
        self.driver()?
            .close_until(ts_min, &mut out)
            .map_err(to_py)?;
        decided_dict(py, &out, self.qty_step)
    }

    /// End of data: decide the open minute, close what is open at the last mark, and
    /// return the full result (the layout of `backtest()`).
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = self
            .inner
            .take()
            .ok_or_else(|| bad("streaming driver", "already finished".into()))?;
        let mut out = Vec::new();
        let r = py.detach(|| d.finish(&mut out)).map_err(to_py)?;
        result_dict(py, r)
    }

    /// The exchange filled (part of) the entry decided at `order_ts_min` (default: the
    /// working one; `fills="exchange"`); returns whether the order is complete and the
    /// position open.
    #[pyo3(signature = (ts_ms, price, qty, fee, maker = false, order_ts_min = None))]
    fn entry_fill(
        &mut self,
        ts_ms: i64,
        price: f64,
        qty: f64,
        fee: f64,
        maker: bool,
        order_ts_min: Option<i64>,
    ) -> PyResult<bool> {
        self.driver()?
            .entry_fill(ts_ms, price, qty, fee, maker, order_ts_min)
            .map_err(to_py)
    }

    /// The entry decided at `order_ts_min` (default: the working one) ended (cancelled,
    /// rejected, expired) with what filled so far.
    #[pyo3(signature = (ts_ms, order_ts_min = None))]
    fn entry_end(&mut self, ts_ms: i64, order_ts_min: Option<i64>) -> PyResult<()> {
        self.driver()?.entry_end(ts_ms, order_ts_min).map_err(to_py)
    }

    /// The exchange filled (part of) an exit; `kind`: stop|tp1|tp2|market. Returns
    /// whether the position is flat.
    fn exit_fill(
        &mut self,
        kind: &str,
        ts_ms: i64,
        price: f64,
        qty: f64,
        fee: f64,
    ) -> PyResult<bool> {
        let k = ExitKind::parse(kind).map_err(to_py)?;
        self.driver()?
            .exit_fill(k, ts_ms, price, qty, fee)
            .map_err(to_py)
    }

    /// Compact the minute table of a long-running (live) driver: keep at least `rows`
    /// rows (and any row a working order refers to), once it holds twice as many; `None`:
    /// never (the default; a replay reports every minute). Decisions are unchanged.
    #[pyo3(signature = (rows))]
    fn set_keep_rows(&mut self, rows: Option<usize>) -> PyResult<()> {
        self.driver()?.set_keep_rows(rows);
        Ok(())
    }

    /// Live: the kernel's cash becomes the exchange's wallet balance (sizing from the real
    /// account; the difference is no P&L). Returns the adjustment (0 before the first
    /// decided minute: kept and applied then).
    fn sync_cash(&mut self, wallet: f64) -> PyResult<f64> {
        self.driver()?.sync_cash(wallet).map_err(to_py)
    }

    /// Funding settled on the open position (positive = received).
    fn funding_paid(&mut self, amount: f64) -> PyResult<()> {
        self.driver()?.funding_paid(amount).map_err(to_py)
    }

    /// Trades and quotes fed so far.
    #[getter]
    fn events(&self) -> u64 {
        self.inner.as_ref().map_or(0, |d| d.events())
    }

    /// Allow or refuse new entries from the next decided minute on:
    /// `allowed` | `close_only` | `blocked` (the live graph's activation and halts).
    fn set_permission(&mut self, permission: &str) -> PyResult<()> {
        let p = Permission::parse(permission).map_err(to_py)?;
        self.driver()?.set_permission(p);
        Ok(())
    }

    /// Why the driver refuses events (the first error it met), or None.
    #[getter]
    fn halted(&self) -> Option<String> {
        self.inner
            .as_ref()
            .and_then(|d| d.halted().map(str::to_string))
    }

    /// Minutes decided so far.
    #[getter]
    fn minutes(&self) -> usize {
        self.inner.as_ref().map_or(0, |d| d.minutes())
    }
}

/// The feature columns the minute table is built from (names as stored).
#[pyfunction]
fn feature_input_names() -> Vec<&'static str> {
    feature_input_columns()
}

/// The backtester's minute table (a dict of arrays) from merged stage-1 + stage-2 arrays,
/// through the same Rust path the streaming driver uses; `use_bvc`: `use_bvc_fallback`.
#[pyfunction]
fn backtest_minute_table<'py>(
    py: Python<'py>,
    arrays: &Bound<'py, PyDict>,
    use_bvc: bool,
) -> PyResult<Bound<'py, PyDict>> {
    fn get<'py, T: numpy::Element>(
        d: &Bound<'py, PyDict>,
        key: &str,
    ) -> PyResult<Option<PyReadonlyArray1<'py, T>>> {
        match d.get_item(key)? {
            None => Ok(None),
            Some(v) => v
                .extract::<PyReadonlyArray1<'py, T>>()
                .map(Some)
                .map_err(|_| {
                    bad(
                        &format!("feature column `{key}`"),
                        format!("must be a 1-d {} array", std::any::type_name::<T>()),
                    )
                }),
        }
    }
    let mut f = Vec::new();
    let mut i = Vec::new();
    let mut b = Vec::new();
    for n in FEATURE_F64_COLUMNS {
        if let Some(a) = get::<f64>(arrays, n)? {
            f.push((*n, a));
        }
    }
    for n in FEATURE_I64_COLUMNS {
        if let Some(a) = get::<i64>(arrays, n)? {
            i.push((n, a));
        }
    }
    for n in FEATURE_BOOL_COLUMNS {
        if let Some(a) = get::<bool>(arrays, n)? {
            b.push((n, a));
        }
    }
    let contiguous = |n: &str| {
        bad(
            &format!("feature column `{n}`"),
            "must be contiguous".into(),
        )
    };
    let fs: Vec<(&str, &[f64])> = f
        .iter()
        .map(|(n, a)| a.as_slice().map(|s| (*n, s)).map_err(|_| contiguous(n)))
        .collect::<PyResult<_>>()?;
    let is: Vec<(&str, &[i64])> = i
        .iter()
        .map(|(n, a)| a.as_slice().map(|s| (*n, s)).map_err(|_| contiguous(n)))
        .collect::<PyResult<_>>()?;
    let bs: Vec<(&str, &[bool])> = b
        .iter()
        .map(|(n, a)| a.as_slice().map(|s| (*n, s)).map_err(|_| contiguous(n)))
        .collect::<PyResult<_>>()?;
    let cols = FeatureColumns::gather(
        |n| fs.iter().find(|x| x.0 == n).map(|x| x.1),
        |n| is.iter().find(|x| x.0 == n).map(|x| x.1),
        |n| bs.iter().find(|x| x.0 == n).map(|x| x.1),
    )
    .map_err(to_py)?;
    let t = py.detach(|| minute_table(&cols, use_bvc)).map_err(to_py)?;
    owned_dict(py, t)
}

/// For every minute, the row whose first quote is its fill reference (-1: none follows).
#[pyfunction]
fn fill_reference_rows<'py>(
    py: Python<'py>,
    ts_min: PyReadonlyArray1<'py, i64>,
    fq_ts: PyReadonlyArray1<'py, i64>,
    fq_bid_px: PyReadonlyArray1<'py, f64>,
    fq_ask_px: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, numpy::PyArray1<i64>>> {
    let nc = || bad("fill_reference_rows", "arrays must be contiguous".into());
    let (m, t, b, a) = (
        ts_min.as_slice().map_err(|_| nc())?,
        fq_ts.as_slice().map_err(|_| nc())?,
        fq_bid_px.as_slice().map_err(|_| nc())?,
        fq_ask_px.as_slice().map_err(|_| nc())?,
    );
    if m.len() != t.len() || b.len() != t.len() || a.len() != t.len() {
        return Err(bad(
            "fill_reference_rows",
            format!(
                "lengths differ: {} / {} / {} / {}",
                m.len(),
                t.len(),
                b.len(),
                a.len()
            ),
        ));
    }
    Ok(reference_rows(m, t, b, a).into_pyarray(py))
}

/// Rows of the minute table a live driver keeps (`StreamingDriver.set_keep_rows`).
#[pyfunction]
fn stream_keep_rows() -> usize {
    at_backtest::stream::KEEP_ROWS
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(stream_keep_rows, m)?)?;
    m.add_function(wrap_pyfunction!(fill_reference_rows, m)?)?;
    m.add_class::<PyStreamingDriver>()?;
    m.add_function(wrap_pyfunction!(feature_input_names, m)?)?;
    m.add_function(wrap_pyfunction!(backtest_minute_table, m)?)?;
    Ok(())
}
