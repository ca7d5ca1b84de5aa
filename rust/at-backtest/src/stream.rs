//! The streaming driver: ticks and quotes in as they come, decisions and fills out.
//!
//! It chains the one feature engine (`at_features::FeatureEngine`: stage 1 → stage 2) into
//! the one path from a feature point to the kernel's input (`crate::features`) and the
//! one execution core (`crate::engine::Core`): at every minute close it appends the
//! minute's row to a growing minute table, sets the fill reference of earlier rows that
//! this minute's first quote resolves, and runs that row through exactly the code the
//! batch backtester runs (`Engine::step`). A day replayed through it therefore gives
//! bit-identical trades, fills, equity and decisions to `RunPath::Reference` / `run` over the
//! batch table of the same ticks (tested).
//!
//! What it does not know it does not guess: an order whose reference quote has not
//! arrived stays pending; a minute is decided only when it is closed (by an event of a
//! later minute or by `close_until`, e.g. on the wall clock in live use).
//!
//! Memory: one row per minute is kept (≈ 200 bytes) plus, in tick-path mode, the ticks of
//! the minute being built only.
//!
//! A live graph persists the driver with `snapshot` / `restore` (`stream/snapshot.rs`:
//! bit-exact, refused under other settings) and polls its book with `state` /
//! `trades_since` (`stream/state.rs`).

use at_features::columns::output_columns;
use at_features::engine::{FeatureEngine, MinuteOutput, QuoteSource, TradeSource};
use at_features::{PriceScale, Stage1Config, Stage2Config};
use at_strategy::{Decision, ExitKind, Params, Permission, StopFillMode};
use at_types::{minute_of, AtError, Quote, Trade};

use crate::engine::{BacktestResult, Core, Engine};
use crate::features::{FeatureColumns, TableBuilder};
use crate::table::FundingHistory;

mod snapshot;
mod state;

pub use snapshot::SNAPSHOT_VERSION;
pub use state::{DriverState, OpenPosition, WorkingEntry};

/// Where fills come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FillMode {
    /// The backtester's fill model on the live quotes and trades (paper, shadow).
    Paper,
    /// The exchange's fills, reported through `entry_fill`, `entry_end`, `exit_fill` and
    /// `funding` (live); the minute's decision says which orders to send.
    External,
}

/// One decided minute as the driver reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decided {
    pub decision: Decision,
    /// Equity marked at the minute's close.
    pub equity: f64,
}

/// Ticks + quotes → features → kernel → execution core, one minute at a time.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct StreamingDriver {
    fe: FeatureEngine,
    scale: PriceScale,
    use_bvc: bool,
    p: Params,
    b: TableBuilder,
    core: Option<Core>,
    funding_ts: Vec<i64>,
    funding_rate: Vec<f64>,
    has_funding: bool,
    tick_path: bool,
    mode: FillMode,
    /// Latest event's minute (`i64::MIN` before the first event).
    cur_min: i64,
    events: u64,
    /// The first error seen: the driver refuses every later event (it cannot know what it
    /// missed; a live graph halts and alerts rather than trading on a guess).
    halted: Option<String>,
    /// The live graph's entry permission, applied to the kernel (kept here too so that it
    /// holds from the first minute, before the execution core exists).
    permission: Permission,
    /// The exchange's wallet balance reported before the execution core existed: its cash
    /// from the start (see `sync_cash`).
    cash: Option<f64>,
    /// Rows of the minute table kept by compaction (see `compact`); `None`: never
    /// compacts (a replay or backtest reports every minute's equity and decision).
    keep_rows: Option<usize>,
}

/// Rows of the minute table a live driver keeps: one day. It compacts when it holds
/// twice as many, so a driver running for months holds one to two days of rows.
pub const KEEP_ROWS: usize = 1440;

impl StreamingDriver {
    /// `funding`: the venue's funding instants and rates (`funding_source: history`);
    /// `None` = the fixed rate of `p` at 00/08/16 UTC.
    pub fn new(
        c1: Stage1Config,
        c2: Stage2Config,
        p: Params,
        funding: Option<(Vec<i64>, Vec<f64>)>,
    ) -> Result<Self, AtError> {
        Self::with_mode(c1, c2, p, funding, FillMode::Paper)
    }

