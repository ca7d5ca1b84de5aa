//! Snapshot and restore of the streaming driver and the feature engine: a run cut at
//! several points (mid-minute, with a working entry, with an open position, before the
//! first close) and continued from restored snapshots is bit-identical to the run that
//! was never interrupted; bad bytes and other settings are refused.

use at_features::engine::FeatureEngine;
use at_features::{Stage1Config, Stage2Config};
use at_strategy::{ExitKind, Params, Reason, StopFillMode};
use at_synth::gen::Generator;
use at_synth::params::SynthParams;
use at_types::{snapshot, AtError, Quote, Trade};

use crate::engine::BacktestResult;
use crate::stream::{Decided, FillMode, StreamingDriver};

pub(crate) const DAY0: i64 = 1_704_067_200_000; // 2024-01-01 00:00 UTC
const HOUR: i64 = 3_600_000;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Ev {
    T(Trade),
    Q(Quote),
}

impl Ev {
    pub(crate) fn ts(&self) -> i64 {
        match self {
            Ev::T(t) => t.ts_ms,
            Ev::Q(q) => q.ts_ms,
        }
    }
}

/// `hours` of generated ticks in the driver's feed order (quotes of a millisecond first).
pub(crate) fn events(hours: i64, seed: u64) -> Vec<Ev> {
    let mut g = Generator::new(seed, DAY0, SynthParams::default()).unwrap();
    let b = g.generate_until(DAY0 + hours * HOUR).unwrap();
    let (nt, nq) = (b.n_trades(), b.n_quotes());
    let mut out = Vec::with_capacity(nt + nq);
    let (mut i, mut j) = (0, 0);
    while i < nt || j < nq {
        if j < nq && (i == nt || b.quote(j).ts_ms <= b.trade(i).ts_ms) {
            let mut q = b.quote(j);
            q.bid_sz *= 0.001;
            q.ask_sz *= 0.001;
            out.push(Ev::Q(q));
            j += 1;
        } else {
            let mut t = b.trade(i);
            t.size *= 0.001;
            out.push(Ev::T(t));
            i += 1;
        }
    }
    out
}

pub(crate) fn configs() -> (Stage1Config, Stage2Config) {
    let c2 = Stage2Config {
        rolling_window_minutes: 120,
        ..Stage2Config::default()
    };
    (Stage1Config::default(), c2)
}

pub(crate) fn push(d: &mut StreamingDriver, e: Ev, out: &mut Vec<Decided>) {
    match e {
        Ev::T(t) => d.push_trade(t, out).unwrap(),
        Ev::Q(q) => d.push_quote(q, out).unwrap(),
    }
}

/// The whole result as bytes (f64 bit for bit, NaN payloads included).
pub(crate) fn bits(r: &BacktestResult, decided: &[Decided]) -> Vec<u8> {
    let d: Vec<_> = decided.iter().map(|x| (x.decision, x.equity)).collect();
    let body = (&r.trades, &r.equity, &r.decisions, &r.metrics, d);
    snapshot::seal(b"TESTBITS", 0, "test", &body).unwrap()
}

/// Snapshot `d`, restore it, check the restored driver is the same (same state, same
/// bytes when snapshotted again) and return it.
pub(crate) fn round_trip(
    d: &StreamingDriver,
    p: Params,
    funding: Option<(Vec<i64>, Vec<f64>)>,
    mode: FillMode,
) -> StreamingDriver {
    let (c1, c2) = configs();
    let bytes = d.snapshot().unwrap();
    let r = StreamingDriver::restore(&bytes, c1, c2, p, funding, mode).unwrap();
    assert_eq!(r.snapshot().unwrap(), bytes, "restored driver differs");
    assert_eq!(format!("{:?}", r.state()), format!("{:?}", d.state()));
    r
}

fn paper_params() -> Params {
    Params {
        tick_size: 0.1,
        max_daily_loss_pct: 0.0,
        use_limit_for_entry: true,
        ..Params::default()
    }
}

