//! Hand-built minute sequences: each setup, each exit, kill switch, cooldown, flip, retest
//! success and failure, threshold modes, and export/restore equivalence. Expected values
//! come from the spec's rules worked by hand, never from the kernel.

use crate::*;

const T0: i64 = 1_700_000_040_000 - 1_700_000_040_000 % 86_400_000 + 3_600_000; // 01:00 UTC
const M: i64 = 60_000;

/// Fixed value area of SPEC §20.5: VAL 49,900, POC 50,000, VAH 50,100, spread 1 $.
/// The bar's OHLC as if it traded every price of `[low, high]`.
fn va_bar(i: i64, o: f64, h: f64, l: f64, c: f64) -> MinuteInput {
    range_traded(MinuteInput {
        ts_min: T0 + i * M,
        open: o,
        high: h,
        low: l,
        close: c,
        volume: 10.0,
        vah_trade_dist: f64::NAN,
        val_trade_dist: f64::NAN,
        mid_close: c,
        spread_avg: 1.0,
        poc: 50_000.0,
        vah: 50_100.0,
        val: 49_900.0,
        va_valid: true,
        of_1m: 0.0,
        of_norm_1m: 0.0,
        qimb_close: 0.0,
        qimb_ema: 0.0,
        ambiguous_frac: 0.2,
    })
}

/// Set the §6.3 distances of `b` as if it traded every price of `[low, high]`: 0 for a
/// level inside the range, the distance to the nearer extreme outside it.
fn range_traded(mut b: MinuteInput) -> MinuteInput {
    let d = |level: f64| (b.low - level).max(level - b.high).max(0.0);
    b.vah_trade_dist = d(b.vah);
    b.val_trade_dist = d(b.val);
    b
}

fn flow(mut b: MinuteInput, of: f64, qimb: f64) -> MinuteInput {
    b.of_1m = of;
    b.of_norm_1m = of / b.volume;
    b.qimb_close = qimb;
    b.qimb_ema = qimb;
    b
}

/// Inside-VA filler bar with no initiative.
fn quiet(i: i64) -> MinuteInput {
    va_bar(i, 50_000.0, 50_010.0, 49_990.0, 50_000.0)
}

/// Spec-example parameters: tick 1 $ (so "2 ticks" = 2 $ as in §20.5), market entries.
fn params() -> Params {
    Params {
        tick_size: 1.0,
        use_limit_for_entry: false,
        max_daily_loss_pct: 0.0,
        cooldown_minutes: 0,
        ..Params::default()
    }
}

fn kernel(p: Params) -> Kernel {
    Kernel::new(p).unwrap()
}

fn fill_entry(k: &mut Kernel, d: &Decision, price: f64) {
    assert!(d.entry.is_some(), "expected an entry, got {d:?}");
    k.on_entry_fill(d.ts_min + M, price, 0.0).unwrap();
}

/// SPEC §20.5 exactly.
#[test]
fn golden_20_5_breakin_long() {
    let mut k = kernel(params());
    let b = flow(va_bar(0, 49_850.0, 49_920.0, 49_820.0, 49_950.0), 0.5, 0.15);
    let d = k.on_minute(&b);
    assert_eq!(d.signals & sig::BREAKIN_LONG, sig::BREAKIN_LONG);
    assert_eq!(d.action, Action::EnterLong);
    assert_eq!(d.reason, Reason::BreakinLong);
    let o = d.entry.unwrap();
    assert_eq!(o.ref_price, 49_950.0); // "Entry: $49,950"
    assert_eq!(o.limit_price, None);
    assert_eq!(o.stop, 49_818.0); // 49,820 - 2 ticks
    assert_eq!(o.tp1, Some(50_000.0)); // POC
    assert_eq!(o.tp2, Some(50_100.0)); // VAH
    assert_eq!(o.setup, Setup::BreakIn);
    // "(or limit at $49,900)": the boundary limit mode.
    let mut k = kernel(Params {
        use_limit_for_entry: true,
        limit_price_mode: LimitPriceMode::Boundary,
        ..params()
    });
    let o = k.on_minute(&b).entry.unwrap();
    assert_eq!(o.limit_price, Some(49_900.0));
    let mut k = kernel(Params {
        use_limit_for_entry: true,
        limit_price_mode: LimitPriceMode::Close,
        ..params()
    });
    assert_eq!(k.on_minute(&b).entry.unwrap().limit_price, Some(49_950.0));
}