    /// `new` with fills from `mode` (`External`: no simulated fills; `funding` must be
    /// `None` then, the exchange reports it).
    pub fn with_mode(
        c1: Stage1Config,
        c2: Stage2Config,
        p: Params,
        funding: Option<(Vec<i64>, Vec<f64>)>,
        mode: FillMode,
    ) -> Result<Self, AtError> {
        if mode == FillMode::External && funding.is_some() {
            return Err(AtError::InvalidConfig {
                key: "funding_source".into(),
                message: "with exchange fills the exchange reports funding; no history is used"
                    .into(),
            });
        }
        p.validate()?;
        if (p.tick_size - c1.tick_size).abs() > 0.0 {
            return Err(AtError::InvalidConfig {
                key: "tick_size".into(),
                message: format!(
                    "the strategy's tick size {} differs from the feature engine's {}",
                    p.tick_size, c1.tick_size
                ),
            });
        }
        let scale = PriceScale::new(c1.tick_size);
        let use_bvc = c2.use_bvc_fallback;
        let (has_funding, (funding_ts, funding_rate)) = match funding {
            Some(f) => (true, f),
            None => (false, (Vec::new(), Vec::new())),
        };
        if has_funding {
            let fh = FundingHistory {
                ts: &funding_ts,
                rate: &funding_rate,
            };
            // the same checks as a batch table's
            let t = crate::table::OwnedTable::default();
            let mut v = t.view();
            v.funding = Some(fh);
            v.validate()?;
        }
        let mut b = TableBuilder::new();
        let tick_path = p.stop_fill_mode == StopFillMode::TickPath;
        if tick_path {
            b.table.tick_start.push(0);
        }
        Ok(Self {
            fe: FeatureEngine::new(c1, c2)?,
            scale,
            use_bvc,
            p,
            b,
            core: None,
            funding_ts,
            funding_rate,
            has_funding,
            tick_path: tick_path && mode == FillMode::Paper,
            mode,
            cur_min: i64::MIN,
            events: 0,
            halted: None,
            permission: Permission::Allowed,
            cash: None,
            keep_rows: None,
        })
    }

    /// Compact the minute table (a long-running live driver; see `compact`): keep at
    /// least `rows` (>= 2) rows, compacting once the table holds twice as many. `None`
    /// (the default): never.
    pub fn set_keep_rows(&mut self, rows: Option<usize>) {
        self.keep_rows = rows.map(|r| r.max(2));
    }

    /// Drop the oldest rows of the minute table, keeping the last `keep_rows` and every
    /// row an order still refers to (its decision row, the row its fill reference comes
    /// after) or that still waits for its own fill reference. The decisions are those of
    /// a driver that never compacts (the engine reads only the minute it decides, the one
    /// before it for gaps, and the rows of working orders; tested), while a live driver's
    /// memory and snapshots stop growing with its age. The per-row equity and decision
    /// records of the dropped rows go too: `finish` then reports the rows kept (the
    /// trades and metrics are whole). Returns the rows dropped.
    pub fn compact(&mut self) -> usize {
        let n = self.b.table.ts_min.len();
        let keep = self.keep_rows.unwrap_or(2);
        if n <= keep {
            return 0;
        }
        let mut k = (n - keep).min(self.b.first_open_row());
        if let Some(r) = self.core.as_ref().and_then(|c| c.first_row_needed()) {
            k = k.min(r);
        }
        if k == 0 {
            return 0;
        }
        self.b.drop_front(k);
        if let Some(c) = self.core.as_mut() {
            c.rows_dropped(k);
        }
        k
    }

    /// Allow, or refuse, new entries from the next decided minute on (the live graph's
    /// activation and halts; see `at_strategy::Permission`).
    pub fn set_permission(&mut self, p: Permission) {
        self.permission = p;
        if let Some(c) = self.core.as_mut() {
            c.set_permission(p);
        }
    }

    /// The entry permission now.
    pub fn permission(&self) -> Permission {
        self.permission
    }

