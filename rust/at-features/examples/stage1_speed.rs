//! Pure-Rust stage-1 throughput on a generated day (no bindings):
//! `cargo run --release -p at-features --example stage1_speed [events_millions]`.

use at_features::engine::run_stage1;
use at_features::{Quote, Stage1Config, Trade};
use std::time::Instant;

fn main() {
    let millions: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let nq = millions * 800_000;
    let nt = millions * 200_000;
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let day0 = 1_712_188_800_000i64;
    let mut qts: Vec<i64> = (0..nq)
        .map(|_| day0 + (rnd() % 86_400_000) as i64)
        .collect();
    qts.sort_unstable();
    let mut bid = 600_000i64;
    let quotes: Vec<Quote> = qts
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            bid += (rnd() % 3) as i64 - 1;
            Quote {
                ts_ms: t,
                seq: i as i64,
                bid_ticks: bid,
                bid_sz: (rnd() % 5000) as f64 / 1000.0,
                ask_ticks: bid + 1,
                ask_sz: (rnd() % 5000) as f64 / 1000.0,
            }
        })
        .collect();
    let mut at: Vec<usize> = (0..nt / 2)
        .map(|_| 1 + (rnd() as usize % (nq - 1)))
        .collect();
    at.sort_unstable();
    let mut trades = Vec::with_capacity(nt);
    for &a in &at {
        let buy = rnd() % 2 == 0;
        let q = quotes[a - 1];
        for _ in 0..2 {
            let seq = trades.len() as i64;
            trades.push(Trade {
                ts_ms: quotes[a].ts_ms,
                seq,
                price_ticks: if buy { q.ask_ticks } else { q.bid_ticks },
                size: (1 + rnd() % 2000) as f64 / 1000.0,
                exchange_side: if buy { 1 } else { -1 },
            });
        }
    }
    let n = trades.len() + quotes.len();
    let cfg = Stage1Config::default();
    for _ in 0..3 {
        let t = Instant::now();
        let (m, _) = run_stage1(&cfg, &trades[..], &quotes[..], false).unwrap();
        let s = t.elapsed().as_secs_f64();
        println!(
            "{n} events, {} minutes: {:.3} s = {:.1} M events/s",
            m.len(),
            s,
            n as f64 / s / 1e6
        );
    }
}
