//! Bindings of at-features (arrays in, arrays out; no logic here).
//!
//! Trades and quotes cross as dicts of NumPy arrays (`at_core.features.engine` builds them
//! with the right dtypes); results come back as dicts of NumPy arrays, computed with the
//! GIL released. Config is a plain dict of config keys (unknown keys ignored).

use at_features::columns::{
    output_columns, stage1_columns, stage2_columns, stage2_from_columns, trade_columns, Columns,
    QuoteColumns, Stage2Source, TradeColumns,
};
use at_features::engine::{feed_stage1, run_stage1, FeatureEngine};
use at_features::stage2::FeatureRow;
use at_features::{
    AtError, PriceScale, Quote, QuoteMatch, SideSource, Stage1Config, Stage2Config, Trade,
};
use numpy::{IntoPyArray, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::to_py;

fn bad(location: &str, message: String) -> PyErr {
    to_py(AtError::InvalidInput {
        location: location.into(),
        message,
    })
}

fn get<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<T>> {
    match d.get_item(key)? {
        None => Ok(None),
        Some(v) => v.extract::<T>().map(Some).map_err(|_| {
            bad(
                &format!("config `{key}`"),
                format!("expected a value of type {}", std::any::type_name::<T>()),
            )
        }),
    }
}

/// The config keys the feature engine reads (stage 1 and stage 2): the one list, exported
/// to Python (`features_config_keys`), which builds the engine's config dict from it.
pub(crate) const ENGINE_CONFIG_KEYS: [&str; 19] = [
    "tick_size",
    "base_bin_ticks",
    "max_quote_staleness_ms",
    "quote_match",
    "side_source",
    "use_tick_rule_fallback",
    "qimb_ema_span_seconds",
    "max_gap_minutes",
    "rolling_window_minutes",
    "va_fraction",
    "alpha_bin",
    "bin_width_max_ticks",
    "rebucket_interval_minutes",
    "rebucket_change_pct",
    "min_va_bins",
    "spread_lookback_minutes",
    "use_bvc_fallback",
    "bvc_lookback_minutes",
    "warmup_minutes",
];

pub(crate) fn configs(d: &Bound<'_, PyDict>) -> PyResult<(Stage1Config, Stage2Config)> {
    // a key the engine does not read would be silently ignored: refuse it
    for k in d.keys() {
        let k: String = k.extract()?;
        if !ENGINE_CONFIG_KEYS.contains(&k.as_str()) {
            return Err(bad(
                "config",
                format!("`{k}` is not a feature-engine key (see features_config_keys())"),
            ));
        }
    }
    let mut c1 = Stage1Config::default();
    let mut c2 = Stage2Config::default();
    if let Some(v) = get::<f64>(d, "tick_size")? {
        c1.tick_size = v;
        c2.tick_size = v;
    }
    if let Some(v) = get::<i64>(d, "base_bin_ticks")? {
        c1.base_bin_ticks = v;
        c2.base_bin_ticks = v;
    }
    if let Some(v) = get::<i64>(d, "max_quote_staleness_ms")? {
        c1.max_quote_staleness_ms = v;
    }
    if let Some(v) = get::<String>(d, "quote_match")? {
        c1.quote_match = QuoteMatch::parse(&v).map_err(to_py)?;
    }
    if let Some(v) = get::<String>(d, "side_source")? {
        c1.side_source = SideSource::parse(&v).map_err(to_py)?;
    }
    if let Some(v) = get::<bool>(d, "use_tick_rule_fallback")? {
        c1.use_tick_rule_fallback = v;
    }
    if let Some(v) = get::<f64>(d, "qimb_ema_span_seconds")? {
        c1.qimb_ema_span_seconds = v;
    }
    if let Some(v) = get::<i64>(d, "max_gap_minutes")? {
        c1.max_gap_minutes = v;
    }
    macro_rules! s2 {
        ($key:literal, $t:ty, $field:ident) => {
            if let Some(v) = get::<$t>(d, $key)? {
                c2.$field = v;
            }
        };
    }
    s2!("rolling_window_minutes", i64, rolling_window_minutes);
    s2!("va_fraction", f64, va_fraction);
    s2!("alpha_bin", f64, alpha_bin);
    s2!("bin_width_max_ticks", i64, bin_width_max_ticks);
    s2!("rebucket_interval_minutes", i64, rebucket_interval_minutes);
    s2!("rebucket_change_pct", f64, rebucket_change_pct);
    s2!("min_va_bins", i64, min_va_bins);
    s2!("spread_lookback_minutes", i64, spread_lookback_minutes);
    s2!("use_bvc_fallback", bool, use_bvc_fallback);
    s2!("bvc_lookback_minutes", i64, bvc_lookback_minutes);
    s2!("warmup_minutes", i64, warmup_minutes);
    c1.validate().map_err(to_py)?;
    c2.validate().map_err(to_py)?;
    Ok((c1, c2))
}

pub(crate) fn arr<'py, T: numpy::Element>(
    d: &Bound<'py, PyDict>,
    what: &str,
    key: &str,
) -> PyResult<PyReadonlyArray1<'py, T>> {
    let v = d
        .get_item(key)?
        .ok_or_else(|| bad(what, format!("missing array `{key}`")))?;
    v.extract::<PyReadonlyArray1<'py, T>>().map_err(|_| {
        bad(
            what,
            format!("`{key}` must be a 1-d {} array", std::any::type_name::<T>()),
        )
    })
}