/// Event indices to cut at: before anything, before the first close, with a working
/// entry, with an open position, after TP1, and a few mid-minute points.
fn split_points(evs: &[Ev], p: Params, funding: Option<(Vec<i64>, Vec<f64>)>) -> Vec<usize> {
    let (c1, c2) = configs();
    let mut d = StreamingDriver::new(c1, c2, p, funding).unwrap();
    let mut out = Vec::new();
    let (mut working, mut open, mut tp1) = (None, None, None);
    for (i, &e) in evs.iter().enumerate() {
        push(&mut d, e, &mut out);
        let s = d.state();
        if working.is_none() && s.working_entry.is_some() {
            working = Some(i + 1);
        }
        if open.is_none() && s.position.is_some() {
            open = Some(i + 1);
        }
        if tp1.is_none() && s.position.is_some_and(|x| x.tp1_done) {
            tp1 = Some(i + 1);
        }
    }
    let n = evs.len();
    let mut v = vec![
        0,
        7,
        working.expect("a working entry"),
        open.expect("a position"),
    ];
    v.extend(tp1);
    for k in [1, 3, 5, 6] {
        let i = n * k / 7;
        assert_ne!(evs[i].ts() % 60_000, 0, "a mid-minute cut");
        v.push(i);
    }
    v.sort_unstable();
    v.dedup();
    v
}

fn run_paper(
    evs: &[Ev],
    p: Params,
    funding: Option<(Vec<i64>, Vec<f64>)>,
    cuts: &[usize],
) -> Vec<u8> {
    let (c1, c2) = configs();
    let mut d = StreamingDriver::new(c1, c2, p, funding.clone()).unwrap();
    let mut out = Vec::new();
    let mut next = cuts.iter().peekable();
    for (i, &e) in evs.iter().enumerate() {
        while next.next_if(|&&c| c == i).is_some() {
            d = round_trip(&d, p, funding.clone(), FillMode::Paper);
        }
        push(&mut d, e, &mut out);
    }
    let r = d.finish(&mut out).unwrap();
    assert!(r.trades.len() >= 5, "too few trades: {}", r.trades.len());
    bits(&r, &out)
}

#[test]
fn a_restored_paper_driver_continues_bit_for_bit() {
    let evs = events(24, 7);
    let funding: (Vec<i64>, Vec<f64>) =
        ((1..24).map(|h| DAY0 + h * HOUR).collect(), vec![0.0003; 23]);
    let base = paper_params();
    let cases = [
        ("limit", base, None),
        (
            "market+tick_path+funding",
            Params {
                use_limit_for_entry: false,
                stop_fill_mode: StopFillMode::TickPath,
                ..base
            },
            Some(funding),
        ),
    ];
    for (what, p, f) in cases {
        let cuts = split_points(&evs, p, f.clone());
        let whole = run_paper(&evs, p, f.clone(), &[]);
        let split = run_paper(&evs, p, f, &cuts);
        assert!(whole == split, "{what}: cut at {cuts:?}");
        eprintln!("{what}: cut at {} points, identical", cuts.len());
    }
}

#[test]
fn state_and_trades_since_follow_the_book() {
    let evs = events(12, 7);
    let p = paper_params();
    let (c1, c2) = configs();
    let mut d = StreamingDriver::new(c1, c2, p, None).unwrap();
    let s0 = d.state();
    assert_eq!(
        (s0.minutes, s0.cash, s0.closed_trades),
        (0, p.initial_equity, 0)
    );
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for &e in &evs {
        push(&mut d, e, &mut out);
        let s = d.state();
        let new = d.trades_since(seen.len());
        assert_eq!(seen.len() + new.len(), s.closed_trades);
        seen.extend_from_slice(new);
        assert_eq!(
            s.day_pnl.to_bits(),
            (s.equity - s.day_start_equity).to_bits()
        );
        if let Some(x) = s.position {
            assert!(x.qty > 0.0 && x.side.abs() == 1);
        }
    }
    assert!(d.trades_since(usize::MAX).is_empty());
    let s = d.state();
    assert_eq!(s.minutes, out.len());
    assert_eq!(s.last_ts_min, out.last().map(|x| x.decision.ts_min));
    let r = d.finish(&mut out).unwrap();
    assert!(seen.len() >= 3, "{}", seen.len());
    // finish adds only what it closes (END_OF_DATA)
    assert_eq!(
        format!("{:?}", &r.trades[..seen.len()]),
        format!("{seen:?}")
    );
    assert!(r.trades[seen.len()..]
        .iter()
        .all(|t| t.exit_reason == Reason::EndOfData));
}

