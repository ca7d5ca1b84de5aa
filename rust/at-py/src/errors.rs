//! Maps domain errors onto the Python exception tree of `at_core.errors`.

use at_types::AtError;
use pyo3::prelude::*;
use pyo3::types::PyModule;

#[allow(dead_code)]
/// Convert a domain error into `at_core.errors.CoreError` (a subclass of
/// `AuctionTraderError`), keeping the message that names what and where.
pub fn to_py(err: AtError) -> PyErr {
    Python::attach(|py| match PyModule::import(py, "at_core.errors") {
        Ok(m) => match m.getattr("CoreError") {
            Ok(cls) => PyErr::from_value(
                cls.call1((err.to_string(),))
                    .unwrap_or_else(|e| e.into_value(py).into_bound(py).into_any()),
            ),
            Err(e) => e,
        },
        Err(e) => e,
    })
}