pub(crate) fn slice<'a, T: numpy::Element>(
    a: &'a PyReadonlyArray1<'_, T>,
    what: &str,
    key: &str,
) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|_| bad(what, format!("`{key}` must be contiguous")))
}

pub(crate) fn ticks_of(
    scale: &PriceScale,
    p: f64,
    what: &str,
    i: usize,
    key: &str,
) -> PyResult<i64> {
    let t = scale.ticks(p);
    if !p.is_finite() || (scale.price(t) - p).abs() > scale.tick() * 1e-6 {
        return Err(bad(
            &format!("{what} #{i}"),
            format!(
                "{key} {p} is not a finite price on the tick grid (tick_size {})",
                scale.tick()
            ),
        ));
    }
    Ok(t)
}

pub(crate) struct TradeArrays<'py> {
    ts: PyReadonlyArray1<'py, i64>,
    seq: PyReadonlyArray1<'py, i64>,
    px: PyReadonlyArray1<'py, f64>,
    sz: PyReadonlyArray1<'py, f64>,
    side: PyReadonlyArray1<'py, i8>,
}

pub(crate) struct QuoteArrays<'py> {
    ts: PyReadonlyArray1<'py, i64>,
    seq: PyReadonlyArray1<'py, i64>,
    bp: PyReadonlyArray1<'py, f64>,
    bs: PyReadonlyArray1<'py, f64>,
    ap: PyReadonlyArray1<'py, f64>,
    asz: PyReadonlyArray1<'py, f64>,
}

/// trades dict: ts_ms i64, seq i64, price f64, size f64, exchange_side i8.
pub(crate) fn trade_arrays<'py>(
    d: Option<&Bound<'py, PyDict>>,
) -> PyResult<Option<TradeArrays<'py>>> {
    let Some(d) = d else { return Ok(None) };
    let w = "trades";
    Ok(Some(TradeArrays {
        ts: arr(d, w, "ts_ms")?,
        seq: arr(d, w, "seq")?,
        px: arr(d, w, "price")?,
        sz: arr(d, w, "size")?,
        side: arr(d, w, "exchange_side")?,
    }))
}

