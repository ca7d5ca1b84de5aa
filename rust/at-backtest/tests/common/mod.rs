//! Shared by the streaming driver's integration tests: a generated market and the feature
//! configuration they run with.
#![allow(dead_code)]

use at_backtest::stream::{Decided, StreamingDriver};
use at_features::{Stage1Config, Stage2Config};
use at_synth::gen::Generator;
use at_synth::params::SynthParams;
use at_types::{Quote, Trade};

pub const DAY0: i64 = 1_704_067_200_000; // 2024-01-01 00:00 UTC
pub const HOUR: i64 = 3_600_000;

pub fn ticks(hours: i64, seed: u64) -> (Vec<Trade>, Vec<Quote>) {
    let mut g = Generator::new(seed, DAY0, SynthParams::default()).unwrap();
    let b = g.generate_until(DAY0 + hours * HOUR).unwrap();
    let trades = (0..b.n_trades())
        .map(|i| {
            let mut t = b.trade(i);
            t.size *= 0.001;
            t
        })
        .collect();
    let quotes = (0..b.n_quotes())
        .map(|i| {
            let mut q = b.quote(i);
            q.bid_sz *= 0.001;
            q.ask_sz *= 0.001;
            q
        })
        .collect();
    (trades, quotes)
}

pub fn configs() -> (Stage1Config, Stage2Config) {
    let c1 = Stage1Config::default();
    let c2 = Stage2Config {
        rolling_window_minutes: 120,
        ..Stage2Config::default()
    };
    (c1, c2)
}

/// One market event, as the live collector delivers them.
#[derive(Clone, Copy, Debug)]
pub enum Ev {
    T(Trade),
    Q(Quote),
}

impl Ev {
    pub fn ts_ms(&self) -> i64 {
        match self {
            Ev::T(t) => t.ts_ms,
            Ev::Q(q) => q.ts_ms,
        }
    }

    /// Push this event into a driver.
    pub fn push(self, d: &mut StreamingDriver, out: &mut Vec<Decided>) {
        match self {
            Ev::T(t) => d.push_trade(t, out).unwrap(),
            Ev::Q(q) => d.push_quote(q, out).unwrap(),
        }
    }
}

/// Trades and quotes merged in the batch feed's order: by time, quotes first within a
/// millisecond (a trade's side is judged against the quote in force, so the order matters).
pub struct Events<'a> {
    trades: &'a [Trade],
    quotes: &'a [Quote],
    i: usize,
    j: usize,
}

impl<'a> Events<'a> {
    pub fn new(trades: &'a [Trade], quotes: &'a [Quote]) -> Self {
        Events {
            trades,
            quotes,
            i: 0,
            j: 0,
        }
    }
}

impl Iterator for Events<'_> {
    type Item = Ev;

    fn next(&mut self) -> Option<Ev> {
        let (t, q) = (self.trades.get(self.i), self.quotes.get(self.j));
        match (t, q) {
            (None, None) => None,
            (Some(t), Some(q)) if t.ts_ms < q.ts_ms => {
                self.i += 1;
                Some(Ev::T(*t))
            }
            (_, Some(q)) => {
                self.j += 1;
                Some(Ev::Q(*q))
            }
            (Some(t), None) => {
                self.i += 1;
                Some(Ev::T(*t))
            }
        }
    }
}
