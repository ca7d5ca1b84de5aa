//! Bindings of at-strategy (no logic here): the live-path kernel class driven one minute at
//! a time, parameter conversion shared with the backtest bindings, reason-code tables.
//!
//! Parameters cross as a plain dict keyed by config names (`at_core.strategy.params_dict`
//! builds it from `Settings`); keys the kernel does not use are ignored, enum choices are
//! strings, and the result is validated (errors name the key).

use at_strategy::{
    event, sig, Action, Decision, EntryOrder, ExitKind, Kernel, MinuteInput, ParamKind, ParamValue,
    Params, Reason, PARAM_KEYS,
};
use at_types::AtError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList};

use crate::errors::to_py;

fn bad_key(key: &str, message: String) -> PyErr {
    to_py(AtError::InvalidConfig {
        key: key.into(),
        message,
    })
}

/// Kernel + fill-model parameters from a dict of config keys (`at_strategy::PARAM_KEYS`;
/// any other key is an error naming it, a missing key keeps the config default).
pub(crate) fn params_from_dict(d: &Bound<'_, PyDict>) -> PyResult<Params> {
    let mut p = Params::default();
    for (k, v) in d.iter() {
        let key: String = k
            .extract()
            .map_err(|_| bad_key(&format!("{k}"), "parameter keys must be strings".into()))?;
        let Some((_, kind)) = PARAM_KEYS.iter().find(|(n, _)| *n == key) else {
            return Err(bad_key(
                &key,
                "not a strategy or execution parameter".into(),
            ));
        };
        let wrong = |want: &str| bad_key(&key, format!("expected {want}, got {v}"));
        let s: String;
        let value = match kind {
            // a bool is an int in Python: refuse it where a number is meant
            ParamKind::F64 if !v.is_instance_of::<PyBool>() => {
                ParamValue::F64(v.extract().map_err(|_| wrong("a number"))?)
            }
            ParamKind::U32 if !v.is_instance_of::<PyBool>() => {
                ParamValue::U32(v.extract().map_err(|_| wrong("a non-negative integer"))?)
            }
            ParamKind::Bool => ParamValue::Bool(
                v.cast::<PyBool>()
                    .map_err(|_| wrong("true or false"))?
                    .is_true(),
            ),
            ParamKind::Choice(_) => {
                s = v.extract().map_err(|_| wrong("a string"))?;
                ParamValue::Str(&s)
            }
            _ => return Err(wrong("a number")),
        };
        p.set(&key, value).map_err(to_py)?;
    }
    p.validate().map_err(to_py)?;
    Ok(p)
}

const SIGNAL_NAMES: [(u8, &str); 6] = [
    (sig::BREAKIN_LONG, "breakin_long"),
    (sig::BREAKIN_SHORT, "breakin_short"),
    (sig::BREAKOUT_LONG, "breakout_long"),
    (sig::BREAKOUT_SHORT, "breakout_short"),
    (sig::FAILBREAK_LONG, "failbreak_long"),
    (sig::FAILBREAK_SHORT, "failbreak_short"),
];

const EVENT_NAMES: [(u16, &str); 7] = [
    (event::LEVERAGE_CAP_HIT, "LEVERAGE_CAP_HIT"),
    (event::KILL_SWITCH_ON, "KILL_SWITCH_ON"),
    (event::RETEST_ARMED, "RETEST_ARMED"),
    (event::RETEST_FAILED, "RETEST_FAILED"),
    (event::TIME_EXTENDED, "TIME_EXTENDED"),
    (event::DAY_ROLLED, "DAY_ROLLED"),
    (event::ENTRY_CANCELLED, "ENTRY_CANCELLED"),
];

