//! Maps domain errors onto the Python exception tree of `at_core.errors`.

use at_types::AtError;
use pyo3::prelude::*;
use pyo3::types::PyModule;

/// Convert a domain error into its class of the `at_core.errors` tree, keeping the
/// message that names what and where: a config error is a `CoreConfigError` (a
/// `ConfigError`), bad or out-of-order input a `CoreInputError` (an `InputError`); both are
/// `CoreError`s. No other Python exception leaves the bindings for a domain error.
pub fn to_py(err: AtError) -> PyErr {
    let class = match &err {
        AtError::InvalidConfig { .. } => "CoreConfigError",
        AtError::InvalidInput { .. } | AtError::OutOfOrder { .. } => "CoreInputError",
    };
    Python::attach(|py| match PyModule::import(py, "at_core.errors") {
        Ok(m) => match m.getattr(class) {
            Ok(cls) => PyErr::from_value(
                cls.call1((err.to_string(),))
                    .unwrap_or_else(|e| e.into_value(py).into_bound(py).into_any()),
            ),
            Err(e) => e,
        },
        Err(e) => e,
    })
}
