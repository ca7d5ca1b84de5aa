//! Live mode: fills reported by the exchange instead of simulated, booked by the same code
//! (`book_entry`, `book_exit`: kernel, trade records, metrics).
//!
//! Rules (an unexplained report is an error; the caller halts and alerts, never guesses):
//! * an entry fill needs the working entry the kernel placed; partial fills accumulate
//!   (quantity, notional, fees) until the order's quantity is filled, or until the
//!   executor reports the order ended (`external_entry_end`: cancelled or expired with the
//!   rest unfilled), when the position opens with what filled at the average price;
//! * an entry the kernel cancelled (kill switch, permission) may still fill: the cancel
//!   races the exchange, and a graph that was down meets the fills of the time it was away
//!   only after it has decided again. Such an order is kept (`Cancelled`) until the
//!   executor reports its end; its fills open the position it would have opened (the
//!   kernel's next minutes then treat it like any other: the kill switch closes it);
//! * reports name the order by the minute that decided it (`order`), so a fill of a
//!   cancelled order is never booked against a newer working one; without it the working
//!   entry is meant, else the only cancelled one;
//! * an exit fill needs an open position; a market exit needs the exit the kernel decided
//!   (stops and targets may fill any time: the exchange holds them);
//! * quantities must lie on the instrument's quantity grid.

use at_strategy::{ExitKind, Reason};
use at_types::AtError;

use super::{decision_ts, Engine, PendingEntry};

/// Partial fills of the working entry so far.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(super) struct PartialEntry {
    steps: i64,
    notional: f64,
    fee: f64,
    fills: u32,
    /// Price of the only fill while there is one (the average of one fill, exactly).
    first_price: f64,
    maker: bool,
}

impl PartialEntry {
    pub(super) fn steps(&self) -> i64 {
        self.steps
    }
}

/// An entry the kernel cancelled whose end the executor has not reported yet, with what
/// of it filled so far.
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(super) struct CancelledEntry {
    pub(super) pe: PendingEntry,
    pub(super) partial: Option<PartialEntry>,
}

/// Which order a report is about.
#[derive(Clone, Copy)]
enum Slot {
    Working,
    Cancelled(usize),
}

fn bad(ts: i64, message: String) -> AtError {
    AtError::InvalidInput {
        location: format!("reported fill at {ts}"),
        message,
    }
}

impl Engine<'_, '_> {
    fn steps_of(&self, ts: i64, qty: f64) -> Result<i64, AtError> {
        let step = self.c.p.qty_step;
        let steps = (qty / step).round() as i64;
        if !(qty.is_finite() && qty > 0.0) || (steps as f64 * step - qty).abs() > step * 1e-6 {
            return Err(bad(
                ts,
                format!("quantity {qty} is not a positive multiple of {step}"),
            ));
        }
        Ok(steps)
    }

    /// The order a report is about: the one decided at minute `order` (working or
    /// cancelled); without `order`, the working entry, else the only cancelled one.
    fn slot(&self, ts: i64, order: Option<i64>, what: &str) -> Result<Slot, AtError> {
        let decided = |pe: &PendingEntry| self.t.ts_min[pe.decided];
        let cancelled = &self.c.cancelled;
        let found = match order {
            None if self.c.entry.is_some() => Some(Slot::Working),
            None if cancelled.len() == 1 => Some(Slot::Cancelled(0)),
            None => None,
            Some(k) if self.c.entry.is_some_and(|pe| decided(&pe) == k) => Some(Slot::Working),
            Some(k) => cancelled
                .iter()
                .position(|c| decided(&c.pe) == k)
                .map(Slot::Cancelled),
        };
        found.ok_or_else(|| {
            let which = order.map_or(String::new(), |k| format!(" decided at {k}"));
            bad(
                ts,
                format!("{what} without a working or cancelled entry order{which}"),
            )
        })
    }

    fn slot_state(&self, s: Slot) -> (PendingEntry, Option<PartialEntry>) {
        match s {
            Slot::Working => (self.c.entry.expect("slot checked"), self.c.partial),
            Slot::Cancelled(i) => (self.c.cancelled[i].pe, self.c.cancelled[i].partial),
        }
    }

