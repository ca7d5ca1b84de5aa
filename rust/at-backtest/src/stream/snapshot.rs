//! Snapshot and restore of the whole streaming driver: feature engine (open minute
//! included), minute table builder, kernel, execution core (working orders, open trade,
//! partial external fills, records, metrics).
//!
//! A restored driver continues bit for bit as the one that was snapshotted would have
//! (tested at many split points, mid-minute, with a working entry and an open position).
//! Domain pitfalls:
//! * Everything is kept, not only "the book": the minute table's earlier rows are read
//!   again (a pending order fills against the reference quote of the row that decided
//!   it; a resting limit counts its window in rows), the open minute's trades in tick-path
//!   mode, the metrics accumulator (drawdown peak, daily returns). A lighter snapshot
//!   would continue differently, silently.
//! * Settings are part of the state: the rolling profile was built with the snapshot's
//!   window and bin width, the book sized with its parameters. Restoring with other
//!   configs, parameters, funding history or fill mode is refused, naming the key; a
//!   change of settings means a fresh driver and a new warm-up.
//! * A halted driver is not snapshotted: it has already missed data, and a restored copy
//!   would trade on.

use at_features::{Stage1Config, Stage2Config};
use at_strategy::Params;
use at_types::{snapshot, AtError};

use super::{FillMode, StreamingDriver};

const MAGIC: &[u8; 8] = b"ATDRIVER";
/// Format version of a driver snapshot. The driver's own part is the high half (bump it
/// when any type of at-backtest or at-strategy inside the driver changes its serialised
/// layout); the low half is the feature engine's version, so a change there changes this.
pub const SNAPSHOT_VERSION: u32 = (5 << 16) | at_features::engine::SNAPSHOT_VERSION;

fn inconsistent(message: String) -> AtError {
    AtError::InvalidInput {
        location: "streaming driver snapshot".into(),
        message: format!("inconsistent state: {message}"),
    }
}

impl StreamingDriver {
    /// A bit-exact image of the driver (see the module doc), behind a header with a magic,
    /// the format version and a checksum. Refused for a halted driver.
    pub fn snapshot(&self) -> Result<Vec<u8>, AtError> {
        if let Some(why) = &self.halted {
            return Err(AtError::InvalidInput {
                location: "streaming driver snapshot".into(),
                message: format!("the driver is halted ({why}); a snapshot would resume it"),
            });
        }
        snapshot::seal(MAGIC, SNAPSHOT_VERSION, "streaming driver", self)
    }

    /// The driver of a [`Self::snapshot`], continuing where it stopped. The arguments are
    /// those of [`Self::with_mode`] and must equal the ones the snapshot was taken with
    /// (`InvalidConfig` naming the first differing key otherwise); damaged, truncated or
    /// foreign bytes are refused with `InvalidInput`.
    pub fn restore(
        bytes: &[u8],
        c1: Stage1Config,
        c2: Stage2Config,
        p: Params,
        funding: Option<(Vec<i64>, Vec<f64>)>,
        mode: FillMode,
    ) -> Result<Self, AtError> {
        let mut d: Self = snapshot::open(MAGIC, SNAPSHOT_VERSION, "streaming driver", bytes)?;
        if d.mode != mode {
            return Err(AtError::InvalidConfig {
                key: "fills".into(),
                message: format!(
                    "the snapshot was taken with {:?} fills, the restore asks for {mode:?}",
                    d.mode
                ),
            });
        }
        d.fe.adopt(&c1, &c2)?;
        snapshot::check_same("params", &d.p, &p)?;
        let had = d
            .has_funding
            .then(|| (d.funding_ts.clone(), d.funding_rate.clone()));
        snapshot::check_same("funding", &had, &funding)?;
        d.check_consistent()?;
        Ok(d)
    }

    /// What the engine indexes without checking (the bytes passed the checksum, so this
    /// guards against a writer bug, not against noise): every column of the table holds
    /// one value per row, the core exists once a row does.
    fn check_consistent(&self) -> Result<(), AtError> {
        let t = &self.b.table;
        let n = t.ts_min.len();
        let lens = [
            t.open.len(),
            t.high.len(),
            t.low.len(),
            t.close.len(),
            t.volume.len(),
            t.vah_trade_dist.len(),
            t.val_trade_dist.len(),
            t.mid_close.len(),
            t.spread_avg.len(),
            t.poc.len(),
            t.vah.len(),
            t.val.len(),
            t.va_valid.len(),
            t.of_1m.len(),
            t.of_norm_1m.len(),
            t.qimb_close.len(),
            t.qimb_ema.len(),
            t.ambiguous_frac.len(),
            t.next_quote_ts.len(),
            t.next_bid.len(),
            t.next_ask.len(),
            t.low_ts.len(),
            t.high_ts.len(),
        ];
        if lens.iter().any(|&l| l != n) {
            return Err(inconsistent(format!(
                "table columns of lengths {lens:?} for {n} rows"
            )));
        }
        if self.tick_path && (t.tick_start.len() != n + 1 || t.tick_ts.len() != t.tick_price.len())
        {
            return Err(inconsistent(
                "tick path columns do not match the rows".into(),
            ));
        }
        if self.core.is_some() != (n > 0) {
            return Err(inconsistent(format!(
                "{n} rows but {} execution core",
                if self.core.is_some() { "an" } else { "no" }
            )));
        }
        if self
            .core
            .as_ref()
            .is_some_and(|c| c.external_fills() != (self.mode == FillMode::External))
        {
            return Err(inconsistent(
                "fill mode of the core differs from the driver's".into(),
            ));
        }
        Ok(())
    }
}