/// The fills of a paper run as an exchange would report them; entries of two steps or
/// more arrive in two parts.
fn reports(r: &BacktestResult, p: &Params) -> Vec<(i64, Option<ExitKind>, f64, f64, f64)> {
    let fee = |px: f64, qty: f64| px * qty * p.taker_fee_bps / 1e4;
    let mut out = Vec::new();
    for t in &r.trades {
        let steps = (t.qty / p.qty_step).round() as i64;
        let half = (steps / 2) as f64 * p.qty_step;
        if steps >= 2 {
            let rest = (steps - steps / 2) as f64 * p.qty_step;
            out.push((
                t.fill_ts_ms,
                None,
                t.entry_price,
                half,
                fee(t.entry_price, half),
            ));
            out.push((
                t.fill_ts_ms,
                None,
                t.entry_price,
                rest,
                fee(t.entry_price, rest),
            ));
        } else {
            out.push((
                t.fill_ts_ms,
                None,
                t.entry_price,
                t.qty,
                fee(t.entry_price, t.qty),
            ));
        }
        if t.tp1_qty > 0.0 {
            let k = Some(ExitKind::Tp1);
            out.push((
                t.tp1_ts_ms,
                k,
                t.tp1_price,
                t.tp1_qty,
                fee(t.tp1_price, t.tp1_qty),
            ));
        }
        let rest = ((t.qty - t.tp1_qty) / p.qty_step).round() * p.qty_step;
        let kind = match t.exit_reason {
            Reason::EndOfData => continue,
            Reason::Stop | Reason::BreakevenStop => ExitKind::Stop,
            Reason::Tp2 => ExitKind::Tp2,
            _ => ExitKind::Market,
        };
        out.push((
            t.exit_ts_ms,
            Some(kind),
            t.exit_price,
            rest,
            fee(t.exit_price, rest),
        ));
    }
    out.sort_by_key(|r| r.0);
    out
}

/// Live mode: reported fills (partial entries included) between events; snapshots taken
/// between the two parts of an entry, with a position open, and mid-minute.
fn run_external(
    evs: &[Ev],
    p: Params,
    rep: &[(i64, Option<ExitKind>, f64, f64, f64)],
    cut: bool,
) -> Vec<u8> {
    let (c1, c2) = configs();
    let mut d = StreamingDriver::with_mode(c1, c2, p, None, FillMode::External).unwrap();
    let mut out = Vec::new();
    let (mut k, mut cuts) = (0, 0);
    let mut cut_partial = false;
    for (i, &e) in evs.iter().enumerate() {
        while k < rep.len() && rep[k].0 < e.ts() {
            let (ts, kind, px, qty, fee) = rep[k];
            match kind {
                None => {
                    d.entry_fill(ts, px, qty, fee, false, None).unwrap();
                }
                Some(x) => {
                    d.exit_fill(x, ts, px, qty, fee).unwrap();
                }
            }
            k += 1;
            let s = d.state();
            let partial = s.working_entry.is_some_and(|w| w.filled_qty > 0.0);
            if cut && partial && !cut_partial {
                cut_partial = true;
                d = round_trip(&d, p, None, FillMode::External);
                let w = d.state().working_entry.unwrap();
                assert!(w.filled_qty > 0.0 && w.filled_qty < w.qty, "{w:?}");
                cuts += 1;
            }
        }
        if cut && i % (evs.len() / 5) == 17 {
            d = round_trip(&d, p, None, FillMode::External);
            cuts += 1;
        }
        push(&mut d, e, &mut out);
    }
    assert_eq!(k, rep.len(), "every report delivered");
    assert!(!cut || (cut_partial && cuts >= 5), "{cuts} cuts");
    let r = d.finish(&mut out).unwrap();
    bits(&r, &out)
}

