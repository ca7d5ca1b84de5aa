//! Quick Rust-side timing of one 30-day backtest and of the batch runner (the official
//! benchmark is `benches/bench_backtest.py`). `cargo run --release --example bench_backtest`
use at_backtest::synth::synthetic_table;
use at_backtest::{run, run_batch, run_with, Output, Prepared, RunPath};
use at_strategy::Params;
use std::time::Instant;

fn main() {
    let days: usize = std::env::var("DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let t = synthetic_table(days * 1440, 1, 1_704_067_200_000, 0);
    let v = t.view();
    let p = Params::default();
    let rows = v.rows();
    stats(&rows);
    kernel_only(&rows);
    kernel_quiet(&rows);
    calibrate(&rows);
    if std::env::var("KQUIET").is_ok() {
        for _ in 0..20 {
            kernel_quiet(&rows);
        }
        return;
    }
    if std::env::var("KONLY").is_ok() {
        for _ in 0..20 {
            kernel_only(&rows);
        }
        return;
    }
    let iters: usize = std::env::var("ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let n = (days * 1440) as f64;
    let report = |name: &str, best: f64| {
        println!(
            "{name}: {:.3} ms ({:.1} M bar-steps/s)",
            best * 1e3,
            n / best / 1e6
        )
    };
    let time = |f: &dyn Fn() -> f64| {
        let mut best = f64::INFINITY;
        let mut r = 0.0;
        for _ in 0..iters {
            let s = Instant::now();
            r = f();
            best = best.min(s.elapsed().as_secs_f64());
        }
        (best, r)
    };
    let (b, trades) = time(&|| {
        run_with(&v, p, RunPath::Reference { rows: &rows }, Output::Metrics)
            .map(|r| r.metrics)
            .unwrap()
            .n_trades
    });
    report(
        &format!("single 30d, reference path, metrics only ({trades} trades)"),
        b,
    );
    let mut prep = Prepared::with_rows(&v);
    prep.add(&v, &p).unwrap();
    let (b, _) = time(&|| {
        run_with(&v, p, RunPath::Prepared(&prep), Output::Metrics)
            .map(|r| r.metrics)
            .unwrap()
            .n_trades
    });
    report("single 30d, prepared path, metrics only (prep excluded)", b);
    let (b, _) = time(&|| {
        let mut pr = Prepared::new(&v);
        pr.add(&v, &p).unwrap();
        pr.ambiguity.n
    });
    report("  prepare (minutes + idle plan)", b);
    let (b, _) = time(&|| {
        run_with(&v, p, RunPath::Reference { rows: &[] }, Output::Full)
            .unwrap()
            .metrics
            .n_trades
    });
    report("single 30d full output, reference (RunPath::Reference)", b);
    let (b, _) = time(&|| run(&v, p).unwrap().metrics.n_trades);
    report("single 30d full output (run)", b);
    let (b, _) = time(&|| {
        run_with(&v, p, RunPath::Prepared(&prep), Output::Full)
            .unwrap()
            .metrics
            .n_trades
    });
    report("single 30d full output, prepared table (prep excluded)", b);
    if std::env::var("NOBATCH").is_ok() {
        return;
    }
    let sets: Vec<Params> = (0..1000)
        .map(|i| Params {
            accept_outside_k: 1 + (i % 5) as u32,
            risk_pct: 0.005 + 0.001 * (i / 5 % 20) as f64,
            cooldown_minutes: (i / 100) as u32,
            ..p
        })
        .collect();
    let s = Instant::now();
    let r = run_batch(&v, &sets, 1).unwrap();
    let dt = s.elapsed().as_secs_f64();
    println!(
        "batch 1000 x 30d, 1 thread: {:.3} s = {:.0} backtests/s ({} ok)",
        dt,
        1000.0 / dt,
        r.iter().filter(|x| x.is_ok()).count()
    );
}

#[allow(dead_code)]
fn stats(rows: &[at_strategy::MinuteInput]) {
    let inside = rows
        .iter()
        .filter(|x| x.low > x.val && x.high < x.vah)
        .count();
    println!(
        "inside-VA bars: {:.1} %",
        100.0 * inside as f64 / rows.len() as f64
    );
}

#[allow(dead_code)]
fn kernel_only(rows: &[at_strategy::MinuteInput]) {
    let mut best = f64::INFINITY;
    for _ in 0..20 {
        let mut k = at_strategy::Kernel::new(Params::default()).unwrap();
        let mut d = at_strategy::Decision::hold(0);
        let s = Instant::now();
        for x in rows {
            k.decide(x, &mut d);
            if d.entry.is_some() {
                k.cancel_entry();
            }
        }
        best = best.min(s.elapsed().as_secs_f64());
    }
    println!("kernel only (entries cancelled): {:.3} ms", best * 1e3);
}

#[allow(dead_code)]
fn kernel_quiet(rows: &[at_strategy::MinuteInput]) {
    let wide: Vec<_> = rows
        .iter()
        .map(|x| at_strategy::MinuteInput {
            vah: x.high + 1000.0,
            val: x.low - 1000.0,
            ..*x
        })
        .collect();
    let mut best = f64::INFINITY;
    for _ in 0..20 {
        let mut k = at_strategy::Kernel::new(Params::default()).unwrap();
        let mut d = at_strategy::Decision::hold(0);
        let s = Instant::now();
        for x in &wide {
            k.decide(x, &mut d);
        }
        best = best.min(s.elapsed().as_secs_f64());
    }
    println!("kernel only, all quiet: {:.3} ms", best * 1e3);
}

#[allow(dead_code)]
fn calibrate(rows: &[at_strategy::MinuteInput]) {
    let mut best = f64::INFINITY;
    let mut acc = 0.0;
    for _ in 0..50 {
        let s = Instant::now();
        for x in rows {
            if x.low > x.val && x.high < x.vah {
                acc += x.close - x.open;
            } else {
                acc -= x.of_1m * x.qimb_close;
            }
        }
        best = best.min(s.elapsed().as_secs_f64());
    }
    println!(
        "calibration loop (one branch per row): {:.1} us ({acc:.0})",
        best * 1e6
    );
}