/// quotes dict: ts_ms i64, seq i64, bid_px f64, bid_sz f64, ask_px f64, ask_sz f64.
pub(crate) fn quote_arrays<'py>(
    d: Option<&Bound<'py, PyDict>>,
) -> PyResult<Option<QuoteArrays<'py>>> {
    let Some(d) = d else { return Ok(None) };
    let w = "quotes";
    Ok(Some(QuoteArrays {
        ts: arr(d, w, "ts_ms")?,
        seq: arr(d, w, "seq")?,
        bp: arr(d, w, "bid_px")?,
        bs: arr(d, w, "bid_sz")?,
        ap: arr(d, w, "ask_px")?,
        asz: arr(d, w, "ask_sz")?,
    }))
}

pub(crate) fn trade_cols<'a>(
    a: &'a Option<TradeArrays<'_>>,
    scale: PriceScale,
) -> PyResult<TradeColumns<'a>> {
    let w = "trades";
    let c = match a {
        None => TradeColumns::new(&[], &[], &[], &[], &[], scale),
        Some(a) => TradeColumns::new(
            slice(&a.ts, w, "ts_ms")?,
            slice(&a.seq, w, "seq")?,
            slice(&a.px, w, "price")?,
            slice(&a.sz, w, "size")?,
            slice(&a.side, w, "exchange_side")?,
            scale,
        ),
    };
    c.map_err(to_py)
}

pub(crate) fn quote_cols<'a>(
    a: &'a Option<QuoteArrays<'_>>,
    scale: PriceScale,
) -> PyResult<QuoteColumns<'a>> {
    let w = "quotes";
    let c = match a {
        None => QuoteColumns::new(&[], &[], &[], &[], &[], &[], scale),
        Some(a) => QuoteColumns::new(
            slice(&a.ts, w, "ts_ms")?,
            slice(&a.seq, w, "seq")?,
            slice(&a.bp, w, "bid_px")?,
            slice(&a.bs, w, "bid_sz")?,
            slice(&a.ap, w, "ask_px")?,
            slice(&a.asz, w, "ask_sz")?,
            scale,
        ),
    };
    c.map_err(to_py)
}

fn to_dict<'py>(py: Python<'py>, c: Columns) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in c.i64s {
        d.set_item(k, v.into_pyarray(py))?;
    }
    for (k, v) in c.f64s {
        d.set_item(k, v.into_pyarray(py))?;
    }
    for (k, v) in c.i8s {
        d.set_item(k, v.into_pyarray(py))?;
    }
    for (k, v) in c.bools {
        d.set_item(k, v.into_pyarray(py))?;
    }
    Ok(d)
}

/// The streaming feature engine (stage 1 chained into stage 2).
#[pyclass(name = "FeatureEngine", module = "at_core._core")]
pub struct PyFeatureEngine {
    inner: FeatureEngine,
    scale: PriceScale,
}

#[pymethods]
impl PyFeatureEngine {
    #[new]
    #[pyo3(signature = (config, record_trades = false))]
    fn new(config: &Bound<'_, PyDict>, record_trades: bool) -> PyResult<Self> {
        let (c1, c2) = configs(config)?;
        let scale = PriceScale::new(c1.tick_size);
        let mut inner = FeatureEngine::new(c1, c2).map_err(to_py)?;
        inner.stage1().set_record_trades(record_trades);
        Ok(Self { inner, scale })
    }