/// One minute field from the dict: required under its exact name (a misnamed or missing
/// key is an error, never a default); `None` is NaN for a float field.
trait MinuteField: Sized {
    fn from_py(key: &str, v: &Bound<'_, PyAny>) -> PyResult<Self>;
}

fn bad_field(key: &str, message: String) -> PyErr {
    to_py(AtError::InvalidInput {
        location: format!("minute field `{key}`"),
        message,
    })
}

impl MinuteField for f64 {
    fn from_py(key: &str, v: &Bound<'_, PyAny>) -> PyResult<Self> {
        if v.is_none() {
            return Ok(f64::NAN);
        }
        if v.is_instance_of::<PyBool>() {
            return Err(bad_field(key, format!("expected a number, got {v}")));
        }
        v.extract()
            .map_err(|_| bad_field(key, format!("expected a number, got {v}")))
    }
}

impl MinuteField for i64 {
    fn from_py(key: &str, v: &Bound<'_, PyAny>) -> PyResult<Self> {
        v.extract()
            .map_err(|_| bad_field(key, format!("expected an integer, got {v}")))
    }
}

impl MinuteField for bool {
    fn from_py(key: &str, v: &Bound<'_, PyAny>) -> PyResult<Self> {
        v.cast::<PyBool>()
            .map(|b| b.is_true())
            .map_err(|_| bad_field(key, format!("expected true or false, got {v}")))
    }
}

macro_rules! minute_fields {
    ($($f:ident: $t:ty),* $(,)?) => {
        /// The fields of one kernel minute, in `MinuteInput` order (exported to Python).
        const MINUTE_FIELDS: &[&str] = &[$(stringify!($f)),*];

        /// A kernel minute from a dict holding exactly the `MinuteInput` fields.
        fn minute_from_dict(d: &Bound<'_, PyDict>) -> PyResult<MinuteInput> {
            for k in d.keys() {
                let k: String = k.extract().map_err(|_| bad_field("?", "keys must be strings".into()))?;
                if !MINUTE_FIELDS.contains(&k.as_str()) {
                    return Err(bad_field(&k, format!(
                        "not a kernel input (expected exactly: {})", MINUTE_FIELDS.join(", ")
                    )));
                }
            }
            Ok(MinuteInput {
                $($f: {
                    let key = stringify!($f);
                    let v = d.get_item(key)?.ok_or_else(|| bad_field(key, "missing".into()))?;
                    <$t as MinuteField>::from_py(key, &v)?
                },)*
            })
        }
    };
}

at_strategy::with_bar_fields!(minute_fields);

/// The fields of one kernel minute (what `StrategyKernel.on_minute` takes).
#[pyfunction]
fn strategy_minute_fields() -> Vec<&'static str> {
    MINUTE_FIELDS.to_vec()
}

pub(crate) fn entry_dict<'py>(
    py: Python<'py>,
    o: &EntryOrder,
    step: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let e = PyDict::new(py);
    e.set_item("side", if o.side > 0 { "LONG" } else { "SHORT" })?;
    e.set_item("setup", o.setup.as_str())?;
    e.set_item("reason", o.reason.as_str())?;
    e.set_item("qty", o.qty_steps as f64 * step)?;
    e.set_item("tp1_qty", o.tp1_steps as f64 * step)?;
    e.set_item("limit_price", o.limit_price)?;
    e.set_item("ref_price", o.ref_price)?;
    e.set_item("stop", o.stop)?;
    e.set_item("tp1", o.tp1)?;
    e.set_item("tp2", o.tp2)?;
    e.set_item("close_inside_level", o.close_inside_level)?;
    e.set_item("decision_ts_ms", o.decision_ts_min + 59_999)?;
    Ok(e)
}

pub(crate) fn event_names(bits: u16) -> Vec<&'static str> {
    EVENT_NAMES
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect()
}

