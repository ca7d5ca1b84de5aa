//! The book: position, cash, fills and funding reported back, equity, heat, state export.

use super::*;

impl Kernel {
    pub fn params(&self) -> &Params {
        &self.p
    }
    pub fn state(&self) -> &KernelState {
        &self.s
    }
    pub fn position(&self) -> Option<&Position> {
        self.s.position.as_ref()
    }
    pub fn working_entry(&self) -> Option<&EntryOrder> {
        self.s.working.as_ref()
    }

    pub fn mode(&self) -> Mode {
        match (&self.s.position, &self.s.retest) {
            (Some(p), _) if p.side > 0 => Mode::Long,
            (Some(_), _) => Mode::Short,
            (None, Some(_)) => Mode::PendingRetest,
            (None, None) => Mode::Flat,
        }
    }

    /// The whole state as JSON (state snapshots, SPEC §16).
    pub fn export_state(&self) -> String {
        serde_json::to_string(&self.s).expect("kernel state serialises")
    }

    /// A kernel with `p` and a state exported earlier by `export_state`.
    pub fn restore(p: Params, state_json: &str) -> Result<Self, AtError> {
        let mut k = Kernel::new(p)?;
        k.s = serde_json::from_str(state_json).map_err(|e| AtError::InvalidInput {
            location: format!("kernel state JSON line {} column {}", e.line(), e.column()),
            message: e.to_string(),
        })?;
        Ok(k)
    }

    /// Acceptance counters and locked levels as JSON (`signals_1m.acceptance_state`).
    pub fn acceptance_json(&self) -> String {
        serde_json::json!({
            "mode": self.mode().as_str(),
            "above": self.s.above,
            "below": self.s.below,
            "retest": self.s.retest,
        })
        .to_string()
    }

    /// Equity marked at `price` (cash + open position).
    pub fn equity_at(&self, price: f64) -> f64 {
        match &self.s.position {
            Some(pos) if price.is_finite() => {
                self.s.cash
                    + pos.side as f64
                        * (price - pos.entry_price)
                        * pos.qty_steps as f64
                        * self.p.qty_step
            }
            _ => self.s.cash,
        }
    }

    pub fn cash(&self) -> f64 {
        self.s.cash
    }

    pub(crate) fn heat(&self, equity: f64) -> f64 {
        match &self.s.position {
            Some(pos) => {
                let qty = pos.qty_steps as f64 * self.p.qty_step;
                let risk = fmax(0.0, pos.side as f64 * (pos.entry_price - pos.stop)) * qty;
                let avail = equity - qty * pos.entry_price / self.p.max_leverage;
                if avail > 0.0 {
                    risk / avail
                } else {
                    f64::INFINITY
                }
            }
            None => 0.0,
        }
    }

    // ------------------------------------------------------------------ fills

    /// The working entry filled (whole quantity) at `price` with `fee` (positive = paid).
    pub fn on_entry_fill(&mut self, ts_ms: i64, price: f64, fee: f64) -> Result<(), AtError> {
        let steps = self.s.working.map_or(0, |o| o.qty_steps);
        self.on_entry_fill_steps(ts_ms, price, steps, fee)
    }

    /// The working entry ended with `qty_steps` (at most the order's) filled at the average
    /// `price`, `fee` in total: the position opens with what was filled (live partial fills
    /// whose rest was cancelled), TP1's share recomputed from it (SPEC §8.2).
    pub fn on_entry_fill_steps(
        &mut self,
        ts_ms: i64,
        price: f64,
        qty_steps: i64,
        fee: f64,
    ) -> Result<(), AtError> {
        let bad = |message: String| AtError::InvalidInput {
            location: format!("entry fill at {ts_ms}"),
            message,
        };
        let o = self
            .s
            .working
            .ok_or_else(|| bad("no working entry order".into()))?;
        if self.s.position.is_some() {
            return Err(bad("a position is still open (exit must fill first)".into()));
        }
        if qty_steps < 1 || qty_steps > o.qty_steps {
            return Err(bad(format!(
                "filled {qty_steps} steps of an order of {}",
                o.qty_steps
            )));
        }
        if !(price.is_finite() && price > 0.0 && fee.is_finite()) {
            return Err(bad(format!("price {price} / fee {fee} not finite")));
        }
        self.s.working = None;
        let tp1 = if qty_steps == o.qty_steps {
            o.tp1_steps
        } else {
            tp1_steps(qty_steps, self.p.tp1_pct)
        };
        self.s.cash -= fee;
        self.s.retest = None;
        self.s.position = Some(Position {
            side: o.side,
            setup: o.setup,
            entry_reason: o.reason,
            qty_steps,
            initial_qty_steps: qty_steps,
            tp1_steps: tp1,
            entry_price: price,
            entry_fee: fee,
            stop: o.stop,
            tp1: o.tp1,
            tp2: o.tp2,
            tp1_done: false,
            close_inside_level: o.close_inside_level,
            timer_start_ms: at_types::minute_of(ts_ms) + MINUTE,
            open_ts_ms: ts_ms,
            extended: false,
            funding: 0.0,
            realized: 0.0,
            fees: fee,
            exit_pending: None,
        });
        Ok(())
    }