    /// The whole engine as bytes (bit-exact, open minute included).
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let inner = &self.inner;
        let b = py.detach(|| inner.snapshot()).map_err(to_py)?;
        Ok(PyBytes::new(py, &b))
    }

    /// The engine of a `snapshot()`; `config` must be the one it was taken with (a
    /// difference is refused, naming the key). `record_trades` is the snapshot's unless
    /// given (a snapshot taken without it can be continued with it).
    #[staticmethod]
    #[pyo3(signature = (data, config, record_trades = None))]
    fn restore(
        py: Python<'_>,
        data: &[u8],
        config: &Bound<'_, PyDict>,
        record_trades: Option<bool>,
    ) -> PyResult<Self> {
        let (c1, c2) = configs(config)?;
        let scale = PriceScale::new(c1.tick_size);
        let mut inner = py
            .detach(|| FeatureEngine::restore(data, &c1, &c2))
            .map_err(to_py)?;
        if let Some(on) = record_trades {
            inner.stage1().set_record_trades(on);
        }
        Ok(Self { inner, scale })
    }

    /// Feed sorted trades and quotes (dicts of arrays, either may be None) in time order;
    /// returns the minutes this closed (all but the still-open last one).
    #[pyo3(signature = (trades = None, quotes = None))]
    fn push<'py>(
        &mut self,
        py: Python<'py>,
        trades: Option<&Bound<'py, PyDict>>,
        quotes: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (ta, qa) = (trade_arrays(trades)?, quote_arrays(quotes)?);
        let (t, q) = (trade_cols(&ta, self.scale)?, quote_cols(&qa, self.scale)?);
        let inner = &mut self.inner;
        let out = py
            .detach(move || {
                feed_stage1(inner.stage1(), &t, &q)?;
                inner.take_ready()
            })
            .map_err(to_py)?;
        to_dict(py, output_columns(&self.scale, &out))
    }

    /// One trade (live use). Minutes it closes are returned by the next `take_ready`.
    #[pyo3(signature = (ts_ms, seq, price, size, exchange_side = 0))]
    fn push_trade(
        &mut self,
        ts_ms: i64,
        seq: i64,
        price: f64,
        size: f64,
        exchange_side: i8,
    ) -> PyResult<()> {
        let p = ticks_of(&self.scale, price, "trade", 0, "price")?;
        self.inner
            .push_trade(Trade {
                ts_ms,
                seq,
                price_ticks: p,
                size,
                exchange_side,
            })
            .map_err(to_py)
    }

    /// One L1 quote (live use).
    fn push_quote(
        &mut self,
        ts_ms: i64,
        seq: i64,
        bid_px: f64,
        bid_sz: f64,
        ask_px: f64,
        ask_sz: f64,
    ) -> PyResult<()> {
        let b = ticks_of(&self.scale, bid_px, "quote", 0, "bid_px")?;
        let a = ticks_of(&self.scale, ask_px, "quote", 0, "ask_px")?;
        self.inner
            .push_quote(Quote {
                ts_ms,
                seq,
                bid_ticks: b,
                bid_sz,
                ask_ticks: a,
                ask_sz,
            })
            .map_err(to_py)
    }

    /// Minutes closed by events of later minutes, not yet returned.
    fn take_ready<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = self.inner.take_ready().map_err(to_py)?;
        to_dict(py, output_columns(&self.scale, &out))
    }

    /// Close every minute up to and including `ts_min`.
    fn close_minute<'py>(&mut self, py: Python<'py>, ts_min: i64) -> PyResult<Bound<'py, PyDict>> {
        let out = self.inner.close_minute(ts_min).map_err(to_py)?;
        to_dict(py, output_columns(&self.scale, &out))
    }

    /// Close the open minute (end of the data).
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = self.inner.finish().map_err(to_py)?;
        to_dict(py, output_columns(&self.scale, &out))
    }

    /// Per-trade sides recorded since the last call (when built with record_trades=True).
    fn take_trade_sides<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stage1().take_trade_sides();
        to_dict(py, trade_columns(&self.scale, &s))
    }

    /// Timestamp of the latest event seen (i64::MIN before any).
    #[getter]
    fn last_ts(&mut self) -> i64 {
        self.inner.stage1().last_ts()
    }

    /// Trades pushed whose sides are not reported yet (their timestamp group is open).
    #[getter]
    fn pending_trades(&mut self) -> usize {
        self.inner.stage1().pending_trades()
    }
}

