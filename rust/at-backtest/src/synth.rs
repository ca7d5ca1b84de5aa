//! A seeded synthetic *minute* table (bars + features + fill references) for tests and
//! benchmarks of the strategy and the backtester, until the feature engine feeds real
//! ones. Not a market simulator: prices mean-revert around a slowly drifting value centre
//! (1-minute moves of ~18 $ at 50,000, like BTC), the VA is the last 240 closes' mean
//! ± 1.04 σ, and order flow leans with the bar's move, so every setup occurs daily.

use at_strategy::MinuteInput;

use crate::table::OwnedTable;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u = self.next().max(1e-12);
        let v = self.next();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `n` minutes from `start_ms` (a minute boundary). `ticks_per_leg > 0` also builds a tick
/// path per minute (open → first extreme → other extreme → close).
pub fn synthetic_table(n: usize, seed: u64, start_ms: i64, ticks_per_leg: usize) -> OwnedTable {
    let tick = 0.1;
    let q = |p: f64| (p / tick).round() * tick;
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut t = OwnedTable::default();
    let mut centre = 50_000.0;
    let mut px = centre;
    // Rolling 240-minute window of closes: POC ≈ their mean, VA ≈ mean ± 1.04 σ (70 % of
    // a normal), as if volume were spread like time at price.
    let mut win: std::collections::VecDeque<f64> = std::collections::VecDeque::with_capacity(241);
    let (mut sum, mut sum2) = (0.0f64, 0.0f64);
    let mut rows: Vec<MinuteInput> = Vec::with_capacity(n);
    for i in 0..n {
        centre += r.normal() * 3.0;
        let o = q(px);
        px += (centre - px) * 0.005 + r.normal() * 18.0;
        let c = q(px);
        let h = q(o.max(c) + r.next().powi(2) * 25.0);
        let l = q(o.min(c) - r.next().powi(2) * 25.0);
        win.push_back(c - 50_000.0);
        sum += c - 50_000.0;
        sum2 += (c - 50_000.0) * (c - 50_000.0);
        if win.len() > 240 {
            let old = win.pop_front().expect("non-empty");
            sum -= old;
            sum2 -= old * old;
        }
        let nw = win.len() as f64;
        let mean = sum / nw;
        let sd = (sum2 / nw - mean * mean).max(0.0).sqrt();
        let half = (1.04 * sd).max(20.0);
        let poc = q(50_000.0 + mean);
        let volume = 5.0 + r.next() * 45.0;
        let lean = ((c - o) / 30.0).clamp(-1.0, 1.0);
        let of_norm = (0.6 * lean + 0.4 * (r.next() * 2.0 - 1.0)).clamp(-1.0, 1.0);
        let qimb = (0.5 * lean + 0.5 * (r.next() * 2.0 - 1.0)).clamp(-1.0, 1.0);
        // Largest trade-to-trade jump of the minute: a level inside the bar is at most half
        // of it from a trade; outside the bar the nearest trade is the extreme (§6.3 input).
        let half_gap = q(0.1 + r.next() * 0.5) * 0.5;
        let (vah, val) = (q(poc + half), q(poc - half));
        let trade_dist = |level: f64| {
            if level < l {
                l - level
            } else if level > h {
                level - h
            } else {
                half_gap
            }
        };
        let x = MinuteInput {
            ts_min: start_ms + i as i64 * 60_000,
            open: o,
            high: h,
            low: l,
            close: c,
            volume,
            vah_trade_dist: trade_dist(vah),
            val_trade_dist: trade_dist(val),
            mid_close: c + 0.05,
            spread_avg: 0.1 + r.next() * 0.1,
            poc,
            vah,
            val,
            va_valid: i >= 240,
            of_1m: of_norm * volume,
            of_norm_1m: of_norm,
            qimb_close: qimb,
            qimb_ema: (qimb * 0.7).clamp(-1.0, 1.0),
            ambiguous_frac: 0.05 + r.next() * 0.4,
        };
        rows.push(x);
    }
    for i in 0..n {
        let x = rows[i];
        let (nq_ts, bid, ask) = if i + 1 < n {
            let nxt = rows[i + 1].open;
            let spread = if r.next() < 0.95 { tick } else { 2.0 * tick };
            let bid = if r.next() < 0.5 { q(nxt - tick) } else { nxt };
            (
                x.ts_min + 60_000 + (r.next() * 400.0) as i64,
                bid,
                q(bid + spread),
            )
        } else {
            (0, f64::NAN, f64::NAN)
        };
        let low_first = r.next() < 0.5;
        let (lt, ht) = if low_first {
            (x.ts_min + 20_000, x.ts_min + 40_000)
        } else {
            (x.ts_min + 40_000, x.ts_min + 20_000)
        };
        t.push(&x, nq_ts, bid, ask, lt, ht);
        if ticks_per_leg > 0 {
            t.tick_start.push(t.tick_ts.len() as u32);
            let (a, b) = if low_first {
                (x.low, x.high)
            } else {
                (x.high, x.low)
            };
            let pts = [x.open, a, b, x.close];
            let legs = 3 * ticks_per_leg;
            for leg in 0..3 {
                for s in 0..ticks_per_leg {
                    let f = s as f64 / ticks_per_leg as f64;
                    let p = q(pts[leg] + (pts[leg + 1] - pts[leg]) * f);
                    let k = leg * ticks_per_leg + s;
                    t.tick_ts.push(x.ts_min + (k as i64 * 59_000) / legs as i64);
                    t.tick_price.push(p);
                }
            }
            t.tick_ts.push(x.ts_min + 59_500);
            t.tick_price.push(x.close);
        }
    }
    if ticks_per_leg > 0 {
        t.tick_start.push(t.tick_ts.len() as u32);
    }
    t
}
