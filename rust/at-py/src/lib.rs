//! PyO3 bindings of auction-trader. No logic lives here: arrays cross in bulk, long kernels
//! release the GIL, and domain errors map onto the `at_core.errors` exception tree.
//! Each domain crate has its own module file; `register` adds its functions and classes.

use pyo3::prelude::*;

mod backtest;
mod errors;
mod features;
mod ingest;
mod profile;
mod stats;
mod strategy;
mod stream;
mod synth;

/// Version of the compiled core, to check the extension matches the Python package.
#[pyfunction]
fn core_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(core_version, m)?)?;
    synth::register(m)?;
    features::register(m)?;
    profile::register(m)?;
    ingest::register(m)?;
    strategy::register(m)?;
    backtest::register(m)?;
    stream::register(m)?;
    stats::register(m)?;
    Ok(())
}
