//! at-backtest: the bid/ask fill model, fees, funding, event loop, metrics and the batch
//! runner of auction-trader (SPEC §12), driving the `at-strategy` kernel.
//!
//! `run` gives one full result (trades, equity, decisions); `run_batch` evaluates many
//! parameter sets over one borrowed feature table and returns only metrics (the grid's
//! inner loop: the table is never copied per set).

pub mod engine;
pub mod features;
pub mod metrics;
pub mod prepared;
pub mod stream;
pub mod synth;
pub mod table;

pub use engine::{
    daily_days, run, run_batch, run_batch_daily, run_with, BacktestResult, Core, DecisionRow,
    Decisions, Engine, Output, RunPath, TradeRecord,
};
pub use metrics::Metrics;
pub use prepared::Prepared;
pub use table::{MinuteTable, OwnedTable, Row, TickPath};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fill_timing;
#[cfg(test)]
mod tests_gaps;
#[cfg(test)]
mod tests_snapshot;
