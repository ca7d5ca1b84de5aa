//! The fill model of the engine: market fills at the reference quote, resting limits,
//! stops and targets from the minute's extremes or its ticks, funding (see the module doc
//! of `engine` for the rules).

use at_strategy::{EntryOrder, ExitKind, Reason, StopFillMode};
use at_types::AtError;

use super::{decision_ts, Engine, TradeRecord, FUNDING_PERIOD, MINUTE};

#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(super) struct PendingEntry {
    pub(super) order: EntryOrder,
    /// Row whose close decided it.
    pub(super) decided: usize,
    /// Row whose fill reference a market fill uses (the decision row, or the last row of
    /// the limit window after a timeout).
    pub(super) market_row: usize,
    /// Resting as a limit (false once converted to market).
    pub(super) resting: bool,
    pub(super) checked_quote: bool,
    pub(super) cap_hit: bool,
    pub(super) ambiguous: f64,
}

#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(super) struct PendingExit {
    pub(super) decided: usize,
}

/// The levels of the open position the intrabar step reads (no whole-struct copy).
#[derive(Clone, Copy)]
struct Lv {
    exit_pending: Option<Reason>,
    open_ts_ms: i64,
    side: i8,
    stop: f64,
    tp1: Option<f64>,
    tp2: Option<f64>,
    tp1_done: bool,
    tp1_steps: i64,
    qty_steps: i64,
}

impl Lv {
    #[inline]
    pub(super) fn of(p: &at_strategy::Position) -> Self {
        Self {
            exit_pending: p.exit_pending,
            open_ts_ms: p.open_ts_ms,
            side: p.side,
            stop: p.stop,
            tp1: p.tp1,
            tp2: p.tp2,
            tp1_done: p.tp1_done,
            tp1_steps: p.tp1_steps,
            qty_steps: p.qty_steps,
        }
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct OpenTrade {
    pub(super) rec: TradeRecord,
}

impl Engine<'_, '_> {
    /// Market fill reference after the close of row `j`: (ts, bid, ask) of the first quote
    /// strictly after it, or `None` while no such quote is known (the streaming driver has
    /// not seen it yet, or the data ends before one): an order waiting on it stays pending.
    #[inline]
    pub(super) fn quote_after(&self, j: usize) -> Option<(i64, f64, f64)> {
        let t = self.t;
        let (b, a) = (t.next_bid[j], t.next_ask[j]);
        if b.is_finite() && a.is_finite() {
            Some((t.next_quote_ts[j], b, a))
        } else {
            None
        }
    }

    pub(super) fn fee(&self, notional: f64, maker: bool) -> f64 {
        notional
            * if maker {
                self.c.p.maker_fee_bps
            } else {
                self.c.p.taker_fee_bps
            }
            / 1e4
    }

    /// A simulated exit fill: the fee from the fill model, then `book_exit`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn exit_fill(
        &mut self,
        kind: ExitKind,
        ts: i64,
        price: f64,
        steps: i64,
        maker: bool,
        slip: f64,
        reason: Reason,
        dec_ts: i64,
    ) {
        let qty = steps as f64 * self.c.p.qty_step;
        let fee = self.fee(price * qty, maker);
        self.book_exit(kind, ts, price, steps, fee, slip, reason, dec_ts)
            .expect("consistent exit");
    }

    /// Book part or all of the position closed (kernel, trade record, metrics), whatever
    /// filled it: the fill model or the exchange. Returns whether the position is flat.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn book_exit(
        &mut self,
        kind: ExitKind,
        ts: i64,
        price: f64,
        steps: i64,
        fee: f64,
        slip: f64,
        reason: Reason,
        dec_ts: i64,
    ) -> Result<bool, AtError> {
        let qty = steps as f64 * self.c.p.qty_step;
        let pos = *self.c.k.position().ok_or_else(|| AtError::InvalidInput {
            location: format!("exit fill at {ts}"),
            message: "no open position".into(),
        })?;
        let side = pos.side as f64;
        let flat = self.c.k.on_exit_fill(kind, ts, price, steps, fee)?;
        if let Some(o) = self.c.open.as_ref() {
            // Market exits fill after their decision; stops/targets after the entry decision.
            self.c.acc.fill(
                ts,
                if kind == ExitKind::Market {
                    dec_ts
                } else {
                    o.rec.decision_ts_ms
                },
            );
        }
        if let Some(o) = self.c.open.as_mut() {
            let r = &mut o.rec;
            r.gross_pnl += side * (price - pos.entry_price) * qty;
            r.fees += fee;
            r.slippage_cost += slip * qty;
            if kind == ExitKind::Tp1 {
                r.tp1_ts_ms = ts;
                r.tp1_price = price;
                r.tp1_qty = qty;
            }
            if flat {
                r.exit_ts_ms = ts;
                r.exit_decision_ts_ms = dec_ts;
                r.exit_price = price;
                r.exit_reason = reason;
            }
        }
        if flat {
            let mut o = self.c.open.take().expect("open trade");
            o.rec.funding = pos.funding;
            o.rec.net_pnl = o.rec.gross_pnl - o.rec.fees + o.rec.funding;
            self.c.acc.trade(&o.rec);
            if self.c.keep {
                self.c.trades.push(o.rec);
            }
        }
        Ok(flat)
    }