    /// Why the driver stopped taking events, if it did.
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    fn check(&self) -> Result<(), AtError> {
        match &self.halted {
            None => Ok(()),
            Some(why) => Err(AtError::InvalidInput {
                location: "streaming driver".into(),
                message: format!("halted after an earlier error: {why}"),
            }),
        }
    }

    /// Record the first error and pass it on.
    fn halt<T>(&mut self, r: Result<T, AtError>) -> Result<T, AtError> {
        if let Err(e) = &r {
            if self.halted.is_none() {
                self.halted = Some(e.to_string());
            }
        }
        r
    }

    /// Events seen so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Minutes decided so far.
    pub fn minutes(&self) -> usize {
        self.b.table.ts_min.len()
    }

    /// The execution core (kernel, book, working orders), once the first minute closed.
    pub fn core(&self) -> Option<&Core> {
        self.core.as_ref()
    }

    /// One trade (time order across trades and quotes; see `at_features::stage1`). Minutes
    /// it closes are decided and appended to `out`.
    #[inline]
    pub fn push_trade(&mut self, t: Trade, out: &mut Vec<Decided>) -> Result<(), AtError> {
        self.check()?;
        let r = self.fe.push_trade(t);
        self.halt(r)?;
        self.events += 1;
        let r = self.after_event(t.ts_ms, out);
        self.halt(r)?;
        if self.tick_path {
            self.b.table.tick_ts.push(t.ts_ms);
            self.b
                .table
                .tick_price
                .push(self.scale.price(t.price_ticks));
        }
        Ok(())
    }

    /// One L1 quote; minutes it closes are decided and appended to `out`.
    #[inline]
    pub fn push_quote(&mut self, q: Quote, out: &mut Vec<Decided>) -> Result<(), AtError> {
        self.check()?;
        let r = self.fe.push_quote(q);
        self.halt(r)?;
        self.events += 1;
        let r = self.after_event(q.ts_ms, out);
        self.halt(r)
    }

    #[inline]
    fn after_event(&mut self, ts_ms: i64, out: &mut Vec<Decided>) -> Result<(), AtError> {
        let m = minute_of(ts_ms);
        if m > self.cur_min {
            self.cur_min = m;
            let ready = self.fe.take_ready()?;
            self.decide_all(ready, out)?;
        }
        Ok(())
    }

    /// Feed sorted trades and quotes in one merged time order (quotes of a millisecond
    /// before its trades, as the batch feature run does). A bad or out-of-order row stops
    /// the feed with an error naming it; the rows before it stay fed (a live feed cannot
    /// be un-seen), so the caller must treat the driver as halted.
    pub fn feed<T: TradeSource + ?Sized, Q: QuoteSource + ?Sized>(
        &mut self,
        trades: &T,
        quotes: &Q,
        out: &mut Vec<Decided>,
    ) -> Result<(), AtError> {
        self.check()?;
        let r = self.feed_rows(trades, quotes, out);
        self.halt(r)
    }

    fn feed_rows<T: TradeSource + ?Sized, Q: QuoteSource + ?Sized>(
        &mut self,
        trades: &T,
        quotes: &Q,
        out: &mut Vec<Decided>,
    ) -> Result<(), AtError> {
        let (nt, nq) = (trades.len(), quotes.len());
        let (mut i, mut j) = (0usize, 0usize);
        let (mut pt, mut pq) = ((i64::MIN, i64::MIN), (i64::MIN, i64::MIN));
        let row = |kind: &str, k: usize, e: AtError| AtError::InvalidInput {
            location: format!("{kind} #{k}"),
            message: e.to_string(),
        };
        while i < nt || j < nq {
            let quote_next = j < nq && (i == nt || quotes.key(j).0 <= trades.key(i).0);
            if quote_next {
                let q = quotes.get_checked(j).map_err(|e| row("quote", j, e))?;
                if (q.ts_ms, q.seq) < pq {
                    return Err(AtError::OutOfOrder {
                        location: format!("quote #{j}"),
                        message: format!(
                            "(ts_ms, seq) = ({}, {}) comes after {pq:?}",
                            q.ts_ms, q.seq
                        ),
                    });
                }
                pq = (q.ts_ms, q.seq);
                self.push_quote(q, out).map_err(|e| row("quote", j, e))?;
                j += 1;
            } else {
                let t = trades.get_checked(i).map_err(|e| row("trade", i, e))?;
                if (t.ts_ms, t.seq) < pt {
                    return Err(AtError::OutOfOrder {
                        location: format!("trade #{i}"),
                        message: format!(
                            "(ts_ms, seq) = ({}, {}) comes after {pt:?}",
                            t.ts_ms, t.seq
                        ),
                    });
                }
                pt = (t.ts_ms, t.seq);
                self.push_trade(t, out).map_err(|e| row("trade", i, e))?;
                i += 1;
            }
        }
        Ok(())
    }