#[test]
fn breakin_each_condition_is_required() {
    let good = flow(va_bar(0, 49_850.0, 49_920.0, 49_820.0, 49_950.0), 0.5, 0.15);
    // 1. low must be strictly below VAL.
    let mut b = good;
    b.low = 49_900.0;
    assert_eq!(
        kernel(params()).on_minute(&b).signals & sig::BREAKIN_LONG,
        0
    );
    // 2. close must be above VAL.
    let mut b = good;
    b.close = 49_900.0;
    assert_eq!(
        kernel(params()).on_minute(&b).signals & sig::BREAKIN_LONG,
        0
    );
    // 3. crossing not proven: the nearest trade is 50 $ from VAL, spread 1 $.
    let mut b = good;
    b.val_trade_dist = 50.0;
    let d = kernel(params()).on_minute(&b);
    assert_eq!(d.signals & sig::BREAKIN_LONG, 0);
    // 4. no initiative at all.
    let b = flow(good, -0.5, -0.15);
    assert_eq!(
        kernel(params()).on_minute(&b).signals & sig::BREAKIN_LONG,
        0
    );
    // Either leg suffices in normal ambiguity.
    assert_ne!(
        kernel(params()).on_minute(&flow(good, 0.5, -0.5)).signals & sig::BREAKIN_LONG,
        0
    );
    assert_ne!(
        kernel(params()).on_minute(&flow(good, -0.5, 0.5)).signals & sig::BREAKIN_LONG,
        0
    );
    // VA invalid: nothing.
    let mut b = good;
    b.va_valid = false;
    let d = kernel(params()).on_minute(&b);
    assert_eq!((d.signals, d.reason), (0, Reason::VaInvalid));
}

/// A minute of the §20.5 value area described by its trade prices in time order, with the
/// fields the feature engine derives from those trades (OHLC and the §6.3 crossing input).
fn from_trades(i: i64, prices: &[f64]) -> MinuteInput {
    let hi = prices.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lo = prices.iter().copied().fold(f64::INFINITY, f64::min);
    let mut b = va_bar(i, prices[0], hi, lo, prices[prices.len() - 1]);
    let nearest = |level: f64| {
        prices
            .iter()
            .map(|p| (p - level).abs())
            .fold(f64::INFINITY, f64::min)
    };
    b.vah_trade_dist = nearest(b.vah);
    b.val_trade_dist = nearest(b.val);
    b
}

/// SPEC §6.3 decided exactly: a fast minute that printed a trade exactly at VAL but whose
/// largest trade-to-trade jump (150 $) is far wider than 2 x spread (2 $) still proves the
/// crossing, so the break-in fires as setup A (it is not relabelled as setup C).
#[test]
fn breakin_fires_on_fast_minute_with_trade_at_level() {
    // Long: below VAL, one print at VAL 49,900, a 150 $ jump up, close back above VAL.
    let b = flow(
        from_trades(0, &[49_850.0, 49_820.0, 49_900.0, 50_050.0, 49_950.0]),
        0.5,
        0.15,
    );
    let d = kernel(params()).on_minute(&b);
    assert_eq!(d.signals & sig::BREAKIN_LONG, sig::BREAKIN_LONG, "{d:?}");
    assert_eq!(
        (d.action, d.reason),
        (Action::EnterLong, Reason::BreakinLong)
    );
    assert_eq!(d.entry.unwrap().setup, Setup::BreakIn);
    // Short: above VAH, one print 0.5 $ from VAH 50,100 (within 1 x spread), a 150 $ jump.
    let b = flow(
        from_trades(0, &[50_150.0, 50_180.0, 50_100.5, 49_950.0, 50_060.0]),
        -0.5,
        -0.15,
    );
    let d = kernel(params()).on_minute(&b);
    assert_eq!(d.signals & sig::BREAKIN_SHORT, sig::BREAKIN_SHORT, "{d:?}");
    assert_eq!(
        (d.action, d.reason),
        (Action::EnterShort, Reason::BreakinShort)
    );
    // The same fast minute without a print near VAL (nearest 49,850, 50 $ away): the gap
    // is not crossed; only the failed-breakout reading (C) remains.
    let b = flow(
        from_trades(0, &[49_850.0, 49_820.0, 50_050.0, 49_950.0]),
        0.5,
        0.15,
    );
    let d = kernel(params()).on_minute(&b);
    assert_eq!(d.signals & sig::BREAKIN_LONG, 0, "{d:?}");
    assert_eq!(d.reason, Reason::FailbreakLong);
}

