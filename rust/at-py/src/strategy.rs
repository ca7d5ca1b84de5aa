//! Bindings of at-strategy (arrays in, arrays out; no logic here).

use pyo3::prelude::*;

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