    /// A simulated entry fill of the whole order: the fee from the fill model, then
    /// `book_entry`.
    pub(super) fn entry_fill(
        &mut self,
        pe: &PendingEntry,
        ts: i64,
        price: f64,
        maker: bool,
        slip: f64,
        spread: f64,
    ) {
        let steps = pe.order.qty_steps;
        let qty = steps as f64 * self.c.p.qty_step;
        let fee = self.fee(price * qty, maker);
        self.book_entry(pe, ts, price, steps, fee, maker, slip, spread)
            .expect("consistent entry");
    }

    /// Book the entry of `steps` (at most the order's) at the average `price` with `fee` in
    /// total (kernel, trade record, metrics), whatever filled it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn book_entry(
        &mut self,
        pe: &PendingEntry,
        ts: i64,
        price: f64,
        steps: i64,
        fee: f64,
        maker: bool,
        slip: f64,
        spread: f64,
    ) -> Result<(), AtError> {
        let o = pe.order;
        let qty = steps as f64 * self.c.p.qty_step;
        self.c.k.on_entry_fill_steps(ts, price, steps, fee)?;
        let dts = decision_ts(self.t.ts_min[pe.decided]);
        self.c.acc.fill(ts, dts);
        self.c.acc.entry(maker, spread, pe.ambiguous);
        self.c.open = Some(OpenTrade {
            rec: TradeRecord {
                side: o.side,
                setup: o.setup,
                entry_reason: o.reason,
                decision_ts_ms: dts,
                fill_ts_ms: ts,
                entry_price: price,
                entry_maker: maker,
                qty,
                stop_initial: o.stop,
                tp1: o.tp1.unwrap_or(f64::NAN),
                tp2: o.tp2.unwrap_or(f64::NAN),
                tp1_ts_ms: 0,
                tp1_price: f64::NAN,
                tp1_qty: 0.0,
                exit_decision_ts_ms: 0,
                exit_ts_ms: 0,
                exit_price: f64::NAN,
                exit_reason: Reason::EndOfData,
                gross_pnl: 0.0,
                fees: fee,
                funding: 0.0,
                slippage_cost: slip * qty,
                net_pnl: 0.0,
                entry_spread: spread,
                ambiguous_frac_at_entry: pe.ambiguous,
                leverage_cap_hit: pe.cap_hit,
            },
        });
        Ok(())
    }

    /// Step 2: fill the exit and entry orders whose fill time falls at or before the close
    /// of row `m`. An order whose reference quote comes later (a quiet minute without
    /// quote updates, a gap) stays pending: its price must not reach cash, marks, the kill
    /// switch or the cooldown at earlier closes.
    pub(super) fn fill_orders(&mut self, m: usize) {
        let close_m = decision_ts(self.t.ts_min[m]);
        if let Some(px) = self.c.exit {
            // Market exit at the first quote after the decision close.
            let j = px.decided;
            let Some((ts, bid, ask)) = self.quote_after(j).filter(|q| q.0 <= close_m) else {
                // Not yet: a flip's entry shares this quote and waits with it.
                return;
            };
            let pos = *self.c.k.position().expect("pending exit has a position");
            let (price, slip) = if pos.side > 0 {
                (bid - self.c.slip_exit, self.c.slip_exit)
            } else {
                (ask + self.c.slip_exit, self.c.slip_exit)
            };
            self.c.acc.taker_spread(ask - bid);
            let reason = pos.exit_pending.unwrap_or(Reason::EndOfData);
            self.exit_fill(
                ExitKind::Market,
                ts,
                price,
                pos.qty_steps,
                false,
                slip,
                reason,
                decision_ts(self.t.ts_min[j]),
            );
            self.c.exit = None;
        }
        let Some(mut pe) = self.c.entry else { return };
        let o = pe.order;
        let side = o.side as f64;
        if !pe.resting {
            let Some((ts, bid, ask)) = self.quote_after(pe.market_row).filter(|q| q.0 <= close_m)
            else {
                return;
            };
            let price = if o.side > 0 {
                ask + self.c.slip_entry
            } else {
                bid - self.c.slip_entry
            };
            self.c.entry = None;
            self.c.acc.taker_spread(ask - bid);
            self.entry_fill(&pe, ts, price, false, self.c.slip_entry, ask - bid);
            return;
        }
        let limit = o.limit_price.expect("resting order has a limit");
        // The order is live from its arrival quote (the first after the decision close).
        let Some((arrival, bid, ask)) = self.quote_after(pe.decided).filter(|q| q.0 <= close_m)
        else {
            return;
        };
        if !pe.checked_quote {
            pe.checked_quote = true;
            let ts = arrival;
            let touch = if o.side > 0 { ask } else { bid };
            if side * (limit - touch) >= 0.0 {
                // Marketable on arrival: takes the quote, never beyond the limit.
                let px = if o.side > 0 {
                    (ask + self.c.slip_entry).min(limit)
                } else {
                    (bid - self.c.slip_entry).max(limit)
                };
                self.c.entry = None;
                self.c.acc.taker_spread(ask - bid);
                self.entry_fill(&pe, ts, px, false, side * (px - touch), ask - bid);
                return;
            }
        }
        self.c.entry = Some(pe);
        // Resting: does minute m trade through the limit after the order arrived? The
        // first print at the minute's extreme bounds when that happened; an extreme first
        // printed before the arrival says nothing about the trades after it.
        let t = self.t;
        let (through, at) = if o.side > 0 {
            (t.low[m] < limit, t.low_ts[m])
        } else {
            (t.high[m] > limit, t.high_ts[m])
        };
        if through && at >= arrival {
            self.c.entry = None;
            self.entry_fill(&pe, at, limit, true, 0.0, f64::NAN);
        }
    }

    /// After row `m`'s intrabar step: a resting limit whose window ends with this minute
    /// becomes a market order at the first quote after this close.
    pub(super) fn expire_limit(&mut self, m: usize) {
        if let Some(pe) = self.c.entry.as_mut() {
            let window_end =
                self.t.ts_min[pe.decided] + self.c.p.limit_order_timeout_minutes as i64 * MINUTE;
            if pe.resting && self.t.ts_min[m] >= window_end {
                pe.resting = false;
                pe.market_row = m;
            }
        }
    }

    /// Step 3: stops and targets from minute `m`'s trades.
    pub(super) fn intrabar(&mut self, m: usize) {
        let t = self.t;
        let Some(pos) = self.c.k.position().map(Lv::of) else {
            return;
        };
        if pos.exit_pending.is_some() || !(t.high[m].is_finite() && t.low[m].is_finite()) {
            return;
        }
        let entry_ts = pos.open_ts_ms;
        if self.c.p.stop_fill_mode == StopFillMode::TickPath {
            if let Some(tp) = t.ticks {
                let (a, b) = (tp.start[m] as usize, tp.start[m + 1] as usize);
                if b > a {
                    self.tick_path(m, &tp.ts[a..b], &tp.price[a..b], entry_ts);
                    return;
                }
            }
        }
        let side = pos.side as f64;
        let (adverse, favour, adv_ts, fav_ts) = if pos.side > 0 {
            (t.low[m], t.high[m], t.low_ts[m], t.high_ts[m])
        } else {
            (t.high[m], t.low[m], t.high_ts[m], t.low_ts[m])
        };
        // In the minute the entry filled, only prints after the fill are the position's.
        // The first print at an extreme bounds when it traded: at or after the fill, the
        // extreme is the position's (a print in the fill's own millisecond counts against
        // it, never for it: the worst case); before the fill, the minute's later path is
        // unknown and that side is not checked in this minute (a stop level crossed
        // meanwhile is caught by the next minute's open, at the worse of the two).
        let (adverse_seen, favour_seen) = if entry_ts < t.ts_min[m] {
            (true, true)
        } else {
            (adv_ts >= entry_ts, fav_ts > entry_ts)
        };
        let open = t.open[m];
        let taker = self.c.p.use_market_for_exit;
        if adverse_seen && side * (adverse - pos.stop) <= 0.0 {
            // Gap through the stop: the worse of the level and the open (an open printed
            // before the fill is not the position's price).
            let lvl = if entry_ts < t.ts_min[m] && side * (open - pos.stop) < 0.0 {
                open
            } else {
                pos.stop
            };
            let px = lvl - side * self.c.slip_exit;
            let reason = if pos.tp1_done {
                Reason::BreakevenStop
            } else {
                Reason::Stop
            };
            let ts = adv_ts;
            self.exit_fill(
                ExitKind::Stop,
                ts,
                px,
                pos.qty_steps,
                false,
                self.c.slip_exit,
                reason,
                ts,
            );
            return;
        }
        if !favour_seen {
            return;
        }
        let ts = fav_ts;
        let (tslip, tpx) = if taker {
            (self.c.slip_exit, -side * self.c.slip_exit)
        } else {
            (0.0, 0.0)
        };
        let mut remaining = pos.qty_steps;
        if let (Some(t1), false, true) = (pos.tp1, pos.tp1_done, pos.tp1_steps > 0) {
            if side * (favour - t1) >= 0.0 {
                self.exit_fill(
                    ExitKind::Tp1,
                    ts,
                    t1 + tpx,
                    pos.tp1_steps,
                    !taker,
                    tslip,
                    Reason::Tp1,
                    ts,
                );
                remaining -= pos.tp1_steps;
            } else {
                return;
            }
        }
        if let Some(t2) = pos.tp2 {
            if side * (favour - t2) >= 0.0 && remaining > 0 {
                self.exit_fill(
                    ExitKind::Tp2,
                    ts,
                    t2 + tpx,
                    remaining,
                    !taker,
                    tslip,
                    Reason::Tp2,
                    ts,
                );
            }
        }
    }

    /// Tick-path resolution: walk the minute's trades after the entry fill in time order.
    pub(super) fn tick_path(&mut self, _m: usize, ts: &[i64], px: &[f64], entry_ts: i64) {
        let taker = self.c.p.use_market_for_exit;
        for (i, &p) in px.iter().enumerate() {
            // Ticks before the fill are not the position's; one in the fill's millisecond
            // counts against it (stop) but not for it (targets), as in `intrabar`.
            if ts[i] < entry_ts {
                continue;
            }
            let Some(pos) = self.c.k.position().map(Lv::of) else {
                return;
            };
            let side = pos.side as f64;
            if side * (p - pos.stop) <= 0.0 {
                // The first trade at or beyond the stop: the worse of it and the level.
                let lvl = if side * (p - pos.stop) < 0.0 {
                    p
                } else {
                    pos.stop
                };
                let reason = if pos.tp1_done {
                    Reason::BreakevenStop
                } else {
                    Reason::Stop
                };
                self.exit_fill(
                    ExitKind::Stop,
                    ts[i],
                    lvl - side * self.c.slip_exit,
                    pos.qty_steps,
                    false,
                    self.c.slip_exit,
                    reason,
                    ts[i],
                );
                return;
            }
            if ts[i] == entry_ts {
                continue;
            }
            let (tslip, tpx) = if taker {
                (self.c.slip_exit, -side * self.c.slip_exit)
            } else {
                (0.0, 0.0)
            };
            if let (Some(t1), false, true) = (pos.tp1, pos.tp1_done, pos.tp1_steps > 0) {
                if side * (p - t1) >= 0.0 {
                    self.exit_fill(
                        ExitKind::Tp1,
                        ts[i],
                        t1 + tpx,
                        pos.tp1_steps,
                        !taker,
                        tslip,
                        Reason::Tp1,
                        ts[i],
                    );
                    continue;
                }
            } else if let Some(t2) = pos.tp2 {
                if side * (p - t2) >= 0.0 {
                    self.exit_fill(
                        ExitKind::Tp2,
                        ts[i],
                        t2 + tpx,
                        pos.qty_steps,
                        !taker,
                        tslip,
                        Reason::Tp2,
                        ts[i],
                    );
                    return;
                }
            }
        }
    }

    pub(super) fn funding(&mut self, upto: i64) {
        while self.c.next_funding <= upto {
            let f = self.c.next_funding;
            // fraction of notional at this instant: the history's, or the fixed 8h rate
            // (rate, divisor): the fixed rate keeps its exact `* bps / 1e4` arithmetic
            let (rate, div) = match &self.t.funding {
                Some(h) => {
                    let (r, next) = h.at(f);
                    self.c.next_funding = next;
                    (r, 1.0)
                }
                None => {
                    self.c.next_funding += FUNDING_PERIOD;
                    (self.c.p.funding_rate_8h_bps, 1e4)
                }
            };
            if let Some(pos) = self.c.k.position().copied() {
                if pos.open_ts_ms < f && self.c.last_mark.is_finite() {
                    let notional = pos.qty_steps as f64 * self.c.p.qty_step * self.c.last_mark;
                    // Longs pay a positive rate, shorts receive it.
                    let amount = -(pos.side as f64) * notional * rate / div;
                    self.c.k.on_funding(amount);
                    self.c.acc.funding(amount);
                }
            }
        }
    }

    pub(super) fn fill_orders_end(&mut self, last: usize) {
        if let Some(px) = self.c.exit.take() {
            // Without a quote after the decision the position is closed at the last mark
            // by `finish` (END_OF_DATA).
            let Some((ts, bid, ask)) = self.quote_after(px.decided.min(last)) else {
                return;
            };
            if let Some(pos) = self.c.k.position().copied() {
                let price = if pos.side > 0 {
                    bid - self.c.slip_exit
                } else {
                    ask + self.c.slip_exit
                };
                let reason = pos.exit_pending.unwrap_or(Reason::EndOfData);
                self.exit_fill(
                    ExitKind::Market,
                    ts,
                    price,
                    pos.qty_steps,
                    false,
                    self.c.slip_exit,
                    reason,
                    decision_ts(self.t.ts_min[px.decided]),
                );
            }
        }
    }
}