#[test]
fn breakin_short_is_symmetric() {
    let mut k = kernel(params());
    let b = flow(
        va_bar(0, 50_150.0, 50_180.0, 50_080.0, 50_050.0),
        -0.5,
        -0.15,
    );
    let d = k.on_minute(&b);
    assert_eq!(d.action, Action::EnterShort);
    let o = d.entry.unwrap();
    assert_eq!(
        (o.stop, o.tp1, o.tp2),
        (50_182.0, Some(50_000.0), Some(49_900.0))
    );
}

/// §5.7: above `ambiguous_trade_frac_max`, OF and qimb must both agree.
#[test]
fn high_ambiguity_requires_both() {
    let mut b = flow(
        va_bar(0, 49_850.0, 49_920.0, 49_820.0, 49_950.0),
        0.5,
        -0.15,
    );
    b.ambiguous_frac = 0.36;
    assert_eq!(
        kernel(params()).on_minute(&b).signals & sig::BREAKIN_LONG,
        0
    );
    let b2 = flow(b, 0.5, 0.15);
    assert_ne!(
        kernel(params()).on_minute(&b2).signals & sig::BREAKIN_LONG,
        0
    );
    // Exactly at the threshold is still "normal" (the rule is "> 0.35").
    b.ambiguous_frac = 0.35;
    assert_ne!(
        kernel(params()).on_minute(&b).signals & sig::BREAKIN_LONG,
        0
    );
    // use_qimb = false: OF alone decides, even at high ambiguity.
    b.ambiguous_frac = 0.9;
    let p = Params {
        use_qimb: false,
        ..params()
    };
    assert_ne!(kernel(p).on_minute(&b).signals & sig::BREAKIN_LONG, 0);
}

/// Each OF threshold mode (the "either/or logic" of §17.3).
#[test]
fn of_threshold_modes() {
    // qimb neutral so only the OF leg can confirm. volume 10.
    let base = va_bar(0, 49_850.0, 49_920.0, 49_820.0, 49_950.0);
    let fires = |mode: OfThresholdMode, raw_min: f64, of: f64| {
        let p = Params {
            of_threshold_mode: mode,
            of_entry_min: raw_min,
            of_entry_min_norm: 0.1,
            ..params()
        };
        kernel(p).on_minute(&flow(base, of, 0.0)).signals & sig::BREAKIN_LONG != 0
    };
    // of = 0.5 -> norm 0.05: raw (0) passes, norm (0.1) fails.
    assert!(fires(OfThresholdMode::Raw, 0.0, 0.5));
    assert!(!fires(OfThresholdMode::Norm, 0.0, 0.5));
    assert!(fires(OfThresholdMode::Either, 0.0, 0.5));
    assert!(!fires(OfThresholdMode::Both, 0.0, 0.5));
    // of = 2 -> norm 0.2 with raw threshold 5: raw fails, norm passes.
    assert!(!fires(OfThresholdMode::Raw, 5.0, 2.0));
    assert!(fires(OfThresholdMode::Norm, 5.0, 2.0));
    assert!(fires(OfThresholdMode::Either, 5.0, 2.0));
    assert!(!fires(OfThresholdMode::Both, 5.0, 2.0));
    assert!(fires(OfThresholdMode::Both, 1.0, 2.0));
}

/// §6.2: closes only, hard reset on one close inside, VAH locked at sequence start;
/// §6.3: a gap without a crossing does not start a sequence.
#[test]
fn acceptance_counting_reset_lock_and_gap() {
    let mut k = kernel(params());
    k.on_minute(&quiet(0));
    // Close above VAH after touching it: count 1, lock 50,100.
    k.on_minute(&va_bar(1, 50_090.0, 50_130.0, 50_095.0, 50_120.0));
    assert_eq!(k.state().above.count, 1);
    assert_eq!(k.state().above.locked, Some(50_100.0));
    // VAH moves to 50,200 — the lock keeps 50,100: close 50,150 still counts.
    let mut b = va_bar(2, 50_120.0, 50_160.0, 50_110.0, 50_150.0);
    b.vah = 50_200.0;
    k.on_minute(&b);
    assert_eq!(k.state().above.count, 2);
    // A wick back inside does not reset (closes only).
    k.on_minute(&va_bar(3, 50_150.0, 50_160.0, 50_050.0, 50_140.0));
    assert_eq!(k.state().above.count, 3);
    // One close inside resets.
    k.on_minute(&va_bar(4, 50_140.0, 50_150.0, 50_080.0, 50_090.0));
    assert_eq!(k.state().above.count, 0);
    assert_eq!(k.state().above.locked, None);
    // Gap: a bar entirely 100 $ above VAH (spread 1 $) does not start a sequence...
    k.on_minute(&va_bar(5, 50_200.0, 50_230.0, 50_200.0, 50_220.0));
    assert_eq!(k.state().above.count, 0);
    // ... nor does the next one far above; a bar that trades back to within 1 $ does.
    k.on_minute(&va_bar(6, 50_220.0, 50_230.0, 50_210.0, 50_220.0));
    assert_eq!(k.state().above.count, 0);
    k.on_minute(&va_bar(7, 50_150.0, 50_160.0, 50_101.0, 50_150.0));
    assert_eq!(k.state().above.count, 1);
    // Below side mirrors it.
    k.on_minute(&va_bar(8, 49_950.0, 49_960.0, 49_880.0, 49_890.0));
    assert_eq!(k.state().below.count, 1);
    assert_eq!(k.state().below.locked, Some(49_900.0));
    // Acceptance is tracked while in a position too (independent tracking).
    assert_eq!(k.state().above.count, 0);
}