    /// Set the live graph's entry permission (takes effect at the next decided minute: a
    /// working entry is then cancelled unless `Allowed`).
    pub fn set_permission(&mut self, p: Permission) {
        self.s.permission = p;
    }

    /// The working entry will not fill (rejected / cancelled by the executor).
    pub fn cancel_entry(&mut self) {
        self.s.working = None;
    }

    /// Live only: an entry this kernel cancelled (kill switch, permission) was filled by
    /// the exchange before the cancel reached it. The position is real, so the order it
    /// came from works again, for the fill that follows to open it with the order's stop
    /// and targets. Refused while another entry works or a position is open: two entries
    /// filled at once is a state the kernel cannot explain.
    pub fn reinstate_entry(&mut self, o: EntryOrder) -> Result<(), AtError> {
        if self.s.working.is_some() || self.s.position.is_some() {
            return Err(AtError::InvalidInput {
                location: "late entry fill".into(),
                message: "a cancelled entry filled while another entry works or a position \
                          is open"
                    .into(),
            });
        }
        self.s.working = Some(o);
        Ok(())
    }

    /// A data gap: forget what described the market before it (the acceptance sequences
    /// and an armed retest); the book (cash, position, day, kill switch, cooldown clock)
    /// is kept. A sequence locked before a hole of hours would otherwise keep counting
    /// closes after it as if they were consecutive.
    pub fn forget_market(&mut self) {
        self.s.above = SeqTrack::NONE;
        self.s.below = SeqTrack::NONE;
        self.s.retest = None;
    }

    /// Part or all of the position closed at `price`. Returns true when it is now flat.
    pub fn on_exit_fill(
        &mut self,
        kind: ExitKind,
        ts_ms: i64,
        price: f64,
        qty_steps: i64,
        fee: f64,
    ) -> Result<bool, AtError> {
        let be = self.p.move_stop_to_breakeven_after_tp1;
        let step = self.p.qty_step;
        let pos = self
            .s
            .position
            .as_mut()
            .ok_or_else(|| AtError::InvalidInput {
                location: format!("exit fill at {ts_ms}"),
                message: "no open position".into(),
            })?;
        if qty_steps <= 0 || qty_steps > pos.qty_steps {
            return Err(AtError::InvalidInput {
                location: format!("exit fill at {ts_ms}"),
                message: format!("quantity {qty_steps} steps outside 1..={}", pos.qty_steps),
            });
        }
        let pnl = pos.side as f64 * (price - pos.entry_price) * qty_steps as f64 * step;
        pos.realized += pnl;
        pos.fees += fee;
        self.s.cash += pnl - fee;
        pos.qty_steps -= qty_steps;
        if kind == ExitKind::Tp1 {
            pos.tp1_done = true;
            if be {
                pos.stop = if pos.side > 0 {
                    fmax(pos.stop, pos.entry_price)
                } else {
                    fmin(pos.stop, pos.entry_price)
                };
            }
        }
        if pos.qty_steps == 0 {
            self.s.position = None;
            self.s.last_exit_min = Some(at_types::minute_of(ts_ms));
            return Ok(true);
        }
        Ok(false)
    }

    /// Live mode: the cash becomes the exchange's wallet balance (realised cash, as the
    /// book's own). The difference is no profit or loss: the configured `initial_equity`
    /// against the real account, a deposit or withdrawal, rounding. So the day's starting
    /// equity and the last mark move with it, and the daily-loss kill switch sees none of
    /// it. Sizing then works from the real account (SPEC §7.4). Returns the adjustment.
    pub fn sync_cash(&mut self, wallet: f64) -> f64 {
        let delta = wallet - self.s.cash;
        self.s.cash = wallet;
        self.s.day_start_equity += delta;
        self.s.last_mtm += delta;
        delta
    }

    /// Funding paid (negative) or received (positive) on the open position.
    pub fn on_funding(&mut self, amount: f64) {
        self.s.cash += amount;
        if let Some(pos) = self.s.position.as_mut() {
            pos.funding += amount;
        }
    }

    // ------------------------------------------------------------------ decisions
}
