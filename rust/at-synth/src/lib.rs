//! at-synth: the seeded, deterministic synthetic BTCUSDT market (trades + L1 quotes).
//!
//! It is the embedded default data of the demo, the tests and the benchmarks, so two
//! promises matter more than realism in any one detail:
//!
//! * **Same seed, same bytes**, on every platform and however the time range is chunked
//!   (`rng` has its own PRNG and IEEE-only `ln`/`exp`; the generator carries all its state).
//! * **The microstructure the pipeline must cope with**: bursty arrivals, several prints
//!   per aggressive order in one millisecond, the L1 update caused by a trade carrying the
//!   trade's millisecond (after it in `seq`), one-tick spreads that sometimes widen, prices
//!   on the tick grid, heavy-tailed sizes, and an Auction-Market-Theory price path (balance,
//!   accepted and failed breakouts). The exchange aggressor side of every trade is known.
//!
//! Calibration targets and the check against the real windows live in
//! `tests/integration/test_synthetic_vs_real.py`.

pub mod gen;
pub mod params;
pub mod rng;

pub use gen::{Generator, RegimeEvent, RegimeKind, TickBatch};
pub use params::{SynthParams, MAX_ACTIVITY};

/// Version of the generator's model. Bump it whenever the output for a given seed changes,
/// so that stored data can be told apart (it is part of the lake source id).
pub const GENERATOR_VERSION: u32 = 1;
