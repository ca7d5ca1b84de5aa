//! What a backtest records: trades, per-minute decisions, the full result.

use at_strategy::{Action, Decision, Reason, Setup};

use crate::metrics::Metrics;

/// One closed position (a flip yields two).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TradeRecord {
    pub side: i8,
    pub setup: Setup,
    pub entry_reason: Reason,
    /// Close of the minute whose decision opened the trade (`ts_min + 59_999`).
    pub decision_ts_ms: i64,
    pub fill_ts_ms: i64,
    pub entry_price: f64,
    /// Entry filled as a resting limit (maker) rather than at the quote (taker).
    pub entry_maker: bool,
    pub qty: f64,
    pub stop_initial: f64,
    pub tp1: f64,
    pub tp2: f64,
    pub tp1_ts_ms: i64,
    pub tp1_price: f64,
    pub tp1_qty: f64,
    /// Decision time of a market exit (minute close), or the trigger time of a stop/target.
    pub exit_decision_ts_ms: i64,
    pub exit_ts_ms: i64,
    pub exit_price: f64,
    pub exit_reason: Reason,
    pub gross_pnl: f64,
    pub fees: f64,
    pub funding: f64,
    /// Cost of the slippage ticks of every market fill of the trade.
    pub slippage_cost: f64,
    pub net_pnl: f64,
    /// Quoted spread at the entry fill quote (NaN for resting-limit fills).
    pub entry_spread: f64,
    pub ambiguous_frac_at_entry: f64,
    pub leverage_cap_hit: bool,
}

impl TradeRecord {
    /// The fields in declaration order: the column names of every trade table (the
    /// bindings' `trades` dict, the live graph's `live_trades`), declared once here.
    pub const COLUMNS: [&'static str; 26] = [
        "side",
        "setup",
        "entry_reason",
        "decision_ts_ms",
        "fill_ts_ms",
        "entry_price",
        "entry_maker",
        "qty",
        "stop_initial",
        "tp1",
        "tp2",
        "tp1_ts_ms",
        "tp1_price",
        "tp1_qty",
        "exit_decision_ts_ms",
        "exit_ts_ms",
        "exit_price",
        "exit_reason",
        "gross_pnl",
        "fees",
        "funding",
        "slippage_cost",
        "net_pnl",
        "entry_spread",
        "ambiguous_frac_at_entry",
        "leverage_cap_hit",
    ];
}

/// The compact per-minute record of a decision kept by a full backtest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionRow {
    pub ts_min: i64,
    pub action: Action,
    pub reason: Reason,
    pub signals: u8,
    pub events: u16,
    pub heat: f64,
}

/// The per-minute decisions of a full backtest as columns (what the bindings hand to
/// NumPy as they are): `action` holds `Action as u8`, `reason` holds `Reason::code()`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Decisions {
    pub ts_min: Vec<i64>,
    pub action: Vec<u8>,
    pub reason: Vec<u8>,
    pub signals: Vec<u8>,
    pub events: Vec<u16>,
    pub heat: Vec<f64>,
}

fn action_of(code: u8) -> Action {
    [
        Action::Hold,
        Action::EnterLong,
        Action::EnterShort,
        Action::Exit,
    ][code as usize]
}

impl Decisions {
    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            ts_min: Vec::with_capacity(n),
            action: Vec::with_capacity(n),
            reason: Vec::with_capacity(n),
            signals: Vec::with_capacity(n),
            events: Vec::with_capacity(n),
            heat: Vec::with_capacity(n),
        }
    }

    pub fn len(&self) -> usize {
        self.ts_min.len()
    }

    /// Drop the first `k` rows (a streaming driver's compaction).
    pub(super) fn drop_front(&mut self, k: usize) {
        let k = k.min(self.len());
        self.ts_min.drain(..k);
        self.action.drain(..k);
        self.reason.drain(..k);
        self.signals.drain(..k);
        self.events.drain(..k);
        self.heat.drain(..k);
    }

    pub fn is_empty(&self) -> bool {
        self.ts_min.is_empty()
    }

    /// Row `i` as a record.
    pub fn row(&self, i: usize) -> DecisionRow {
        DecisionRow {
            ts_min: self.ts_min[i],
            action: action_of(self.action[i]),
            reason: Reason::from_code(self.reason[i]).expect("stored reason code"),
            signals: self.signals[i],
            events: self.events[i],
            heat: self.heat[i],
        }
    }

    #[inline]
    pub(super) fn push(&mut self, d: &Decision) {
        self.ts_min.push(d.ts_min);
        self.action.push(d.action as u8);
        self.reason.push(d.reason.code());
        self.signals.push(d.signals);
        self.events.push(d.events);
        self.heat.push(d.heat);
    }

    /// Idle rows `ts` (HOLD, no signal or event, heat 0) whose reasons are already there.
    pub(super) fn extend_idle(&mut self, ts: &[i64]) {
        let n = self.ts_min.len() + ts.len();
        self.ts_min.extend_from_slice(ts);
        self.action.resize(n, Action::Hold as u8);
        self.signals.resize(n, 0);
        self.events.resize(n, 0);
        self.heat.resize(n, 0.0);
        debug_assert_eq!(self.reason.len(), n);
    }
}

/// Full output of one backtest.
#[derive(Debug, Clone)]
pub struct BacktestResult {
    pub metrics: Metrics,
    /// One mark-to-market return per UTC day of the table (see `daily_days`), kept on
    /// every path and output: the research statistics need them for every combination.
    pub daily_returns: Vec<f64>,
    pub trades: Vec<TradeRecord>,
    /// Mark-to-market equity at every minute close.
    pub equity: Vec<f64>,
    /// Per-minute decisions (action, reason, signals) for reports and `signals_1m`-like output.
    pub decisions: Decisions,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `COLUMNS` is the struct's fields, in order (serde names them as declared).
    #[test]
    fn trade_columns_are_the_fields() {
        let t = TradeRecord {
            side: 1,
            setup: Setup::BreakIn,
            entry_reason: Reason::NoSignal,
            decision_ts_ms: 0,
            fill_ts_ms: 0,
            entry_price: 0.0,
            entry_maker: false,
            qty: 0.0,
            stop_initial: 0.0,
            tp1: 0.0,
            tp2: 0.0,
            tp1_ts_ms: 0,
            tp1_price: 0.0,
            tp1_qty: 0.0,
            exit_decision_ts_ms: 0,
            exit_ts_ms: 0,
            exit_price: 0.0,
            exit_reason: Reason::NoSignal,
            gross_pnl: 0.0,
            fees: 0.0,
            funding: 0.0,
            slippage_cost: 0.0,
            net_pnl: 0.0,
            entry_spread: 0.0,
            ambiguous_frac_at_entry: 0.0,
            leverage_cap_hit: false,
        };
        let v = serde_json::to_value(&t).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut want = TradeRecord::COLUMNS.to_vec();
        let mut got = keys.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
    }
}