fn breakout_run(p: Params) -> (Kernel, Vec<Decision>) {
    let mut k = kernel(p);
    let mut ds = vec![k.on_minute(&quiet(0))];
    ds.push(k.on_minute(&flow(
        va_bar(1, 50_090.0, 50_130.0, 50_095.0, 50_120.0),
        1.0,
        0.2,
    )));
    ds.push(k.on_minute(&flow(
        va_bar(2, 50_120.0, 50_160.0, 50_115.0, 50_150.0),
        1.0,
        0.2,
    )));
    ds.push(k.on_minute(&flow(
        va_bar(3, 50_150.0, 50_190.0, 50_140.0, 50_180.0),
        1.0,
        0.2,
    )));
    (k, ds)
}

#[test]
fn breakout_without_retest_enters_on_kth_close() {
    let (_, ds) = breakout_run(Params {
        enable_retest_mode: false,
        ..params()
    });
    assert_eq!(ds[2].action, Action::Hold);
    assert_eq!(ds[3].signals & sig::BREAKOUT_LONG, sig::BREAKOUT_LONG);
    assert_eq!(ds[3].action, Action::EnterLong);
    let o = ds[3].entry.unwrap();
    assert_eq!(o.reason, Reason::BreakoutLong);
    assert_eq!(o.stop, 50_098.0); // locked VAH - 2 ticks
    assert_eq!(o.close_inside_level, Some(50_100.0));
    assert_eq!((o.tp1, o.tp2), (None, None));
}

#[test]
fn breakout_retest_success() {
    let (mut k, ds) = breakout_run(params());
    assert_eq!(ds[3].reason, Reason::RetestArmed);
    assert_eq!(k.mode(), Mode::PendingRetest);
    // Not near VAH yet: wait.
    let d = k.on_minute(&va_bar(4, 50_180.0, 50_200.0, 50_170.0, 50_190.0));
    assert_eq!(d.reason, Reason::RetestWaiting);
    // Pullback to within 1 $ of the locked VAH, close back above: enter long.
    let d = k.on_minute(&va_bar(5, 50_190.0, 50_195.0, 50_100.5, 50_140.0));
    assert_eq!(d.action, Action::EnterLong);
    let o = d.entry.unwrap();
    assert_eq!(o.reason, Reason::RetestLong);
    assert_eq!(o.stop, 50_098.5); // pullback low - 2 ticks
    assert_eq!(o.close_inside_level, Some(50_100.0));
    fill_entry(&mut k, &d, 50_141.0);
    assert_eq!(k.mode(), Mode::Long);
    // Close back inside the VA exits the breakout (§9.1).
    let d = k.on_minute(&va_bar(6, 50_140.0, 50_150.0, 50_099.0, 50_100.0));
    assert_eq!(d.action, Action::Exit);
    assert_eq!(d.reason, Reason::BreakoutCloseInside);
}

