//! The one streaming feature engine (stage 1 chained into stage 2) and its batch mode.
//!
//! Batch mode is not a second implementation: [`run_batch`] merges the two time-ordered
//! arrays and feeds the same [`FeatureEngine`] event by event, so batch and streaming
//! outputs are bit-identical by construction (and tested).

use serde::{Deserialize, Serialize};

use crate::minute::MinuteSummary;
use crate::stage1::{Stage1Engine, TradeSide};
use crate::stage2::{FeatureRow, Stage2, Stage2Input};
use crate::{Stage1Config, Stage2Config};
use at_types::{snapshot, AtError, Quote, Trade};

/// Magic of a feature-engine snapshot.
const SNAPSHOT_MAGIC: &[u8; 8] = b"ATFEAT\0\0";
/// Bump whenever a type inside the engine changes its serialised layout (bincode is not
/// self-describing: an old snapshot would otherwise be misread, not refused).
pub const SNAPSHOT_VERSION: u32 = 1;

/// Streaming engine: `push_trade`, `push_quote`, `close_minute`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureEngine {
    s1: Stage1Engine,
    s2: Stage2,
}

/// One closed minute: the stage-1 summary and the stage-2 feature row.
pub type MinuteOutput = (MinuteSummary, FeatureRow);

impl FeatureEngine {
    pub fn new(c1: Stage1Config, c2: Stage2Config) -> Result<Self, AtError> {
        if (c1.tick_size - c2.tick_size).abs() > 0.0 || c1.base_bin_ticks != c2.base_bin_ticks {
            return Err(AtError::InvalidConfig {
                key: "tick_size/base_bin_ticks".into(),
                message: "stage 1 and stage 2 must use the same tick size and base bin".into(),
            });
        }
        Ok(Self {
            s1: Stage1Engine::new(c1)?,
            s2: Stage2::new(c2)?,
        })
    }

    pub fn stage1(&mut self) -> &mut Stage1Engine {
        &mut self.s1
    }

    /// The stage-1 and stage-2 configs the engine runs with.
    pub fn configs(&self) -> (&Stage1Config, &Stage2Config) {
        (self.s1.config(), self.s2.config())
    }

    /// A bit-exact image of the whole engine (open minute, pending trades, quote book,
    /// tick rule, EMA, minutes not yet taken, rolling profile, sigma, spread, BVC), behind
    /// a header (see `at_types::snapshot`). Restored with [`Self::restore`], the engine
    /// continues exactly as this one would.
    pub fn snapshot(&self) -> Result<Vec<u8>, AtError> {
        snapshot::seal(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, "feature engine", self)
    }

    /// The engine of a [`Self::snapshot`]. `c1` / `c2` must equal the configs it was taken
    /// with (the rolling state was built by them): a difference is refused with the key
    /// named, as are damaged or truncated bytes and snapshots of another format version.
    pub fn restore(bytes: &[u8], c1: &Stage1Config, c2: &Stage2Config) -> Result<Self, AtError> {
        let mut e: Self =
            snapshot::open(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, "feature engine", bytes)?;
        e.adopt(c1, c2)?;
        Ok(e)
    }

    /// For an engine deserialised as part of a larger snapshot: refuse configs other than
    /// the ones it was built with, then rebuild what snapshots leave out.
    pub fn adopt(&mut self, c1: &Stage1Config, c2: &Stage2Config) -> Result<(), AtError> {
        snapshot::check_same("stage1", self.s1.config(), c1)?;
        snapshot::check_same("stage2", self.s2.config(), c2)?;
        self.s1.rebuild_derived();
        Ok(())
    }

    pub fn push_trade(&mut self, t: Trade) -> Result<(), AtError> {
        self.s1.push_trade(t)
    }

    pub fn push_quote(&mut self, q: Quote) -> Result<(), AtError> {
        self.s1.push_quote(q)
    }

    /// Minutes closed automatically by events of later minutes, with their features.
    pub fn take_ready(&mut self) -> Result<Vec<MinuteOutput>, AtError> {
        let ready = self.s1.take_ready();
        self.chain(ready)
    }

    /// Close every minute up to `ts_min` (see [`Stage1Engine::close_minute`]).
    pub fn close_minute(&mut self, ts_min: i64) -> Result<Vec<MinuteOutput>, AtError> {
        let ready = self.s1.close_minute(ts_min)?;
        self.chain(ready)
    }

    /// Close the open minute and return everything not yet taken.
    pub fn finish(&mut self) -> Result<Vec<MinuteOutput>, AtError> {
        let ready = self.s1.finish();
        self.chain(ready)
    }

    fn chain(&mut self, ready: Vec<MinuteSummary>) -> Result<Vec<MinuteOutput>, AtError> {
        let mut out = Vec::with_capacity(ready.len());
        for s in ready {
            let row = self.s2.push(Stage2Input::from(&s))?;
            out.push((s, row));
        }
        Ok(out)
    }
}