fn decision_dict<'py>(
    py: Python<'py>,
    k: &Kernel,
    d: &Decision,
    x: &MinuteInput,
) -> PyResult<Bound<'py, PyDict>> {
    let step = k.params().qty_step;
    let out = PyDict::new(py);
    out.set_item("ts_min", d.ts_min)?;
    out.set_item("decision_ts_ms", d.ts_min + 59_999)?;
    out.set_item("action", d.action.as_str())?;
    out.set_item("reason", d.reason.as_str())?;
    let sigs = PyDict::new(py);
    for (b, n) in SIGNAL_NAMES {
        sigs.set_item(n, d.signals & b != 0)?;
    }
    out.set_item("signals", sigs)?;
    out.set_item("events", PyList::new(py, event_names(d.events))?)?;
    match &d.exit {
        Some(e) => {
            let ed = PyDict::new(py);
            ed.set_item("reason", e.reason.as_str())?;
            ed.set_item("qty", e.qty_steps as f64 * step)?;
            out.set_item("exit", ed)?;
        }
        None => out.set_item("exit", py.None())?,
    }
    match &d.entry {
        Some(o) => out.set_item("entry", entry_dict(py, o, step)?)?,
        None => out.set_item("entry", py.None())?,
    }
    out.set_item("cancel_entry", d.cancel_entry)?;
    out.set_item("equity", d.equity)?;
    out.set_item("heat", d.heat)?;
    out.set_item("mode", k.mode().as_str())?;
    out.set_item("acceptance_state", k.acceptance_json())?;
    out.set_item("feature_snapshot", x.to_json())?;
    Ok(out)
}

/// The strategy kernel for the live path: one call per finished minute, fills reported back.
#[pyclass(name = "StrategyKernel", module = "at_core._core")]
pub struct PyStrategyKernel {
    inner: Kernel,
}

#[pymethods]
impl PyStrategyKernel {
    #[new]
    fn new(params: &Bound<'_, PyDict>) -> PyResult<Self> {
        Ok(Self {
            inner: Kernel::new(params_from_dict(params)?).map_err(to_py)?,
        })
    }

    /// Restore a kernel from `export_state()` output (SPEC §16).
    #[staticmethod]
    fn restore(params: &Bound<'_, PyDict>, state_json: &str) -> PyResult<Self> {
        Ok(Self {
            inner: Kernel::restore(params_from_dict(params)?, state_json).map_err(to_py)?,
        })
    }

    /// Decide at the close of one minute; `minute` holds the `MinuteInput` fields.
    fn on_minute<'py>(
        &mut self,
        py: Python<'py>,
        minute: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let x = minute_from_dict(minute)?;
        if let Some(last) = self.inner.state().last_ts_min {
            if x.ts_min <= last {
                return Err(to_py(AtError::OutOfOrder {
                    location: format!("minute ts_min {}", x.ts_min),
                    message: format!("does not follow the last minute {last}"),
                }));
            }
        }
        let d = self.inner.on_minute(&x);
        decision_dict(py, &self.inner, &d, &x)
    }

    /// The working entry filled completely.
    fn on_entry_fill(&mut self, ts_ms: i64, price: f64, fee: f64) -> PyResult<()> {
        self.inner.on_entry_fill(ts_ms, price, fee).map_err(to_py)
    }

    /// Part or all of the position closed; `kind` is stop|tp1|tp2|market. Returns True when flat.
    fn on_exit_fill(
        &mut self,
        kind: &str,
        ts_ms: i64,
        price: f64,
        qty: f64,
        fee: f64,
    ) -> PyResult<bool> {
        let k = ExitKind::parse(kind).map_err(to_py)?;
        let steps = (qty / self.inner.params().qty_step).round() as i64;
        self.inner
            .on_exit_fill(k, ts_ms, price, steps, fee)
            .map_err(to_py)
    }

    fn on_funding(&mut self, amount: f64) {
        self.inner.on_funding(amount)
    }

    fn cancel_entry(&mut self) {
        self.inner.cancel_entry()
    }

    /// The whole kernel state as JSON.
    fn export_state(&self) -> String {
        self.inner.export_state()
    }

    #[getter]
    fn mode(&self) -> &'static str {
        self.inner.mode().as_str()
    }

    #[getter]
    fn cash(&self) -> f64 {
        self.inner.cash()
    }

    fn equity(&self, price: f64) -> f64 {
        self.inner.equity_at(price)
    }

    /// The open position as a dict, or None.
    fn position<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(p) = self.inner.position() else {
            return Ok(None);
        };
        let step = self.inner.params().qty_step;
        let d = PyDict::new(py);
        d.set_item("side", if p.side > 0 { "LONG" } else { "SHORT" })?;
        d.set_item("setup", p.setup.as_str())?;
        d.set_item("entry_reason", p.entry_reason.as_str())?;
        d.set_item("qty", p.qty_steps as f64 * step)?;
        d.set_item("tp1_qty", p.tp1_steps as f64 * step)?;
        d.set_item("entry_price", p.entry_price)?;
        d.set_item("stop", p.stop)?;
        d.set_item("tp1", p.tp1)?;
        d.set_item("tp2", p.tp2)?;
        d.set_item("tp1_done", p.tp1_done)?;
        d.set_item("open_ts_ms", p.open_ts_ms)?;
        d.set_item("extended", p.extended)?;
        d.set_item("funding", p.funding)?;
        d.set_item("fees", p.fees)?;
        d.set_item("realized", p.realized)?;
        d.set_item("exit_pending", p.exit_pending.map(|r| r.as_str()))?;
        Ok(Some(d))
    }

    /// The working entry order as a dict, or None.
    fn working_entry<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        match self.inner.working_entry() {
            Some(o) => Ok(Some(entry_dict(py, o, self.inner.params().qty_step)?)),
            None => Ok(None),
        }
    }
}

