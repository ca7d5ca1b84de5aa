//! Shared by the streaming driver's integration tests: a generated market and the feature
//! configuration they run with.
#![allow(dead_code)]

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