/// Random access to a batch of trades (a slice, or columns converted on the fly).
pub trait TradeSource: Sync {
    fn len(&self) -> usize;
    fn get(&self, i: usize) -> Trade;
    /// `(ts_ms, seq, size)` of row `i` (validation reads only these).
    #[inline]
    fn key(&self, i: usize) -> (i64, i64, f64) {
        let t = self.get(i);
        (t.ts_ms, t.seq, t.size)
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Row `i` with the checks of the source's own representation (e.g. the tick grid of
    /// float prices); the error names the row.
    #[inline]
    fn get_checked(&self, i: usize) -> Result<Trade, AtError> {
        Ok(self.get(i))
    }
}

/// Random access to a batch of quotes.
pub trait QuoteSource: Sync {
    fn len(&self) -> usize;
    fn get(&self, i: usize) -> Quote;
    /// `(ts_ms, seq, bid_sz, ask_sz)` of row `i`.
    #[inline]
    fn key(&self, i: usize) -> (i64, i64, f64, f64) {
        let q = self.get(i);
        (q.ts_ms, q.seq, q.bid_sz, q.ask_sz)
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    #[inline]
    fn get_checked(&self, i: usize) -> Result<Quote, AtError> {
        Ok(self.get(i))
    }
}

impl TradeSource for [Trade] {
    fn len(&self) -> usize {
        <[Trade]>::len(self)
    }
    #[inline]
    fn get(&self, i: usize) -> Trade {
        self[i]
    }
}

impl QuoteSource for [Quote] {
    fn len(&self) -> usize {
        <[Quote]>::len(self)
    }
    #[inline]
    fn get(&self, i: usize) -> Quote {
        self[i]
    }
}

impl TradeSource for Vec<Trade> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    #[inline]
    fn get(&self, i: usize) -> Trade {
        self[i]
    }
}

impl QuoteSource for Vec<Quote> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    #[inline]
    fn get(&self, i: usize) -> Quote {
        self[i]
    }
}

#[cold]
#[inline(never)]
fn unsorted(kind: &str, i: usize, cur: (i64, i64), prev: (i64, i64)) -> AtError {
    AtError::OutOfOrder {
        location: format!("{kind} #{i}"),
        message: format!(
            "(ts_ms, seq) = {cur:?} comes after {prev:?}; input must be sorted by (ts_ms, seq)"
        ),
    }
}

/// Feed sorted trades and quotes through a stage-1 engine in one merged time order.
///
/// Every row is checked as it is fed (sorted by (ts_ms, seq) within its stream, sizes,
/// the source's own checks); a bad row rolls the engine back to its state before the call
/// ([`Stage1Engine::transaction`]), so nothing is half-fed. Quotes of a millisecond are fed
/// before its trades (any order gives the same result).
pub fn feed_stage1<T: TradeSource + ?Sized, Q: QuoteSource + ?Sized>(
    e: &mut Stage1Engine,
    trades: &T,
    quotes: &Q,
) -> Result<(), AtError> {
    e.transaction(|e| feed_rows(e, trades, quotes))
}

fn feed_rows<T: TradeSource + ?Sized, Q: QuoteSource + ?Sized>(
    e: &mut Stage1Engine,
    trades: &T,
    quotes: &Q,
) -> Result<(), AtError> {
    let (nt, nq) = (trades.len(), quotes.len());
    let (mut i, mut j) = (0usize, 0usize);
    let (mut pt, mut pq) = ((i64::MIN, i64::MIN), (i64::MIN, i64::MIN));
    let wrap_t = |i: usize, e: AtError| with_index(e, "trade", i);
    let wrap_q = |j: usize, e: AtError| with_index(e, "quote", j);
    let mut t = if nt > 0 {
        Some(trades.get_checked(0)?)
    } else {
        None
    };
    let mut q = if nq > 0 {
        Some(quotes.get_checked(0)?)
    } else {
        None
    };
    loop {
        let take_quote = match (t, q) {
            (Some(tt), Some(qq)) => qq.ts_ms <= tt.ts_ms,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (None, None) => return Ok(()),
        };
        if take_quote {
            let qq = q.expect("checked above");
            let key = (qq.ts_ms, qq.seq);
            if key < pq {
                return Err(unsorted("quote", j, key, pq));
            }
            pq = key;
            e.push_quote(qq).map_err(|x| wrap_q(j, x))?;
            j += 1;
            q = if j < nq {
                Some(quotes.get_checked(j)?)
            } else {
                None
            };
        } else {
            let tt = t.expect("checked above");
            let key = (tt.ts_ms, tt.seq);
            if key < pt {
                return Err(unsorted("trade", i, key, pt));
            }
            pt = key;
            e.push_trade(tt).map_err(|x| wrap_t(i, x))?;
            i += 1;
            t = if i < nt {
                Some(trades.get_checked(i)?)
            } else {
                None
            };
        }
    }
}

#[cold]
#[inline(never)]
fn with_index(e: AtError, kind: &str, i: usize) -> AtError {
    match e {
        AtError::InvalidInput { location, message } => AtError::InvalidInput {
            location: format!("{kind} #{i} ({location})"),
            message,
        },
        AtError::OutOfOrder { location, message } => AtError::OutOfOrder {
            location: format!("{kind} #{i} ({location})"),
            message,
        },
        other => other,
    }
}

/// Batch stage 1: all minutes from the first event's to the last event's.
pub fn run_stage1<T: TradeSource + ?Sized, Q: QuoteSource + ?Sized>(
    cfg: &Stage1Config,
    trades: &T,
    quotes: &Q,
    record_trades: bool,
) -> Result<(Vec<MinuteSummary>, Vec<TradeSide>), AtError> {
    let mut e = Stage1Engine::new(cfg.clone())?;
    e.set_record_trades(record_trades);
    feed_stage1(&mut e, trades, quotes)?;
    let out = e.finish();
    Ok((out, e.take_trade_sides()))
}

/// Batch of the whole engine: the streaming engine fed in a loop.
pub fn run_batch<T: TradeSource + ?Sized, Q: QuoteSource + ?Sized>(
    c1: &Stage1Config,
    c2: &Stage2Config,
    trades: &T,
    quotes: &Q,
) -> Result<Vec<MinuteOutput>, AtError> {
    let mut e = FeatureEngine::new(c1.clone(), c2.clone())?;
    feed_stage1(&mut e.s1, trades, quotes)?;
    e.finish()
}