#[test]
fn breakout_retest_failure_leads_into_setup_c() {
    let (mut k, _) = breakout_run(params());
    // Close back inside the VA with selling initiative: failed breakout short.
    let d = k.on_minute(&flow(
        va_bar(4, 50_180.0, 50_210.0, 50_060.0, 50_070.0),
        -1.0,
        -0.2,
    ));
    assert_ne!(d.events & event::RETEST_FAILED, 0);
    assert_eq!(d.action, Action::EnterShort);
    let o = d.entry.unwrap();
    // Break-in short also fires here (high > VAH, close < VAH, crossing, initiative) and
    // has priority; the entry shape is the same but the tag says which won.
    assert_eq!(o.reason, Reason::BreakinShort);
    // Without break-in (no trade near VAH: crossing unproven), the failed retest wins as C.
    let (mut k, _) = breakout_run(params());
    let mut b = flow(
        va_bar(4, 50_180.0, 50_210.0, 50_060.0, 50_070.0),
        -1.0,
        -0.2,
    );
    b.vah_trade_dist = 40.0; // nearest trade 40 $ from VAH: the crossing is unproven
    let d = k.on_minute(&b);
    let o = d.entry.unwrap();
    assert_eq!(o.reason, Reason::RetestFailedShort);
    assert_eq!(o.setup, Setup::FailedBreakout);
    assert_eq!(o.stop, 50_212.0); // poke high of the whole breakout + 2 ticks
    assert_eq!((o.tp1, o.tp2), (Some(50_000.0), Some(49_900.0)));
    // A failed retest without fail initiative just returns to FLAT.
    let (mut k, _) = breakout_run(params());
    let d = k.on_minute(&flow(
        va_bar(4, 50_180.0, 50_210.0, 50_060.0, 50_070.0),
        1.0,
        0.2,
    ));
    assert_eq!((d.action, d.reason), (Action::Hold, Reason::RetestFailed));
    assert_eq!(k.mode(), Mode::Flat);
}

#[test]
fn setup_c_literal_and_priority() {
    // High > VAH, close < VAH, selling flow, but the crossing is unproven: only C fires.
    let mut b = flow(
        va_bar(0, 50_050.0, 50_250.0, 50_040.0, 50_060.0),
        -1.0,
        -0.2,
    );
    b.vah_trade_dist = 40.0;
    let d = kernel(params()).on_minute(&b);
    assert_eq!(d.signals, sig::FAILBREAK_SHORT);
    let o = d.entry.unwrap();
    assert_eq!((o.reason, o.stop), (Reason::FailbreakShort, 50_252.0));
    // With the crossing proven both A and C fire; A wins (§6.7).
    b.vah_trade_dist = 1.0;
    let d = kernel(params()).on_minute(&b);
    assert_eq!(d.signals, sig::FAILBREAK_SHORT | sig::BREAKIN_SHORT);
    assert_eq!(d.entry.unwrap().reason, Reason::BreakinShort);
    // C uses its own thresholds: OF = 0 passes "<= 0" (C) but not "< -0" (A).
    let b = flow(va_bar(0, 50_050.0, 50_250.0, 50_040.0, 50_060.0), 0.0, 0.0);
    assert_eq!(kernel(params()).on_minute(&b).signals, sig::FAILBREAK_SHORT);
}

/// Stop fill, TP1 partial with breakeven, TP2; FLAT → LONG → FLAT.
#[test]
fn exits_stop_tp1_breakeven_tp2() {
    let mut k = kernel(params());
    let b = flow(va_bar(0, 49_850.0, 49_920.0, 49_820.0, 49_950.0), 0.5, 0.15);
    let d = k.on_minute(&b);
    assert_eq!(k.mode(), Mode::Flat);
    fill_entry(&mut k, &d, 49_950.0);
    assert_eq!(k.mode(), Mode::Long);
    let pos = *k.position().unwrap();
    assert_eq!(pos.qty_steps, 1_515); // 200 / 132 = 1.5151 BTC → 1.515
    assert_eq!(pos.tp1_steps, 455); // round(1515 * 0.3 = 454.5) = 455
                                    // TP1 fill: stop to breakeven.
    let flat = k
        .on_exit_fill(ExitKind::Tp1, T0 + 2 * M, 50_000.0, 455, 0.0)
        .unwrap();
    assert!(!flat);
    let pos = *k.position().unwrap();
    assert_eq!(
        (pos.qty_steps, pos.stop, pos.tp1_done),
        (1_060, 49_950.0, true)
    );
    let flat = k
        .on_exit_fill(ExitKind::Tp2, T0 + 3 * M, 50_100.0, 1_060, 0.0)
        .unwrap();
    assert!(flat);
    assert_eq!(k.mode(), Mode::Flat);
    // P&L: 0.455 * 50 + 1.06 * 150 = 22.75 + 159 = 181.75.
    assert!((k.cash() - 10_181.75).abs() < 1e-6);
}

