//! Test helpers: tick builders and a small seeded market generator (xorshift, no deps).
#![allow(dead_code)]

use at_features::{Quote, Trade};

pub const M: i64 = 60_000;

pub fn tr(ts: i64, seq: i64, px: i64, size: f64, ex: i8) -> Trade {
    Trade {
        ts_ms: ts,
        seq,
        price_ticks: px,
        size,
        exchange_side: ex,
    }
}

pub fn qt(ts: i64, seq: i64, bid: i64, ask: i64, bsz: f64, asz: f64) -> Quote {
    Quote {
        ts_ms: ts,
        seq,
        bid_ticks: bid,
        bid_sz: bsz,
        ask_ticks: ask,
        ask_sz: asz,
    }
}

pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A random market over `minutes` minutes: a random-walk book, quotes every few hundred ms,
/// trades often several per millisecond (sweeps), the quote a trade causes stamped with the
/// trade's millisecond, occasional silent minutes. Sorted by (ts, seq).
pub fn market(seed: u64, minutes: i64, t0: i64) -> (Vec<Trade>, Vec<Quote>) {
    let mut r = Rng::new(seed);
    let mut bid: i64 = 500_000;
    let mut trades = Vec::new();
    let mut quotes = Vec::new();
    let (mut tseq, mut qseq) = (0i64, 0i64);
    let end = t0 + minutes * M;
    let mut t = t0 + r.below(500) as i64;
    let mut silent_until = 0;
    while t < end {
        if t >= silent_until && r.below(2000) == 0 {
            silent_until = t + M + r.below(2 * M as u64) as i64;
        }
        if t >= silent_until {
            let spread = if r.below(20) == 0 { 2 } else { 1 };
            if r.below(3) == 0 {
                // a trade group at t
                let buy = r.below(2) == 0;
                let n = 1 + r.below(4);
                for k in 0..n {
                    let px = if r.below(10) == 0 {
                        bid + 1 // inside a 2-tick spread sometimes, else at touch
                    } else if buy {
                        bid + spread + k as i64 / 2
                    } else {
                        bid - k as i64 / 2
                    };
                    let size = (1 + r.below(2000)) as f64 * 0.001;
                    trades.push(tr(t, tseq, px, size, if buy { 1 } else { -1 }));
                    tseq += 1;
                }
                // the book reacts in the same millisecond
                if buy {
                    bid += r.below(2) as i64;
                } else {
                    bid -= r.below(2) as i64;
                }
                quotes.push(qt(
                    t,
                    qseq,
                    bid,
                    bid + spread,
                    r.unit() * 5.0,
                    r.unit() * 5.0,
                ));
                qseq += 1;
            } else {
                bid += r.below(3) as i64 - 1;
                quotes.push(qt(
                    t,
                    qseq,
                    bid,
                    bid + spread,
                    r.unit() * 5.0,
                    r.unit() * 5.0,
                ));
                qseq += 1;
            }
        }
        t += 1 + r.below(400) as i64;
    }
    (trades, quotes)
}

/// `run_stage1` on slices (array literals in tests).
pub fn stage1(
    cfg: &at_features::Stage1Config,
    t: &[Trade],
    q: &[Quote],
    rec: bool,
) -> Result<
    (
        Vec<at_features::MinuteSummary>,
        Vec<at_features::stage1::TradeSide>,
    ),
    at_features::AtError,
> {
    at_features::engine::run_stage1(cfg, t, q, rec)
}

/// `run_batch` on slices.
pub fn batch(
    c1: &at_features::Stage1Config,
    c2: &at_features::Stage2Config,
    t: &[Trade],
    q: &[Quote],
) -> Result<Vec<at_features::engine::MinuteOutput>, at_features::AtError> {
    at_features::engine::run_batch(c1, c2, t, q)
}