/// Reason codes in code order (`decisions["reason"]` arrays index into it).
/// Names of `decisions['action']` codes, in code order.
#[pyfunction]
fn strategy_action_names() -> Vec<&'static str> {
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

/// Names of the six setup bits of `decisions['signals']`, bit 0 first (the
/// `signals_1m.signal_*` columns without their prefix).
#[pyfunction]
fn strategy_signal_names() -> Vec<&'static str> {
    let bits = [
        (sig::BREAKIN_LONG, "breakin_long"),
        (sig::BREAKIN_SHORT, "breakin_short"),
        (sig::BREAKOUT_LONG, "breakout_long"),
        (sig::BREAKOUT_SHORT, "breakout_short"),
        (sig::FAILBREAK_LONG, "failbreak_long"),
        (sig::FAILBREAK_SHORT, "failbreak_short"),
    ];
    debug_assert!(bits.iter().enumerate().all(|(i, (b, _))| *b == 1 << i));
    bits.iter().map(|(_, n)| *n).collect()
}

#[pyfunction]
fn strategy_reason_codes() -> Vec<&'static str> {
    Reason::ALL.iter().map(|r| r.as_str()).collect()
}

/// The config keys of the kernel's parameters (declared once, in at-strategy).
#[pyfunction]
fn strategy_param_keys() -> Vec<&'static str> {
    PARAM_KEYS.iter().map(|(k, _)| *k).collect()
}

/// The kernel parameters a dict resolves to, after validation, as JSON (reports, checks).
#[pyfunction]
fn strategy_params_json(params: &Bound<'_, PyDict>) -> PyResult<String> {
    Ok(params_from_dict(params)?.to_json())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStrategyKernel>()?;
    m.add_function(wrap_pyfunction!(strategy_reason_codes, m)?)?;
    m.add_function(wrap_pyfunction!(strategy_action_names, m)?)?;
    m.add_function(wrap_pyfunction!(strategy_signal_names, m)?)?;
    m.add_function(wrap_pyfunction!(strategy_params_json, m)?)?;
    m.add_function(wrap_pyfunction!(strategy_param_keys, m)?)?;
    m.add_function(wrap_pyfunction!(strategy_minute_fields, m)?)?;
    Ok(())
}