#[test]
fn a_restored_external_driver_continues_bit_for_bit() {
    let evs = events(12, 7);
    let p = Params {
        funding_rate_8h_bps: 0.0,
        use_limit_for_entry: false,
        ..paper_params()
    };
    let (c1, c2) = configs();
    let mut paper = StreamingDriver::new(c1, c2, p, None).unwrap();
    let mut out = Vec::new();
    evs.iter().for_each(|&e| push(&mut paper, e, &mut out));
    let rep = reports(&paper.finish(&mut out).unwrap(), &p);
    assert!(rep.len() >= 8, "{}", rep.len());
    let whole = run_external(&evs, p, &rep, false);
    let split = run_external(&evs, p, &rep, true);
    assert!(whole == split);
}

fn msg(e: AtError) -> String {
    e.to_string()
}

#[test]
fn bad_bytes_and_other_settings_are_refused() {
    let evs = events(6, 3);
    let p = paper_params();
    let (c1, c2) = configs();
    let mut d = StreamingDriver::new(c1.clone(), c2.clone(), p, None).unwrap();
    let mut out = Vec::new();
    evs.iter().for_each(|&e| push(&mut d, e, &mut out));
    let b = d.snapshot().unwrap();
    let restore = |bytes: &[u8], c1: &Stage1Config, c2: &Stage2Config, p: Params, m| {
        StreamingDriver::restore(bytes, c1.clone(), c2.clone(), p, None, m).map(|_| ())
    };
    assert!(restore(&b, &c1, &c2, p, FillMode::Paper).is_ok());
    // damaged bytes: every one refused with a reason, none panics
    let mut flipped = b.clone();
    let mid = b.len() / 2;
    flipped[mid] ^= 0x10;
    let e = msg(restore(&flipped, &c1, &c2, p, FillMode::Paper).unwrap_err());
    assert!(e.contains("checksum"), "{e}");
    for n in [0, 5, 27, 28, 29, mid, b.len() - 1] {
        let e = restore(&b[..n], &c1, &c2, p, FillMode::Paper).unwrap_err();
        assert!(matches!(e, AtError::InvalidInput { .. }), "{n}: {e}");
    }
    let fe = FeatureEngine::new(c1.clone(), c2.clone())
        .unwrap()
        .snapshot()
        .unwrap();
    let e = msg(restore(&fe, &c1, &c2, p, FillMode::Paper).unwrap_err());
    assert!(e.contains("magic"), "{e}");
    let mut newer = b.clone();
    newer[8] ^= 1;
    let e = msg(restore(&newer, &c1, &c2, p, FillMode::Paper).unwrap_err());
    assert!(e.contains("format version"), "{e}");
    // other settings: the key is named
    let key = |r: Result<(), AtError>| match r.unwrap_err() {
        AtError::InvalidConfig { key, .. } => key,
        e => panic!("{e}"),
    };
    let p2 = Params {
        of_entry_min: p.of_entry_min + 1.0,
        ..p
    };
    assert_eq!(
        key(restore(&b, &c1, &c2, p2, FillMode::Paper)),
        "params.of_entry_min"
    );
    let c2b = Stage2Config {
        rolling_window_minutes: 240,
        ..c2.clone()
    };
    assert_eq!(
        key(restore(&b, &c1, &c2b, p, FillMode::Paper)),
        "stage2.rolling_window_minutes"
    );
    let c1b = Stage1Config {
        max_gap_minutes: 6,
        ..c1.clone()
    };
    assert_eq!(
        key(restore(&b, &c1b, &c2, p, FillMode::Paper)),
        "stage1.max_gap_minutes"
    );
    assert_eq!(key(restore(&b, &c1, &c2, p, FillMode::External)), "fills");
    let f = Some((vec![DAY0 + HOUR], vec![1e-4]));
    let r = StreamingDriver::restore(&b, c1.clone(), c2.clone(), p, f, FillMode::Paper);
    assert_eq!(key(r.map(|_| ())), "funding");
    // a halted driver is not snapshotted
    let late = Quote {
        ts_ms: DAY0,
        seq: 0,
        bid_ticks: 420_000,
        bid_sz: 1.0,
        ask_ticks: 420_001,
        ask_sz: 1.0,
    };
    assert!(d.push_quote(late, &mut out).is_err());
    assert!(msg(d.snapshot().unwrap_err()).contains("halted"));
}

