//! at-strategy: the strategy kernel of auction-trader (SPEC §6–§9).
//!
//! One implementation of every trading decision — acceptance, the three setups, the state
//! machine, sizing, partial exits, stops, cooldown, kill switch, heat — driven minute by
//! minute by both the backtester (`at-backtest`) and the live signal actor (through the
//! PyO3 class in `at-py`). See `kernel.rs` for the spec interpretations.

pub mod input;
pub mod kernel;
pub mod param_keys;
pub mod params;
pub mod prepared;
pub mod reason;
pub mod sizing;

pub use input::{Bar, MinuteInput};
pub use kernel::{
    Action, Decision, EntryOrder, ExitKind, ExitOrder, IdleCols, Kernel, KernelState, Mode,
    Permission, Position, Retest, SeqTrack, Setup,
};
pub use param_keys::{ParamKind, ParamValue, PARAM_KEYS};
pub use params::{LimitPriceMode, OfThresholdMode, Params, QimbSource, StopFillMode};
pub use prepared::{prepare_minutes, signal_key, PreMinute, SignalKey};
pub use reason::{event, sig, Reason};

#[cfg(test)]
mod tests;
