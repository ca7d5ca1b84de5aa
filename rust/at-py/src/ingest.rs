//! Bindings of at-ingest (arrays in, arrays out; no logic here).
//!
//! `Ob500Decoder` wraps the streaming order-book decoder: Python feeds decompressed byte
//! chunks (the GIL is released while a chunk is decoded) and takes the L1 quotes as NumPy
//! arrays and the anomalies as (line, kind, field, detail) tuples.
//!
//! `parse_csv_fast` is the multi-threaded fast path of the hot CSV formats: a uint8 view of
//! the whole decompressed file in, typed NumPy columns out (allocated here, filled by
//! `csv::fill` without the GIL), or the line and reason why the file is not clean enough
//! for it, so Python runs its general parser instead.

use at_ingest::csv::{self, FieldKind};
use at_ingest::ObDecoder;
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadwriteArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

/// Parse the data lines of a clean CSV (`data[start..]`, physical line `first_line` first):
/// `fields` are (column index, kind) with kind in ts_s | ts_ms | f64 | i64 | str | side |
/// maker | same. Returns `(rows, [column...])` where a column is an int64 / float64 / int8
/// array, a `(offsets int32, data uint8)` pair for str, or `bytes` for same; or
/// `(line, reason)` as a str when the fast path declines the file.
///
/// The columns are NumPy arrays allocated here (NumPy backs big arrays with huge pages,
/// which makes first-touching hundreds of MB several times cheaper than 4 KiB pages) and
/// filled by `csv::fill` with the GIL released.
#[pyfunction]
#[pyo3(signature = (data, start, first_line, ncols, fields, threads=2))]
fn parse_csv_fast<'py>(
    py: Python<'py>,
    data: PyReadonlyArray1<'py, u8>,
    start: usize,
    first_line: u64,
    ncols: usize,
    fields: Vec<(usize, String)>,
    threads: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let bytes = data
        .as_slice()
        .map_err(|_| bad_arg("data must be a contiguous uint8 array".into()))?;
    if start > bytes.len() {
        return Err(bad_arg("start beyond the end of data".into()));
    }
    let mut spec = Vec::with_capacity(fields.len());
    for (i, k) in &fields {
        let kind =
            FieldKind::from_name(k).ok_or_else(|| bad_arg(format!("unknown field kind {k:?}")))?;
        spec.push((*i, kind));
    }
    let body = &bytes[start..];
    let declined = |d: csv::Declined| -> PyResult<Bound<'py, PyAny>> {
        Ok(format!("line {}: {}", d.line, d.reason)
            .into_pyobject(py)?
            .into_any())
    };
    let lay = match py.detach(|| csv::layout(body, first_line, ncols, &spec, threads)) {
        Ok(l) => l,
        Err(d) => return declined(d),
    };
    let rows = lay.rows();
    let arrays: Vec<Array<'py>> = spec
        .iter()
        .enumerate()
        .map(|(k, &(_, kind))| match kind {
            FieldKind::TsSeconds | FieldKind::TsMillis | FieldKind::I64 => {
                Array::I64(PyArray1::zeros(py, rows, false))
            }
            FieldKind::F64 => Array::F64(PyArray1::zeros(py, rows, false)),
            FieldKind::Side | FieldKind::MakerFlag => Array::I8(PyArray1::zeros(py, rows, false)),
            FieldKind::Str => Array::Str(
                PyArray1::zeros(py, rows + 1, false),
                PyArray1::zeros(py, lay.text_len(k), false),
            ),
            FieldKind::Same => Array::Same,
        })
        .collect();
    let filled = {
        let mut guards: Vec<Guard<'py>> = arrays
            .iter()
            .map(|a| match a {
                Array::I64(v) => Guard::I64(v.readwrite()),
                Array::F64(v) => Guard::F64(v.readwrite()),
                Array::I8(v) => Guard::I8(v.readwrite()),
                Array::Str(o, t) => Guard::Str(o.readwrite(), t.readwrite()),
                Array::Same => Guard::Same,
            })
            .collect();
        let contiguous = || bad_arg("new arrays are contiguous".into());
        let mut outs = Vec::with_capacity(guards.len());
        for g in guards.iter_mut() {
            outs.push(match g {
                Guard::I64(v) => csv::Out::I64(v.as_slice_mut().map_err(|_| contiguous())?),
                Guard::F64(v) => csv::Out::F64(v.as_slice_mut().map_err(|_| contiguous())?),
                Guard::I8(v) => csv::Out::I8(v.as_slice_mut().map_err(|_| contiguous())?),
                Guard::Str(o, t) => csv::Out::Str {
                    offsets: o.as_slice_mut().map_err(|_| contiguous())?,
                    text: t.as_slice_mut().map_err(|_| contiguous())?,
                },
                Guard::Same => csv::Out::Same,
            });
        }
        match py.detach(|| csv::fill(body, &lay, outs)) {
            Ok(f) => f,
            Err(d) => return declined(d),
        }
    };
    let mut cols: Vec<Bound<'py, PyAny>> = Vec::with_capacity(arrays.len());
    for ((a, same), text) in arrays.into_iter().zip(filled.same).zip(filled.text) {
        cols.push(match a {
            Array::I64(v) => v.into_any(),
            Array::F64(v) => v.into_any(),
            Array::I8(v) => v.into_any(),
            Array::Str(offsets, t) => {
                let t = match text {
                    Some(whole) => whole.into_pyarray(py),
                    None => t,
                };
                (offsets, t).into_pyobject(py)?.into_any()
            }
            Array::Same => PyBytes::new(py, &same.unwrap_or_default()).into_any(),
        });
    }
    Ok((rows, cols).into_pyobject(py)?.into_any())
}