    /// An entry fill (whole or partial) of the entry decided at minute `order` (see the
    /// module notes). Returns whether the position is now open (the order's quantity is
    /// filled).
    pub fn external_entry_fill(
        &mut self,
        ts: i64,
        price: f64,
        qty: f64,
        fee: f64,
        maker: bool,
        order: Option<i64>,
    ) -> Result<bool, AtError> {
        let slot = self.slot(ts, order, "entry fill")?;
        let (pe, partial) = self.slot_state(slot);
        if !(price.is_finite() && price > 0.0 && fee.is_finite()) {
            return Err(bad(ts, format!("price {price} / fee {fee} not finite")));
        }
        let steps = self.steps_of(ts, qty)?;
        let mut part = partial.unwrap_or(PartialEntry {
            steps: 0,
            notional: 0.0,
            fee: 0.0,
            fills: 0,
            first_price: price,
            maker: true,
        });
        if part.steps + steps > pe.order.qty_steps {
            return Err(bad(
                ts,
                format!(
                    "fills of {} steps exceed the order's {}",
                    part.steps + steps,
                    pe.order.qty_steps
                ),
            ));
        }
        part.steps += steps;
        part.notional += price * qty;
        part.fee += fee;
        part.fills += 1;
        part.maker &= maker;
        if part.steps < pe.order.qty_steps {
            match slot {
                Slot::Working => self.c.partial = Some(part),
                Slot::Cancelled(i) => self.c.cancelled[i].partial = Some(part),
            }
            return Ok(false);
        }
        self.open_from(slot, ts, part)?;
        Ok(true)
    }

    /// The entry decided at minute `order` ended at `ts` (cancelled, rejected or expired):
    /// the position opens with what filled, or the order is dropped when nothing did.
    pub fn external_entry_end(&mut self, ts: i64, order: Option<i64>) -> Result<(), AtError> {
        let slot = self.slot(ts, order, "order end")?;
        match (slot, self.slot_state(slot).1) {
            (_, Some(part)) => self.open_from(slot, ts, part),
            (Slot::Working, None) => {
                self.c.entry = None;
                self.c.k.cancel_entry();
                Ok(())
            }
            (Slot::Cancelled(i), None) => {
                self.c.cancelled.remove(i);
                Ok(())
            }
        }
    }

    fn open_from(&mut self, slot: Slot, ts: i64, part: PartialEntry) -> Result<(), AtError> {
        let (pe, _) = self.slot_state(slot);
        if let Slot::Cancelled(_) = slot {
            // the kernel dropped it at the cancel: it works again for this fill to open it
            self.c.k.reinstate_entry(pe.order)?;
        }
        let price = if part.fills == 1 {
            part.first_price
        } else {
            part.notional / (part.steps as f64 * self.c.p.qty_step)
        };
        self.book_entry(
            &pe,
            ts,
            price,
            part.steps,
            part.fee,
            part.maker,
            0.0,
            f64::NAN,
        )?;
        match slot {
            Slot::Working => {
                self.c.entry = None;
                self.c.partial = None;
            }
            Slot::Cancelled(i) => {
                self.c.cancelled.remove(i);
            }
        }
        Ok(())
    }

    /// An exit fill (`kind`: stop, TP1, TP2 held on the exchange, or the market exit the
    /// kernel decided). Returns whether the position is now flat.
    pub fn external_exit_fill(
        &mut self,
        kind: ExitKind,
        ts: i64,
        price: f64,
        qty: f64,
        fee: f64,
    ) -> Result<bool, AtError> {
        let pos = *self
            .c
            .k
            .position()
            .ok_or_else(|| bad(ts, "exit fill without an open position".into()))?;
        if !(price.is_finite() && price > 0.0 && fee.is_finite()) {
            return Err(bad(ts, format!("price {price} / fee {fee} not finite")));
        }
        let steps = self.steps_of(ts, qty)?;
        let (reason, dec_ts) = match kind {
            ExitKind::Market => {
                let px = self
                    .c
                    .exit
                    .ok_or_else(|| bad(ts, "market exit fill without a decided exit".into()))?;
                (
                    pos.exit_pending.unwrap_or(Reason::EndOfData),
                    decision_ts(self.t.ts_min[px.decided]),
                )
            }
            ExitKind::Stop if pos.tp1_done => (Reason::BreakevenStop, ts),
            ExitKind::Stop => (Reason::Stop, ts),
            ExitKind::Tp1 => (Reason::Tp1, ts),
            ExitKind::Tp2 => (Reason::Tp2, ts),
        };
        let flat = self.book_exit(kind, ts, price, steps, fee, 0.0, reason, dec_ts)?;
        if flat {
            self.c.exit = None;
        }
        Ok(flat)
    }

    /// Funding settled on the open position (positive = received).
    pub fn external_funding(&mut self, amount: f64) -> Result<(), AtError> {
        if !amount.is_finite() {
            return Err(bad(0, format!("funding amount {amount} not finite")));
        }
        self.c.k.on_funding(amount);
        self.c.acc.funding(amount);
        Ok(())
    }
}