#[test]
fn time_stop_and_extension_trail() {
    let p = Params {
        max_hold_minutes: 3,
        taker_fee_bps: 0.0,
        slippage_ticks_exit: 0.0,
        ..params()
    };
    let mut k = kernel(p);
    let d = k.on_minute(&flow(
        va_bar(0, 49_850.0, 49_920.0, 49_820.0, 49_950.0),
        0.5,
        0.15,
    ));
    fill_entry(&mut k, &d, 49_950.0); // fill in minute 1 -> timer starts at close of minute 1
                                      // closes of minutes 1, 2, 3: held 0, 1, 2 minutes
    for i in 1..=3 {
        let d = k.on_minute(&va_bar(i, 49_940.0, 49_960.0, 49_930.0, 49_940.0));
        assert_eq!(d.reason, Reason::InPosition, "minute {i}");
    }
    // close of minute 4: held 3 minutes, losing -> time stop
    let d = k.on_minute(&va_bar(4, 49_940.0, 49_960.0, 49_930.0, 49_940.0));
    assert_eq!((d.action, d.reason), (Action::Exit, Reason::TimeStop));

    // Same but profitable: extended, stop trails to fee-breakeven (= entry with zero fees),
    // then exits at the first close that is not profitable.
    let mut k = kernel(p);
    let d = k.on_minute(&flow(
        va_bar(0, 49_850.0, 49_920.0, 49_820.0, 49_950.0),
        0.5,
        0.15,
    ));
    fill_entry(&mut k, &d, 49_950.0);
    for i in 1..=3 {
        k.on_minute(&va_bar(i, 49_960.0, 49_970.0, 49_955.0, 49_960.0));
    }
    let d = k.on_minute(&va_bar(4, 49_960.0, 49_970.0, 49_955.0, 49_960.0));
    assert_eq!(d.reason, Reason::TimeExtended);
    assert_ne!(d.events & event::TIME_EXTENDED, 0);
    assert!((k.position().unwrap().stop - 49_950.0).abs() < 1e-6);
    let d = k.on_minute(&va_bar(5, 49_960.0, 49_980.0, 49_955.0, 49_975.0));
    assert_eq!(d.reason, Reason::TimeExtended);
    let d = k.on_minute(&va_bar(6, 49_960.0, 49_965.0, 49_951.0, 49_950.0));
    assert_eq!((d.action, d.reason), (Action::Exit, Reason::TrailExit));
    // extend_if_profitable = false: plain time stop even when profitable.
    let mut k = kernel(Params {
        extend_if_profitable: false,
        ..p
    });
    let d = k.on_minute(&flow(
        va_bar(0, 49_850.0, 49_920.0, 49_820.0, 49_950.0),
        0.5,
        0.15,
    ));
    fill_entry(&mut k, &d, 49_950.0);
    for i in 1..=3 {
        k.on_minute(&va_bar(i, 49_960.0, 49_970.0, 49_955.0, 49_960.0));
    }
    assert_eq!(
        k.on_minute(&va_bar(4, 49_960.0, 49_970.0, 49_955.0, 49_960.0))
            .reason,
        Reason::TimeStop
    );
}

#[test]
fn cooldown_blocks_entries_for_n_minutes() {
    let p = Params {
        cooldown_minutes: 3,
        ..params()
    };
    let mut k = kernel(p);
    let sig_bar = |i| flow(va_bar(i, 49_850.0, 49_920.0, 49_820.0, 49_950.0), 0.5, 0.15);
    let d = k.on_minute(&sig_bar(0));
    fill_entry(&mut k, &d, 49_950.0);
    // Stopped out in minute 2.
    let q = k.position().unwrap().qty_steps;
    k.on_exit_fill(ExitKind::Stop, T0 + 2 * M + 5_000, 49_818.0, q, 0.0)
        .unwrap();
    for i in 2..=4 {
        let d = k.on_minute(&sig_bar(i));
        assert_eq!(
            (d.action, d.reason),
            (Action::Hold, Reason::Cooldown),
            "minute {i}"
        );
        assert_ne!(d.signals & sig::BREAKIN_LONG, 0);
    }
    let d = k.on_minute(&sig_bar(5));
    assert_eq!(d.action, Action::EnterLong);
}

#[test]
fn flip_on_opposite_signal_and_no_flip_when_disabled() {
    let mut k = kernel(params());
    let d = k.on_minute(&flow(
        va_bar(0, 49_850.0, 49_920.0, 49_820.0, 49_950.0),
        0.5,
        0.15,
    ));
    fill_entry(&mut k, &d, 49_950.0);
    let short = flow(
        va_bar(1, 50_050.0, 50_150.0, 50_040.0, 50_060.0),
        -1.0,
        -0.2,
    );
    let mut k2 = k.clone();
    let d = k.on_minute(&short);
    assert_eq!(d.action, Action::EnterShort);
    assert_eq!(d.exit.unwrap().reason, Reason::Flip);
    assert_eq!(d.entry.unwrap().side, -1);
    // The exit fills first, then the entry: two trades.
    let q = k.position().unwrap().qty_steps;
    assert!(k
        .on_exit_fill(ExitKind::Market, T0 + 2 * M, 50_060.0, q, 0.0)
        .unwrap());
    k.on_entry_fill(T0 + 2 * M, 50_060.0, 0.0).unwrap();
    assert_eq!(k.mode(), Mode::Short);
    // Disabled: the long is kept.
    k2 = Kernel::restore(
        Params {
            enable_flip_on_signal: false,
            ..params()
        },
        &k2.export_state(),
    )
    .unwrap();
    let d = k2.on_minute(&short);
    assert_eq!((d.action, d.reason), (Action::Hold, Reason::InPosition));
}

