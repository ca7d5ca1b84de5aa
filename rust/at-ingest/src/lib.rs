//! at-ingest: fast decoding of tick archives that are too big for a Python loop.
//!
//! The Bybit order-book archive (`ob500`) holds about 864,000 JSON messages per day with
//! up to 500 levels per side; turning it into L1 quotes means maintaining the whole book.
//! [`ObDecoder`] streams over the decompressed bytes in chunks (bounded memory), keeps the
//! book in exact fixed-point integers and emits one L1 quote per top-of-book change,
//! reporting every anomaly (u gap, crossed book, delta before snapshot, bad line) with its
//! line number instead of papering over it.
//!
//! [`csv::parse`] is the multi-threaded fast path of the hot tick CSV formats (Bybit trade
//! archives, Binance trades / bookTicker exports): clean files straight into typed columns.

mod book;
pub mod csv;
mod ob500;
mod scan;

pub use book::{Applied, Side};
pub use ob500::{Anomaly, AnomalyKind, DecoderStats, L1Quotes, ObDecoder};
pub use scan::{decimal, SCALE};
