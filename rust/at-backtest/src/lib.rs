//! at-backtest (work in progress).