#[test]
fn kill_switch_flattens_and_blocks_until_next_utc_day() {
    let p = Params {
        max_daily_loss_pct: 0.01,
        ..params()
    };
    let mut k = kernel(p);
    let d = k.on_minute(&flow(
        va_bar(0, 49_850.0, 49_920.0, 49_820.0, 49_950.0),
        0.5,
        0.15,
    ));
    fill_entry(&mut k, &d, 49_950.0);
    // 1.515 BTC * -70 $ = -106 $ > 1 % of 10,000: kill.
    let d = k.on_minute(&va_bar(1, 49_900.0, 49_910.0, 49_875.0, 49_880.0));
    assert_ne!(d.events & event::KILL_SWITCH_ON, 0);
    assert_eq!((d.action, d.reason), (Action::Exit, Reason::KillSwitch));
    let q = k.position().unwrap().qty_steps;
    k.on_exit_fill(ExitKind::Market, T0 + 2 * M, 49_880.0, q, 0.0)
        .unwrap();
    let d = k.on_minute(&flow(
        va_bar(2, 49_850.0, 49_920.0, 49_820.0, 49_950.0),
        0.5,
        0.15,
    ));
    assert_eq!(
        (d.action, d.reason),
        (Action::Hold, Reason::KillSwitchActive)
    );
    // Funding counts in the daily P&L too (SPEC §9.4): already killed, stays killed.
    k.on_funding(-1.0);
    // Next UTC day: trading resumes.
    let next_day = (T0 / 86_400_000 + 1) * 86_400_000;
    let mut b = flow(va_bar(0, 49_850.0, 49_920.0, 49_820.0, 49_950.0), 0.5, 0.15);
    b.ts_min = next_day;
    let d = k.on_minute(&b);
    assert_ne!(d.events & event::DAY_ROLLED, 0);
    assert_eq!(d.action, Action::EnterLong);
}

#[test]
fn funding_alone_can_trip_the_kill_switch() {
    let p = Params {
        max_daily_loss_pct: 0.01,
        ..params()
    };
    let mut k = kernel(p);
    k.on_minute(&quiet(0));
    k.on_funding(-150.0);
    let d = k.on_minute(&quiet(1));
    assert_ne!(d.events & event::KILL_SWITCH_ON, 0);
}

#[test]
fn leverage_cap_event_and_heat() {
    // Stop 2 $ below the low 49,899 → distance 6 $ → 33 BTC: capped at 10x ≈ 2.003 BTC.
    let mut k = kernel(params());
    let b = flow(va_bar(0, 49_950.0, 49_960.0, 49_899.0, 49_903.0), 0.5, 0.15);
    let d = k.on_minute(&b);
    assert_ne!(d.events & event::LEVERAGE_CAP_HIT, 0);
    let o = d.entry.unwrap();
    assert_eq!(o.qty_steps, 2_003); // floor(100,000 / 49,903 / 0.001) = floor(2003.89)
    fill_entry(&mut k, &d, 49_903.0);
    let d = k.on_minute(&va_bar(1, 49_903.0, 49_910.0, 49_900.0, 49_903.0));
    // heat = risk / available = 2.003 * 6 / (10,000 - 2.003*49,903/10)
    let avail = 10_000.0 - 2.003 * 49_903.0 / 10.0;
    assert!((d.heat - 2.003 * 6.0 / avail).abs() < 1e-9, "{}", d.heat);
}