    /// Close every minute up to and including `ts_min` (the wall clock passed its end with
    /// no later event) and decide them.
    pub fn close_until(&mut self, ts_min: i64, out: &mut Vec<Decided>) -> Result<(), AtError> {
        self.check()?;
        let r = self
            .fe
            .close_minute(ts_min)
            .and_then(|ready| self.decide_all(ready, out));
        self.halt(r)
    }

    fn decide_all(
        &mut self,
        ready: Vec<MinuteOutput>,
        out: &mut Vec<Decided>,
    ) -> Result<(), AtError> {
        for mo in ready {
            out.push(self.decide_one(mo)?);
        }
        Ok(())
    }

    /// Append one closed minute and run it through the execution core.
    fn decide_one(&mut self, mo: MinuteOutput) -> Result<Decided, AtError> {
        // The same conversion the stored stage-1/stage-2 columns go through.
        let cols = output_columns(&self.scale, std::slice::from_ref(&mo));
        let fc = FeatureColumns::from_columns(&cols)?;
        self.b.append(&fc, self.use_bvc)?;
        let m = self.b.table.ts_min.len() - 1;
        if self.tick_path {
            // every tick held so far belongs to this minute (later ones are not pushed yet)
            let n = self.b.table.tick_ts.len() as u32;
            self.b.table.tick_start.push(n);
        }
        let core = match self.core.take() {
            Some(c) => c,
            None => {
                let mut c = Core::new(
                    self.p,
                    true,
                    self.b.table.ts_min[0],
                    self.funding().as_ref(),
                    1440,
                )?;
                c.set_permission(self.permission);
                if let Some(w) = self.cash.take() {
                    c.sync_cash(w);
                }
                match self.mode {
                    FillMode::Paper => c,
                    FillMode::External => c.with_external_fills(),
                }
            }
        };
        let mut view = self.b.table.view();
        view.funding = self.funding();
        let mut e = Engine::bind(&view, &[], core);
        e.step(m);
        let core = e.into_core();
        let d = Decided {
            decision: *core.decision(),
            equity: core.decision().equity,
        };
        self.core = Some(core);
        if self.tick_path {
            // the engine reads a minute's ticks only while deciding it
            let t = &mut self.b.table;
            t.tick_ts.clear();
            t.tick_price.clear();
            t.tick_start.iter_mut().for_each(|s| *s = 0);
        }
        if self
            .keep_rows
            .is_some_and(|k| self.b.table.ts_min.len() >= 2 * k)
        {
            self.compact();
        }
        Ok(d)
    }

    /// Run `f` on the engine bound to the table (external reports); errors halt.
    fn with_engine<R>(
        &mut self,
        what: &str,
        f: impl FnOnce(&mut Engine<'_, '_>) -> Result<R, AtError>,
    ) -> Result<R, AtError> {
        self.check()?;
        if self.mode != FillMode::External {
            return Err(AtError::InvalidInput {
                location: format!("streaming driver {what}"),
                message: "fills are simulated in paper mode; reports are for external fills".into(),
            });
        }
        let Some(core) = self.core.take() else {
            let r = Err(AtError::InvalidInput {
                location: format!("streaming driver {what}"),
                message: "no minute decided yet: there is no order to fill".into(),
            });
            return self.halt(r);
        };
        let view = self.b.table.view();
        let mut e = Engine::bind(&view, &[], core);
        let r = f(&mut e);
        self.core = Some(e.into_core());
        self.halt(r)
    }

