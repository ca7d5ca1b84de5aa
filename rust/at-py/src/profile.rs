//! Binding of `at_features::profile_at` (the profile behind one minute's features, for the
//! dashboard): stage-1 columns in, the histogram and value area out, in prices and volume.

use at_features::profile_at::profile_at;
use at_features::{units_to_size, AtError, PriceScale};
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::to_py;
use crate::features::{arr, configs, slice};

/// `stage1`: the dict `features_stage1` returns (hist_minute, hist_bin, hist_qty are read);
/// `bin_width`: the stored features' bin width at `ts_min`, in price units (a whole number
/// of ticks). Returns `price` (lower edges), `volume`, `poc`, `vah`, `val` (NaN without
/// volume), `total_volume`, `va_bin_count`, `bin_width`.
#[pyfunction]
fn features_profile<'py>(
    py: Python<'py>,
    stage1: &Bound<'py, PyDict>,
    config: &Bound<'py, PyDict>,
    ts_min: i64,
    bin_width: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let (_, c2) = configs(config)?;
    let scale = PriceScale::new(c2.tick_size);
    let w = "stage1";
    let (hm, hb, hq) = (
        arr::<i64>(stage1, w, "hist_minute")?,
        arr::<i64>(stage1, w, "hist_bin")?,
        arr::<i64>(stage1, w, "hist_qty")?,
    );
    let (hm, hb, hq) = (
        slice(&hm, w, "hist_minute")?,
        slice(&hb, w, "hist_bin")?,
        slice(&hq, w, "hist_qty")?,
    );
    // the stored width is `scale.price(w)`: back to ticks by the same scale, and it must be
    // a whole number of them (1e-9 relative) and at least one
    let ticks = scale.in_ticks(bin_width);
    if !ticks.is_finite() || ticks < 0.5 || (ticks - ticks.round()).abs() > 1e-9 * ticks {
        return Err(to_py(AtError::InvalidInput {
            location: "bin_width".into(),
            message: format!(
                "{bin_width} is not a whole number of ticks of {}",
                c2.tick_size
            ),
        }));
    }
    let width = ticks.round() as i64;
    let (window, frac) = (c2.rolling_window_minutes, c2.va_fraction);
    let p = py
        .detach(|| profile_at(hm, hb, hq, ts_min, window, width, frac))
        .map_err(to_py)?;
    let price: Vec<f64> = p.bins.iter().map(|b| scale.price(b.0)).collect();
    let volume: Vec<f64> = p.bins.iter().map(|b| units_to_size(b.1)).collect();
    let level = |f: fn(&at_features::profile::ValueArea) -> i64| {
        p.va.as_ref().map_or(f64::NAN, |va| scale.price(f(va)))
    };
    let d = PyDict::new(py);
    d.set_item("price", price.into_pyarray(py))?;
    d.set_item("volume", volume.into_pyarray(py))?;
    d.set_item("poc", level(|va| va.poc))?;
    d.set_item("vah", level(|va| va.vah))?;
    d.set_item("val", level(|va| va.val))?;
    d.set_item("total_volume", units_to_size(p.total))?;
    d.set_item("va_bin_count", p.nonzero_bins)?;
    d.set_item("bin_width", scale.price(width))?;
    Ok(d)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(features_profile, m)?)?;
    Ok(())
}
