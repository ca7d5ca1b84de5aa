//! Bindings of at-synth (arrays in, arrays out; no logic here).
//!
//! `SynthGenerator` wraps the resumable generator. Each call returns the next stretch of
//! the market as NumPy arrays in one go, generated with the GIL released.

use at_synth::{Generator, RegimeKind, SynthParams, TickBatch, GENERATOR_VERSION};
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;

/// Seeded synthetic BTCUSDT market (trades + L1 quotes), resumable day by day.
#[pyclass(name = "SynthGenerator", module = "at_core._core")]
pub struct PySynthGenerator {
    inner: Generator,
    seed: u64,
}

#[pymethods]
impl PySynthGenerator {
    /// `activity` scales the event flow (`SynthParams::activity`, in (0, 20]; 1.0 is the
    /// calibrated market); `accept_prob` the share of breakouts that are accepted (default:
    /// the calibrated market's; a higher one plants a continuation edge).
    #[new]
    #[pyo3(signature = (seed, start_ms, start_price = 42_000.0, *, activity = 1.0, accept_prob = None))]
    fn new(
        seed: u64,
        start_ms: i64,
        start_price: f64,
        activity: f64,
        accept_prob: Option<f64>,
    ) -> PyResult<Self> {
        let base = SynthParams::default();
        let p = SynthParams {
            start_price,
            activity,
            accept_prob: accept_prob.unwrap_or(base.accept_prob),
            ..base
        };
        let inner = Generator::new(seed, start_ms, p).map_err(to_py)?;
        Ok(Self { inner, seed })
    }

    /// Generate every event with `ts_ms < end_ms` not generated yet; returns a dict of
    /// NumPy arrays (see `at_core/_core.pyi`).
    fn generate<'py>(&mut self, py: Python<'py>, end_ms: i64) -> PyResult<Bound<'py, PyDict>> {
        let inner = &mut self.inner;
        let batch = py
            .detach(move || inner.generate_until(end_ms))
            .map_err(to_py)?;
        to_dict(py, batch, self.inner.params())
    }

    /// Generate up to the next UTC midnight (a whole day when called at midnight).
    fn next_day<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let end = self.inner.next_day_end();
        self.generate(py, end)
    }

    #[getter]
    fn seed(&self) -> u64 {
        self.seed
    }
    #[getter]
    fn start_ms(&self) -> i64 {
        self.inner.start_ms()
    }
    /// End (exclusive) of what has been generated so far.
    #[getter]
    fn now_ms(&self) -> i64 {
        self.inner.now_ms()
    }
    #[getter]
    fn activity(&self) -> f64 {
        self.inner.params().activity
    }

    #[getter]
    fn accept_prob(&self) -> f64 {
        self.inner.params().accept_prob
    }
    #[getter]
    fn tick_size(&self) -> f64 {
        1.0 / self.inner.params().ticks_per_unit as f64
    }
    #[getter]
    fn qty_step(&self) -> f64 {
        1.0 / self.inner.params().lots_per_unit as f64
    }
}

fn to_dict<'py>(py: Python<'py>, b: TickBatch, p: &SynthParams) -> PyResult<Bound<'py, PyDict>> {
    // Division (not multiplication by 0.1) gives the double nearest to the decimal price,
    // the same value a CSV parser produces for "42000.1".
    let tpu = p.ticks_per_unit as f64;
    let lpu = p.lots_per_unit as f64;
    let px = |v: Vec<i64>| -> Vec<f64> { v.into_iter().map(|t| t as f64 / tpu).collect() };
    let sz = |v: Vec<i64>| -> Vec<f64> { v.into_iter().map(|l| l as f64 / lpu).collect() };
    let regime_ts: Vec<i64> = b.regimes.iter().map(|r| r.ts_ms).collect();
    let regime_kind: Vec<i8> = b.regimes.iter().map(|r| r.kind as i8).collect();
    let regime_centre: Vec<f64> = b.regimes.iter().map(|r| r.centre_ticks / tpu).collect();
    let regime_target: Vec<f64> = b.regimes.iter().map(|r| r.target_ticks / tpu).collect();
    let regime_dir: Vec<i8> = b.regimes.iter().map(|r| r.direction).collect();
    let regime_outcome: Vec<i8> = b.regimes.iter().map(|r| r.outcome).collect();
    let d = PyDict::new(py);
    d.set_item("trade_ts_ms", b.trade_ts.into_pyarray(py))?;
    d.set_item("trade_price", px(b.trade_px).into_pyarray(py))?;
    d.set_item("trade_size", sz(b.trade_lots).into_pyarray(py))?;
    d.set_item("trade_side", b.trade_side.into_pyarray(py))?;
    d.set_item("trade_seq", b.trade_seq.into_pyarray(py))?;
    d.set_item("quote_ts_ms", b.quote_ts.into_pyarray(py))?;
    d.set_item("bid_px", px(b.bid_px).into_pyarray(py))?;
    d.set_item("bid_sz", sz(b.bid_lots).into_pyarray(py))?;
    d.set_item("ask_px", px(b.ask_px).into_pyarray(py))?;
    d.set_item("ask_sz", sz(b.ask_lots).into_pyarray(py))?;
    d.set_item("quote_seq", b.quote_seq.into_pyarray(py))?;
    d.set_item("regime_ts_ms", regime_ts.into_pyarray(py))?;
    d.set_item("regime_kind", regime_kind.into_pyarray(py))?;
    d.set_item("regime_centre", regime_centre.into_pyarray(py))?;
    d.set_item("regime_target", regime_target.into_pyarray(py))?;
    d.set_item("regime_direction", regime_dir.into_pyarray(py))?;
    d.set_item("regime_outcome", regime_outcome.into_pyarray(py))?;
    Ok(d)
}

/// Model version of the generator (part of the lake source id of generated data).
#[pyfunction]
fn synth_generator_version() -> u32 {
    GENERATOR_VERSION
}

/// Names of the regime codes in `regime_kind`, index = code.
#[pyfunction]
fn synth_regime_names() -> Vec<&'static str> {
    [
        RegimeKind::Balance,
        RegimeKind::Drive,
        RegimeKind::Probe,
        RegimeKind::Return,
    ]
    .iter()
    .map(|k| match k {
        RegimeKind::Balance => "balance",
        RegimeKind::Drive => "drive",
        RegimeKind::Probe => "probe",
        RegimeKind::Return => "return",
    })
    .collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySynthGenerator>()?;
    m.add_function(wrap_pyfunction!(synth_generator_version, m)?)?;
    m.add_function(wrap_pyfunction!(synth_regime_names, m)?)?;
    Ok(())
}