/// Stage 1 only over whole arrays: minute columns (+ per-trade columns if asked).
#[pyfunction]
#[pyo3(signature = (trades, quotes, config, record_trades = false))]
fn features_stage1<'py>(
    py: Python<'py>,
    trades: Option<&Bound<'py, PyDict>>,
    quotes: Option<&Bound<'py, PyDict>>,
    config: &Bound<'py, PyDict>,
    record_trades: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let (c1, _) = configs(config)?;
    let scale = PriceScale::new(c1.tick_size);
    let (ta, qa) = (trade_arrays(trades)?, quote_arrays(quotes)?);
    let (t, q) = (trade_cols(&ta, scale)?, quote_cols(&qa, scale)?);
    let (ms, sides) = py
        .detach(move || run_stage1(&c1, &t, &q, record_trades))
        .map_err(to_py)?;
    let refs: Vec<_> = ms.iter().collect();
    let mut c = stage1_columns(&scale, &refs);
    if record_trades {
        c.extend(trade_columns(&scale, &sides));
    }
    to_dict(py, c)
}

/// Stage 2 from stored stage-1 columns (dict with ts_min, bid_px_close, ask_px_close,
/// close, volume, hist_minute, hist_bin, hist_qty).
#[pyfunction]
fn features_stage2<'py>(
    py: Python<'py>,
    stage1: &Bound<'py, PyDict>,
    config: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let (_, c2) = configs(config)?;
    let w = "stage1";
    let (ts, b, a, c, v, hm, hb, hq) = (
        arr::<i64>(stage1, w, "ts_min")?,
        arr::<f64>(stage1, w, "bid_px_close")?,
        arr::<f64>(stage1, w, "ask_px_close")?,
        arr::<f64>(stage1, w, "close")?,
        arr::<f64>(stage1, w, "volume")?,
        arr::<i64>(stage1, w, "hist_minute")?,
        arr::<i64>(stage1, w, "hist_bin")?,
        arr::<i64>(stage1, w, "hist_qty")?,
    );
    let src = Stage2Source {
        ts_min: slice(&ts, w, "ts_min")?,
        bid_px_close: slice(&b, w, "bid_px_close")?,
        ask_px_close: slice(&a, w, "ask_px_close")?,
        close: slice(&c, w, "close")?,
        volume: slice(&v, w, "volume")?,
        hist_minute: slice(&hm, w, "hist_minute")?,
        hist_bin: slice(&hb, w, "hist_bin")?,
        hist_qty: slice(&hq, w, "hist_qty")?,
    };
    let rows = py
        .detach(|| stage2_from_columns(&c2, &src))
        .map_err(to_py)?;
    let refs: Vec<&FeatureRow> = rows.iter().collect();
    to_dict(py, stage2_columns(&refs))
}

/// Both stages over whole arrays (= the streaming engine fed in one loop).
#[pyfunction]
#[pyo3(signature = (trades, quotes, config))]
fn features_batch<'py>(
    py: Python<'py>,
    trades: Option<&Bound<'py, PyDict>>,
    quotes: Option<&Bound<'py, PyDict>>,
    config: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let (c1, c2) = configs(config)?;
    let scale = PriceScale::new(c1.tick_size);
    let (ta, qa) = (trade_arrays(trades)?, quote_arrays(quotes)?);
    let (t, q) = (trade_cols(&ta, scale)?, quote_cols(&qa, scale)?);
    let out = py
        .detach(move || at_features::engine::run_batch(&c1, &c2, &t, &q))
        .map_err(to_py)?;
    to_dict(py, output_columns(&scale, &out))
}

/// Size units per 1.0 of size in the histogram columns (`hist_qty`).
#[pyfunction]
fn features_volume_quantum() -> f64 {
    at_features::VOLUME_QUANTUM
}

/// The config keys the feature engine reads, in order.
#[pyfunction]
fn features_config_keys() -> Vec<&'static str> {
    ENGINE_CONFIG_KEYS.to_vec()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(features_config_keys, m)?)?;
    m.add_class::<PyFeatureEngine>()?;
    m.add_function(wrap_pyfunction!(features_stage1, m)?)?;
    m.add_function(wrap_pyfunction!(features_stage2, m)?)?;
    m.add_function(wrap_pyfunction!(features_batch, m)?)?;
    m.add_function(wrap_pyfunction!(features_volume_quantum, m)?)?;
    Ok(())
}
