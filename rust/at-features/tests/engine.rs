//! SPEC §21.1 "Feature Engine" unit cases through the public engine API.

mod common;
use at_features::engine::FeatureEngine;
use at_features::stage2::{Stage2, Stage2Input};
use at_features::{AtError, QuoteMatch, SideSource, Stage1Config, Stage2Config};
use common::*;

fn s1(rule: QuoteMatch) -> Stage1Config {
    Stage1Config {
        quote_match: rule,
        ..Stage1Config::default()
    }
}

#[test]
fn alignment_tie_rule_ignores_feed_interleaving() {
    // book 100/101 at t=0; at t=1000 a buy at 101 and the quote it causes (102/103), fed in
    // both orders. strictly_before: +1 (vs 100/101). at_or_before: sees 102/103 -> -1.
    let q0 = qt(0, 0, 100, 101, 1.0, 1.0);
    let q1 = qt(1_000, 1, 102, 103, 1.0, 1.0);
    let t = tr(1_000, 0, 101, 1.0, 1);
    for (rule, want) in [
        (QuoteMatch::StrictlyBefore, 1.0),
        (QuoteMatch::AtOrBefore, -1.0),
    ] {
        for quote_first in [true, false] {
            let mut e = FeatureEngine::new(s1(rule), Stage2Config::default()).unwrap();
            e.push_quote(q0).unwrap();
            if quote_first {
                e.push_quote(q1).unwrap();
                e.push_trade(t).unwrap();
            } else {
                e.push_trade(t).unwrap();
                e.push_quote(q1).unwrap();
            }
            let out = e.finish().unwrap();
            assert_eq!(out[0].0.of, want, "{rule:?} quote_first={quote_first}");
        }
    }
}

#[test]
fn stale_quote_is_used_and_counted() {
    let quotes = vec![qt(0, 0, 100, 101, 1.0, 1.0)];
    let trades = vec![tr(200, 0, 101, 1.0, 0), tr(5_000, 1, 100, 1.0, 0)];
    let (m, sides) = stage1(&Stage1Config::default(), &trades, &quotes, true).unwrap();
    assert_eq!(
        m[0].stale_trades, 1,
        "5 s old quote is stale (limit 250 ms)"
    );
    assert_eq!(m[0].of, 0.0, "stale quote still signs the trade: +1 -1");
    assert_eq!(sides[1].staleness_ms, Some(5_000));
    assert_eq!(sides[1].sign, -1);
    assert_eq!(sides[0].bid_ticks, Some(100));
}

#[test]
fn trade_before_any_quote_is_unmatched_and_ambiguous() {
    let (m, _) = stage1(
        &Stage1Config::default(),
        &[tr(10, 0, 100, 2.0, 0)],
        &[],
        false,
    )
    .unwrap();
    assert_eq!(m[0].unmatched_trades, 1);
    assert_eq!(m[0].ambiguous_volume, 2.0);
    assert_eq!(m[0].of, 0.0);
}

#[test]
fn same_millisecond_group_uses_previous_group_for_tick_rule() {
    // no quotes inside the spread logic: quote 90/110 (wide), all trades inside -> tick rule
    let quotes = vec![qt(0, 0, 90, 110, 1.0, 1.0)];
    let trades = vec![
        tr(100, 0, 100, 1.0, 0), // first ever: no previous -> 0
        tr(200, 1, 101, 1.0, 0), // up-tick vs 100 -> +1
        tr(200, 2, 100, 1.0, 0), // same ms: compared to 100 (previous group), zero tick,
        // carried sign of the previous group is 0 (group at 100 netted zero) -> 0
        tr(300, 3, 100, 1.0, 0), // vs last price of group 200 (100): zero tick, carry the
                                 // sign of group 200 (net +1) -> +1
    ];
    let (m, sides) = stage1(&Stage1Config::default(), &trades, &quotes, true).unwrap();
    let signs: Vec<i8> = sides.iter().map(|s| s.sign).collect();
    assert_eq!(signs, vec![0, 1, 0, 1]);
    assert_eq!(m[0].group_count, 3);
    assert_eq!(m[0].ambiguous_volume, 4.0);
}