#[test]
fn a_restored_feature_engine_continues_bit_for_bit() {
    let evs = events(8, 11);
    let (c1, c2) = configs();
    let feed = |e: &mut FeatureEngine, ev: Ev| match ev {
        Ev::T(t) => e.push_trade(t).unwrap(),
        Ev::Q(q) => e.push_quote(q).unwrap(),
    };
    let run = |cuts: &[usize]| {
        let mut e = FeatureEngine::new(c1.clone(), c2.clone()).unwrap();
        let mut rows = Vec::new();
        for (i, &ev) in evs.iter().enumerate() {
            if cuts.contains(&i) {
                let b = e.snapshot().unwrap();
                e = FeatureEngine::restore(&b, &c1, &c2).unwrap();
                assert_eq!(e.snapshot().unwrap(), b);
            }
            feed(&mut e, ev);
            rows.extend(e.take_ready().unwrap());
        }
        rows.extend(e.finish().unwrap());
        let rows: Vec<_> = rows.iter().map(|(s, f)| (s.clone(), *f)).collect();
        snapshot::seal(b"TESTBITS", 0, "test", &rows).unwrap()
    };
    let n = evs.len();
    assert!(run(&[]) == run(&[0, 3, n / 5, n / 2, n - 2]));
    let b = FeatureEngine::new(c1.clone(), c2.clone())
        .unwrap()
        .snapshot()
        .unwrap();
    let c1b = Stage1Config {
        qimb_ema_span_seconds: 30.0,
        ..c1.clone()
    };
    match FeatureEngine::restore(&b, &c1b, &c2).unwrap_err() {
        AtError::InvalidConfig { key, .. } => assert_eq!(key, "stage1.qimb_ema_span_seconds"),
        e => panic!("{e}"),
    }
    assert!(FeatureEngine::restore(&b[..b.len() - 3], &c1, &c2).is_err());
}

/// Size and cost of a snapshot after one simulated day (printed; run with `--release
/// --nocapture` for representative times).
#[test]
fn snapshot_size_and_time_after_one_day() {
    let evs = events(24, 5);
    let p = paper_params();
    let (c1, c2) = configs();
    let mut d = StreamingDriver::new(c1.clone(), c2.clone(), p, None).unwrap();
    let mut out = Vec::new();
    evs.iter().for_each(|&e| push(&mut d, e, &mut out));
    let t0 = std::time::Instant::now();
    let b = d.snapshot().unwrap();
    let t1 = std::time::Instant::now();
    let r = StreamingDriver::restore(&b, c1, c2, p, None, FillMode::Paper).unwrap();
    let t2 = std::time::Instant::now();
    assert_eq!(r.minutes(), d.minutes());
    eprintln!(
        "driver after {} minutes / {} events: snapshot {} bytes ({:.0} per minute), \
         snapshot {:.2} ms, restore {:.2} ms",
        d.minutes(),
        d.events(),
        b.len(),
        b.len() as f64 / d.minutes() as f64,
        (t1 - t0).as_secs_f64() * 1e3,
        (t2 - t1).as_secs_f64() * 1e3,
    );
    assert!(b.len() < 2_000_000, "{}", b.len());
}