    /// The exchange filled (part of) the entry decided at minute `order` (the working
    /// one, or one the kernel cancelled that the exchange filled before the cancel
    /// arrived; `None`: the working one). Returns whether it is complete.
    pub fn entry_fill(
        &mut self,
        ts: i64,
        price: f64,
        qty: f64,
        fee: f64,
        maker: bool,
        order: Option<i64>,
    ) -> Result<bool, AtError> {
        self.with_engine("entry fill", |e| {
            e.external_entry_fill(ts, price, qty, fee, maker, order)
        })
    }

    /// The entry decided at minute `order` ended (cancelled, rejected, expired) with what
    /// filled so far.
    pub fn entry_end(&mut self, ts: i64, order: Option<i64>) -> Result<(), AtError> {
        self.with_engine("entry end", |e| e.external_entry_end(ts, order))
    }

    /// The exchange filled (part of) an exit. Returns whether the position is flat.
    pub fn exit_fill(
        &mut self,
        kind: ExitKind,
        ts: i64,
        price: f64,
        qty: f64,
        fee: f64,
    ) -> Result<bool, AtError> {
        self.with_engine("exit fill", |e| {
            e.external_exit_fill(kind, ts, price, qty, fee)
        })
    }

    /// External fills only: the kernel's cash becomes the exchange's wallet balance
    /// (`at_strategy::Kernel::sync_cash`: sizing from the real account, no P&L from the
    /// difference). Before the first decided minute it is kept and applied then. Returns
    /// the adjustment (0 when kept).
    pub fn sync_cash(&mut self, wallet: f64) -> Result<f64, AtError> {
        self.check()?;
        let bad = |message: String| AtError::InvalidInput {
            location: "streaming driver cash sync".into(),
            message,
        };
        if self.mode != FillMode::External {
            return Err(bad(
                "paper fills keep their own book; the wallet is for live".into(),
            ));
        }
        if !(wallet.is_finite() && wallet > 0.0) {
            return Err(bad(format!(
                "wallet balance {wallet} must be finite and positive"
            )));
        }
        match self.core.as_mut() {
            Some(c) => Ok(c.sync_cash(wallet)),
            None => {
                self.cash = Some(wallet);
                Ok(0.0)
            }
        }
    }

    /// Funding settled on the open position (positive = received).
    pub fn funding_paid(&mut self, amount: f64) -> Result<(), AtError> {
        self.with_engine("funding", |e| e.external_funding(amount))
    }

    fn funding(&self) -> Option<FundingHistory<'_>> {
        self.has_funding.then_some(FundingHistory {
            ts: &self.funding_ts,
            rate: &self.funding_rate,
        })
    }

    /// End of data: close the open minute, decide it, close what is still open at the last
    /// mark (END_OF_DATA) and return the full result, as `run` would over the same ticks.
    pub fn finish(mut self, out: &mut Vec<Decided>) -> Result<BacktestResult, AtError> {
        self.check()?;
        let ready = self.fe.finish()?;
        self.decide_all(ready, out)?;
        let Some(core) = self.core.take() else {
            return Err(AtError::InvalidInput {
                location: "streaming driver".into(),
                message: "no minute was closed: no trade or quote was pushed".into(),
            });
        };
        let mut view = self.b.table.view();
        view.funding = self.funding();
        Ok(Engine::bind(&view, &[], core).finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_halts_the_driver() {
        let mut d = StreamingDriver::new(
            Stage1Config::default(),
            Stage2Config::default(),
            Params::default(),
            None,
        )
        .unwrap();
        let mut out = Vec::new();
        let q = |ts| Quote {
            ts_ms: ts,
            seq: 0,
            bid_ticks: 500_000,
            bid_sz: 1.0,
            ask_ticks: 500_001,
            ask_sz: 1.0,
        };
        d.push_quote(q(1_000), &mut out).unwrap();
        // time goes backwards: refused, and so is everything after it
        let e = d.push_quote(q(500), &mut out).unwrap_err().to_string();
        assert!(d.halted().is_some(), "{e}");
        let again = d.push_quote(q(2_000), &mut out).unwrap_err().to_string();
        assert!(again.contains("halted after an earlier error"), "{again}");
        assert!(d.finish(&mut out).is_err());
    }
}