#[test]
fn exchange_side_source_and_agreement() {
    let quotes = vec![qt(0, 0, 100, 101, 1.0, 1.0)];
    let trades = vec![
        tr(10, 0, 101, 1.0, 1), // quote +1, exchange +1: agree
        tr(20, 1, 100, 1.0, 1), // quote -1, exchange +1: disagree
        tr(30, 2, 101, 2.0, 0), // no exchange side
    ];
    let (m, _) = stage1(&Stage1Config::default(), &trades, &quotes, false).unwrap();
    assert_eq!((m[0].side_cmp_quote, m[0].side_agree_quote), (2, 1));
    assert_eq!(m[0].of, 2.0); // inferred: +1 -1 +2
    let c = Stage1Config {
        side_source: SideSource::Exchange,
        ..Stage1Config::default()
    };
    let (m, _) = stage1(&c, &trades, &quotes, false).unwrap();
    assert_eq!(m[0].of, 4.0); // exchange +1 +1, fallback +2
    assert_eq!(m[0].ambiguous_volume, 2.0);
}

#[test]
fn minute_bars_l1_close_and_empty_minutes() {
    let t0 = 1_712_275_200_000 - 2 * M; // two minutes before a UTC midnight
    let quotes = vec![
        qt(t0 + 10, 0, 500_000, 500_001, 3.0, 1.0),
        qt(t0 + 59_999, 1, 500_002, 500_003, 1.0, 1.0), // at the close time: included
        qt(t0 + 60_000, 2, 500_004, 500_005, 1.0, 3.0), // next minute
    ];
    let trades = vec![
        tr(t0 + 100, 0, 500_001, 1.0, 0),
        tr(t0 + 200, 1, 500_003, 3.0, 0),
        tr(t0 + 59_999, 2, 500_000, 1.0, 0),
        tr(t0 + 3 * M + 5, 3, 500_010, 1.0, 0), // after midnight, one empty minute between
    ];
    let (m, _) = stage1(&Stage1Config::default(), &trades, &quotes, false).unwrap();
    assert_eq!(
        m.iter().map(|s| s.ts_min - t0).collect::<Vec<_>>(),
        vec![0, M, 2 * M, 3 * M]
    );
    let a = &m[0];
    assert_eq!(
        (a.open, a.high, a.low, a.close),
        (Some(500_001), Some(500_003), Some(500_000), Some(500_000))
    );
    assert_eq!(a.volume, 5.0);
    assert_eq!(
        a.vwap_ticks(),
        (500_001.0 + 3.0 * 500_003.0 + 500_000.0) / 5.0
    );
    assert_eq!(a.l1_close.unwrap().bid_ticks, 500_002);
    assert_eq!(
        a.hist,
        vec![
            (500_000, 100_000_000),
            (500_001, 100_000_000),
            (500_003, 300_000_000)
        ]
    );
    assert_eq!(a.first_quote.unwrap().ts_ms, t0 + 10);
    assert_eq!(
        (a.bid_lo, a.bid_hi, a.ask_lo, a.ask_hi),
        (Some(500_000), Some(500_002), Some(500_001), Some(500_003))
    );
    let b = &m[1];
    assert_eq!(b.trade_count, 0);
    assert!(b.open.is_none());
    assert_eq!(
        b.first_quote.unwrap().ts_ms,
        t0 + 60_000,
        "fill reference after minute 0's close"
    );
    assert_eq!(b.qimb_close, -0.5);
    let c = &m[2];
    assert_eq!(c.quote_count, 0);
    assert_eq!(
        c.l1_close.unwrap().bid_ticks,
        500_004,
        "last available quote carried"
    );
    assert_eq!(m[3].close, Some(500_010));
}

#[test]
fn qimb_ema_in_time() {
    // qimb +1 from t=0, -1 from t=30 s; at the minute end (60 s): 2 e^{-1/2} - 1
    let quotes = vec![
        qt(0, 0, 100, 101, 1.0, 0.0),
        qt(30_000, 1, 100, 101, 0.0, 1.0),
    ];
    let (m, _) = stage1(&Stage1Config::default(), &[], &quotes, false).unwrap();
    let want = 2.0 * (-0.5f64).exp() - 1.0;
    assert!(
        (m[0].qimb_ema - want).abs() < 1e-15,
        "{} vs {want}",
        m[0].qimb_ema
    );
    assert_eq!(m[0].qimb_close, -1.0);
    // a burst of updates in one millisecond carries no weight
    let mut burst = vec![qt(0, 0, 100, 101, 1.0, 0.0)];
    for k in 0..50 {
        burst.push(qt(10_000, 1 + k, 100, 101, 0.0, 1.0));
    }
    burst.push(qt(10_000, 99, 100, 101, 1.0, 0.0));
    let (m, _) = stage1(&Stage1Config::default(), &[], &burst, false).unwrap();
    assert!((m[0].qimb_ema - 1.0).abs() < 1e-15);
}

