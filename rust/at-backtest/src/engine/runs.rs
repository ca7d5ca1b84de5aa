//! The run entry points over a whole table (full output or metrics only; reference,
//! scan or prepared path) and the batch runner.

use at_strategy::{Action, Decision, MinuteInput, Params};
use at_types::AtError;

use super::{BacktestResult, Engine};
use crate::metrics::Metrics;
use crate::prepared::Prepared;
use crate::table::MinuteTable;

/// Which of the bit-identical paths a run takes (they differ only in speed; the tests
/// compare them bit for bit).
#[derive(Clone, Copy)]
pub enum RunPath<'r> {
    /// Every minute through `Kernel::decide` read from the columns (or from `rows` =
    /// `t.rows()` when given); nothing precomputed: the reference the others are tested
    /// against, and what the streaming driver runs minute by minute.
    Reference { rows: &'r [MinuteInput] },
    /// The reference with idle stretches skipped by a lazy scan (`Engine::with_scan`): the
    /// fastest for one run (preparing a table costs about what it saves).
    Scan,
    /// Over a table prepared for many runs (`prep` must hold the set's signal key and
    /// plan, see `Prepared::add`): the grid's inner loop.
    Prepared(&'r Prepared),
}

/// What a run keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Trades, equity and decisions besides the metrics.
    Full,
    /// Metrics only (the batch runner).
    Metrics,
}

/// The one run entry point: parameters `p` over table `t` along `path`, keeping `out`.
/// `t` is validated here on the reference and scan paths; a prepared table was validated
/// when it was prepared.
pub fn run_with(
    t: &MinuteTable,
    p: Params,
    path: RunPath<'_>,
    out: Output,
) -> Result<BacktestResult, AtError> {
    let keep = out == Output::Full;
    let mut e = match path {
        RunPath::Reference { rows } => {
            t.validate()?;
            let mut e = Engine::new(t, rows, p, keep)?;
            for m in 0..t.len() {
                e.step(m);
            }
            return Ok(e.finish());
        }
        RunPath::Scan => Engine::with_scan(t, p, keep)?,
        RunPath::Prepared(prep) => Engine::with_prepared(t, prep, p, keep)?,
    };
    let mut m = 0;
    while m < t.len() {
        m = e.advance(m);
    }
    Ok(e.finish())
}

/// One backtest with full output along the fastest single-run path (`RunPath::Scan`).
pub fn run(t: &MinuteTable, p: Params) -> Result<BacktestResult, AtError> {
    run_with(t, p, RunPath::Scan, Output::Full)
}

/// Many parameter sets over one table, sharing it (never copied) and its per-table work
/// (`Prepared`: computed once per call, per distinct signal key). `threads <= 1` runs on
/// the calling thread; otherwise sets are split into contiguous chunks over scoped
/// threads. Results are in input order and independent of the thread count; an invalid
/// set gets its error in its slot.
pub fn run_batch(
    t: &MinuteTable,
    params: &[Params],
    threads: usize,
) -> Result<Vec<Result<Metrics, AtError>>, AtError> {
    Ok(run_batch_daily(t, params, threads)?
        .into_iter()
        .map(|r| r.map(|(m, _)| m))
        .collect())
}

/// The UTC days (ms since the epoch / 86,400,000) of a table's minutes `ts_min`, in
/// order: the day of each entry of a run's `daily_returns` (a day without minutes has none).
pub fn daily_days(ts_min: &[i64]) -> Vec<i64> {
    let mut days: Vec<i64> = Vec::new();
    for &ts in ts_min {
        let d = ts.div_euclid(86_400_000);
        if days.last() != Some(&d) {
            days.push(d);
        }
    }
    days
}

/// One set's run in a batch: its metrics and daily returns, or why its parameters failed.
pub type DailyOutcome = Result<(Metrics, Vec<f64>), AtError>;

/// `run_batch` with each run's daily returns (aligned with `daily_days(t.ts_min)`).
pub fn run_batch_daily(
    t: &MinuteTable,
    params: &[Params],
    threads: usize,
) -> Result<Vec<DailyOutcome>, AtError> {
    t.validate()?;
    let mut prep = Prepared::with_rows(t);
    // Invalid sets are skipped here; their run reports the validation error.
    let valid: Vec<bool> = params
        .iter()
        .map(|p| p.validate().is_ok() && prep.add(t, p).is_ok())
        .collect();
    let prep = &prep;
    let one = |(p, ok): (&Params, &bool)| {
        let path = if *ok {
            RunPath::Prepared(prep)
        } else {
            RunPath::Reference { rows: &prep.rows }
        };
        run_with(t, *p, path, Output::Metrics).map(|r| (r.metrics, r.daily_returns))
    };
    if threads <= 1 || params.len() < 2 {
        return Ok(params.iter().zip(&valid).map(one).collect());
    }
    let chunk = params.len().div_ceil(threads);
    let mut out: Vec<DailyOutcome> = Vec::with_capacity(params.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = params
            .chunks(chunk)
            .zip(valid.chunks(chunk))
            .map(|(c, v)| s.spawn(move || c.iter().zip(v).map(one).collect::<Vec<_>>()))
            .collect();
        for h in handles {
            out.extend(h.join().expect("backtest worker panicked"));
        }
    });
    Ok(out)
}

/// Whether a decision is an entry (for reports).
pub fn is_entry(d: &Decision) -> bool {
    matches!(d.action, Action::EnterLong | Action::EnterShort)
}