/// A deterministic pseudo-random minute stream around a drifting VA.
fn noisy_series(n: i64, seed: u64) -> Vec<MinuteInput> {
    let mut s = seed;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut px = 50_000.0;
    let mut out = Vec::new();
    for i in 0..n {
        let o = px;
        let poc = 50_000.0 + ((i as f64) / 50.0).sin() * 80.0;
        px += (poc - px) * 0.05 + (rnd() - 0.5) * 120.0;
        let h = o.max(px) + rnd() * 40.0;
        let l = o.min(px) - rnd() * 40.0;
        let mut b = va_bar(i, o.round(), h.round(), l.round(), px.round());
        b.poc = poc.round();
        b.vah = b.poc + 100.0;
        b.val = b.poc - 100.0;
        b.va_valid = i % 97 != 3;
        let b = range_traded(b);
        let of = (rnd() - 0.5) * 4.0;
        out.push(flow(b, of, (rnd() - 0.5) * 0.6));
        out.last_mut().unwrap().ambiguous_frac = rnd() * 0.5;
        if i % 61 == 7 {
            out.pop();
            out.push(MinuteInput::empty(T0 + i * M));
        }
    }
    out
}

/// A tiny executor whose only state is the kernel's: fills working entries and pending
/// exits at the next bar's open, and stops/targets from the bar extremes (stop first).
fn step(k: &mut Kernel, b: &MinuteInput) -> Decision {
    if b.has_trades() {
        let ts = b.ts_min + 1;
        if let Some(pos) = k.position().copied() {
            if pos.exit_pending.is_some() {
                k.on_exit_fill(ExitKind::Market, ts, b.open, pos.qty_steps, 0.1)
                    .unwrap();
            }
        }
        if k.working_entry().is_some() && k.position().is_none() {
            k.on_entry_fill(ts, b.open, 0.2).unwrap();
        }
        if let Some(pos) = k.position().copied() {
            let d = pos.side as f64;
            let (adverse, favour) = if d > 0.0 {
                (b.low, b.high)
            } else {
                (b.high, b.low)
            };
            if d * (adverse - pos.stop) <= 0.0 {
                k.on_exit_fill(ExitKind::Stop, ts + 1, pos.stop, pos.qty_steps, 0.0)
                    .unwrap();
            } else if let (Some(t1), false, true) = (pos.tp1, pos.tp1_done, pos.tp1_steps > 0) {
                if d * (favour - t1) >= 0.0 {
                    k.on_exit_fill(ExitKind::Tp1, ts + 1, t1, pos.tp1_steps, 0.0)
                        .unwrap();
                }
            } else if let Some(t2) = pos.tp2 {
                if d * (favour - t2) >= 0.0 {
                    k.on_exit_fill(ExitKind::Tp2, ts + 1, t2, pos.qty_steps, 0.0)
                        .unwrap();
                }
            }
        }
        k.on_funding(-1e-5 * k.position().map_or(0.0, |p| p.qty_steps as f64));
    }
    k.on_minute(b)
}

/// Export mid-run, restore into a fresh kernel, continue: identical to never stopping.
#[test]
fn export_restore_equivalence() {
    let bars = noisy_series(6_000, 42);
    let p = Params {
        max_daily_loss_pct: 0.15,
        cooldown_minutes: 3,
        ..params()
    };
    let mut a = kernel(p);
    let full: Vec<Decision> = bars.iter().map(|b| step(&mut a, b)).collect();
    let n_entries = full.iter().filter(|d| d.entry.is_some()).count();
    assert!(
        n_entries > 100,
        "series too quiet to test much: {n_entries} entries"
    );
    assert!(
        full.iter().any(|d| d.events & event::KILL_SWITCH_ON != 0),
        "kill switch never tripped"
    );
    for cut in [1usize, 500, 1_234, 4_321, 5_999] {
        let mut b = kernel(p);
        for bar in &bars[..cut] {
            step(&mut b, bar);
        }
        let json = b.export_state();
        let mut c = Kernel::restore(p, &json).unwrap();
        assert_eq!(c.state(), b.state());
        for (i, bar) in bars.iter().enumerate().skip(cut) {
            let d = step(&mut c, bar);
            assert_eq!(
                d, full[i],
                "diverged at minute {i} after restoring at {cut}"
            );
        }
        assert_eq!(c.state(), a.state());
    }
    // Deterministic replay: a second run gives the same decisions.
    let mut a2 = kernel(p);
    let again: Vec<Decision> = bars.iter().map(|b| step(&mut a2, b)).collect();
    assert_eq!(again, full);
}

#[test]
fn restore_rejects_bad_json_with_location() {
    let e = Kernel::restore(params(), "{\"above\": 3").unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn fill_reports_are_checked() {
    let mut k = kernel(params());
    assert!(k.on_entry_fill(T0, 1.0, 0.0).is_err());
    assert!(k.on_exit_fill(ExitKind::Stop, T0, 1.0, 1, 0.0).is_err());
}