#[test]
fn refuses_out_of_order_and_closed_minutes() {
    let mut e = FeatureEngine::new(Stage1Config::default(), Stage2Config::default()).unwrap();
    e.push_quote(qt(1_000, 0, 1, 2, 1.0, 1.0)).unwrap();
    assert!(matches!(
        e.push_trade(tr(999, 0, 1, 1.0, 0)),
        Err(AtError::OutOfOrder { .. })
    ));
    let closed = e.close_minute(0).unwrap();
    assert_eq!(closed.len(), 1);
    assert!(matches!(
        e.push_trade(tr(59_000, 0, 1, 1.0, 0)),
        Err(AtError::OutOfOrder { .. })
    ));
    assert!(e.push_trade(tr(60_000, 0, 1, 1.0, 0)).is_ok());
    let err = batch(
        &Stage1Config::default(),
        &Stage2Config::default(),
        &[tr(10, 0, 1, 1.0, 0), tr(5, 1, 1, 1.0, 0)],
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("trade #1"), "{err}");
    let err = batch(
        &Stage1Config::default(),
        &Stage2Config::default(),
        &[tr(10, 0, 1, f64::NAN, 0)],
        &[],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("trade #0") && err.to_string().contains("size"),
        "{err}"
    );
}

fn minute_input(ts: i64, mid: f64) -> Stage2Input<'static> {
    Stage2Input {
        ts_min: ts,
        mid_close_ticks: mid,
        spread_close_ticks: Some(1),
        close_ticks: None,
        volume: 0.0,
        hist: &[],
    }
}

#[test]
fn bin_width_rounding_and_clamping() {
    let s = Stage2::new(Stage2Config::default()).unwrap();
    // alpha 0.25 * mid 500000 ticks * sigma
    assert_eq!(s.candidate_width(500_000.0, 0.0001), 13); // 12.5 rounds half away -> 13
    assert_eq!(s.candidate_width(500_000.0, 0.00009), 11); // 11.25 -> 11
    assert_eq!(s.candidate_width(500_000.0, 1e-9), 1, ">= tick");
    assert_eq!(s.candidate_width(500_000.0, 1.0), 200, "<= 200 ticks");
    assert_eq!(s.candidate_width(f64::NAN, 0.1), 1);
    let s = Stage2::new(Stage2Config {
        base_bin_ticks: 5,
        tick_size: 0.1,
        bin_width_max_ticks: 12,
        ..Stage2Config::default()
    })
    .unwrap();
    assert_eq!(
        s.candidate_width(500_000.0, 0.0001),
        10,
        "12.5 -> 15 (base 5), clamped to max 12 rounded down to 10"
    );
    assert_eq!(s.candidate_width(500_000.0, 0.00004), 5);
}

#[test]
fn rebucketing_rules() {
    let cfg = Stage2Config {
        alpha_bin: 1.0,
        ..Stage2Config::default()
    };
    let mut s = Stage2::new(cfg).unwrap();
    // start at UTC minute 1 (not a multiple of 15); mids alternate to give a sigma
    let t = |k: i64| (1 + k) * M;
    let mut rows = Vec::new();
    let mids = [
        100_000.0, 100_010.0, 100_000.0, 100_010.0, 100_000.0, 100_011.0, 100_000.0,
    ];
    for (k, m) in mids.iter().enumerate() {
        rows.push(s.push(minute_input(t(k as i64), *m)).unwrap());
    }
    assert!(rows[0].rebucketed, "first width is always applied");
    for r in &rows {
        // applied width only changes on rebucket minutes
        if !r.rebucketed {
            let change = (r.bin_width_candidate_ticks - r.bin_width_ticks).abs() as f64
                / r.bin_width_ticks as f64;
            assert!(change < 0.25, "{r:?}");
        } else {
            assert_eq!(r.bin_width_ticks, r.bin_width_candidate_ticks);
        }
    }
    // the rule, minute by minute, over UTC minutes 0..40 with a jump at minute 22
    let mut s = Stage2::new(Stage2Config {
        alpha_bin: 1.0,
        ..Stage2Config::default()
    })
    .unwrap();
    let mut prev_applied: Option<i64> = None;
    let mut jumped = false;
    for k in 0..40i64 {
        let mut mid = if k % 2 == 0 {
            100_000.0
        } else {
            100_010.0 + k as f64 * 0.05
        };
        if k == 22 {
            mid = 100_400.0;
        }
        let r = s.push(minute_input(k * M, mid)).unwrap();
        let want = match prev_applied {
            None => true,
            Some(old) => {
                k % 15 == 0 || (r.bin_width_candidate_ticks - old).abs() as f64 / old as f64 >= 0.25
            }
        };
        assert_eq!(r.rebucketed, want, "minute {k}: {r:?}");
        if k == 15 || k == 30 {
            assert!(r.rebucketed, "every 15 UTC minutes");
        }
        if k == 22 {
            assert!(r.rebucketed, "a 4x jump in sigma rebuckets at once");
            jumped = true;
        }
        if r.rebucketed {
            prev_applied = Some(r.bin_width_candidate_ticks);
        }
        assert_eq!(r.bin_width_ticks, prev_applied.unwrap());
    }
    assert!(jumped);
}