/// The NumPy arrays `parse_csv_fast` fills, one per field.
enum Array<'py> {
    I64(Bound<'py, PyArray1<i64>>),
    F64(Bound<'py, PyArray1<f64>>),
    I8(Bound<'py, PyArray1<i8>>),
    Str(Bound<'py, PyArray1<i32>>, Bound<'py, PyArray1<u8>>),
    Same,
}

/// Write borrows of those arrays while they are filled.
enum Guard<'py> {
    I64(PyReadwriteArray1<'py, i64>),
    F64(PyReadwriteArray1<'py, f64>),
    I8(PyReadwriteArray1<'py, i8>),
    Str(PyReadwriteArray1<'py, i32>, PyReadwriteArray1<'py, u8>),
    Same,
}

/// Streaming decoder of Bybit ob500 order-book archives into L1 quotes.
#[pyclass(name = "Ob500Decoder", module = "at_core._core")]
pub struct PyOb500Decoder {
    inner: ObDecoder,
}

#[pymethods]
impl PyOb500Decoder {
    #[new]
    fn new() -> Self {
        Self {
            inner: ObDecoder::new(),
        }
    }

    /// Decode the complete lines of `chunk` (a partial last line waits for the next call).
    fn feed(&mut self, py: Python<'_>, chunk: &[u8]) {
        let inner = &mut self.inner;
        py.detach(move || inner.feed(chunk));
    }

    /// Decode a last line without a trailing newline.
    fn finish(&mut self) {
        self.inner.finish();
    }

    /// Quotes emitted since the last call: ts_ms, seq, line (int64), bid_px, bid_sz,
    /// ask_px, ask_sz (float64).
    fn take_quotes<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let q = self.inner.take_quotes();
        let d = PyDict::new(py);
        d.set_item("ts_ms", q.ts_ms.into_pyarray(py))?;
        d.set_item("seq", q.seq.into_pyarray(py))?;
        d.set_item("line", q.line.into_pyarray(py))?;
        d.set_item("bid_px", q.bid_px.into_pyarray(py))?;
        d.set_item("bid_sz", q.bid_sz.into_pyarray(py))?;
        d.set_item("ask_px", q.ask_px.into_pyarray(py))?;
        d.set_item("ask_sz", q.ask_sz.into_pyarray(py))?;
        Ok(d)
    }

    /// Anomalies found since the last call: (line, kind, field, detail).
    fn take_anomalies(&mut self) -> Vec<(u64, &'static str, &'static str, String)> {
        self.inner
            .take_anomalies()
            .into_iter()
            .map(|a| (a.line, a.kind.name(), a.field, a.detail))
            .collect()
    }

    /// Counters (lines, blank_lines, messages, snapshots, deltas, resets, levels_applied,
    /// delete_absent, one_sided, ts_fallback, quotes, max_depth).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        for (k, v) in [
            ("lines", s.lines),
            ("blank_lines", s.blank_lines),
            ("messages", s.messages),
            ("snapshots", s.snapshots),
            ("deltas", s.deltas),
            ("resets", s.resets),
            ("levels_applied", s.levels_applied),
            ("delete_absent", s.delete_absent),
            ("one_sided", s.one_sided),
            ("ts_fallback", s.ts_fallback),
            ("quotes", s.quotes),
            ("max_depth", s.max_depth),
        ] {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Current book depth (bid levels, ask levels).
    #[getter]
    fn depth(&self) -> (usize, usize) {
        self.inner.depth()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyOb500Decoder>()?;
    m.add_function(wrap_pyfunction!(parse_csv_fast, m)?)?;
    Ok(())
}

/// A bad argument to the CSV bindings, in the package's exception tree.
fn bad_arg(message: String) -> PyErr {
    crate::errors::to_py(at_types::AtError::InvalidInput {
        location: "csv scanner arguments".into(),
        message,
    })
}