#[test]
fn a_bad_row_rolls_the_batch_back() {
    use at_features::engine::feed_stage1;
    use at_features::stage1::Stage1Engine;
    let mut e = Stage1Engine::new(Stage1Config::default()).unwrap();
    feed_stage1(
        &mut e,
        &[tr(1_000, 0, 100, 1.0, 0)][..],
        &[qt(500, 0, 99, 100, 1.0, 1.0)][..],
    )
    .unwrap();
    let before = format!("{e:?}");
    // rows 0 and 1 are fine and close a minute; row 2 is unsorted
    let bad = [
        tr(2_000, 1, 100, 1.0, 0),
        tr(70_000, 2, 101, 1.0, 0),
        tr(69_000, 3, 101, 1.0, 0),
    ];
    let err = feed_stage1(&mut e, &bad[..], &[][..] as &[at_features::Quote]).unwrap_err();
    assert!(err.to_string().contains("trade #2"), "{err}");
    assert_eq!(format!("{e:?}"), before, "state restored exactly");
    let err = feed_stage1(
        &mut e,
        &[tr(3_000, 1, 100, f64::INFINITY, 0)][..],
        &[][..] as &[at_features::Quote],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("trade #0") && err.to_string().contains("size"),
        "{err}"
    );
    assert_eq!(format!("{e:?}"), before);
}

#[test]
fn extremes_timestamps() {
    // minute 0: 100 @10, 104 @20, 104 @30 (second touch of the high), 99 @40, 99 @50,
    // 102 @50 (same millisecond). First low 99 at 40, first high 104 at 20. Minute 1: one
    // trade. Minute 2: no trade.
    let quotes = vec![qt(0, 0, 90, 110, 1.0, 1.0)];
    let trades = vec![
        tr(10, 0, 100, 1.0, 0),
        tr(20, 1, 104, 1.0, 0),
        tr(30, 2, 104, 1.0, 0),
        tr(40, 3, 99, 1.0, 0),
        tr(50, 4, 99, 1.0, 0),
        tr(50, 5, 102, 1.0, 0),
        tr(M + 7, 6, 402, 1.0, 0),
        tr(3 * M + 1, 7, 402, 1.0, 0),
    ];
    let (m, _) = stage1(&Stage1Config::default(), &trades, &quotes, false).unwrap();
    assert_eq!(m.len(), 4);
    assert_eq!((m[0].low_ts, m[0].high_ts), (Some(40), Some(20)));
    assert_eq!((m[1].low_ts, m[1].high_ts), (Some(M + 7), Some(M + 7)));
    assert_eq!((m[2].low_ts, m[2].high_ts), (None, None));
}

#[test]
fn pending_trades_are_those_whose_sides_are_not_reported_yet() {
    // Sides come out once a trade's timestamp group is complete: the caller pairing sides
    // with the trades it pushed (the live footprint) relies on this count.
    let mut e =
        FeatureEngine::new(s1(QuoteMatch::StrictlyBefore), Stage2Config::default()).unwrap();
    e.stage1().set_record_trades(true);
    e.push_quote(qt(0, 0, 100, 101, 1.0, 1.0)).unwrap();
    e.push_trade(tr(1_000, 0, 101, 1.0, 1)).unwrap();
    e.push_trade(tr(1_000, 1, 100, 2.0, -1)).unwrap();
    assert_eq!(e.stage1().pending_trades(), 2);
    assert!(e.stage1().take_trade_sides().is_empty());
    e.push_trade(tr(2_000, 2, 101, 1.0, 1)).unwrap(); // completes the group at t=1000
    assert_eq!(e.stage1().pending_trades(), 1);
    let sides = e.stage1().take_trade_sides();
    assert_eq!(
        sides.iter().map(|s| s.sign).collect::<Vec<_>>(),
        vec![1, -1]
    );
    e.close_minute(0).unwrap(); // a close completes the open group
    assert_eq!(e.stage1().pending_trades(), 0);
    assert_eq!(e.stage1().take_trade_sides().len(), 1);
}
