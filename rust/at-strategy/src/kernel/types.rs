//! The kernel's records: setups, modes, actions, orders, decisions, position and state.

use serde::{Deserialize, Serialize};

use crate::reason::Reason;

/// Which setup an entry came from (`positions.strategy_tag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Setup {
    BreakIn,
    Breakout,
    FailedBreakout,
}

impl Setup {
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::BreakIn => "breakin",
            Setup::Breakout => "breakout",
            Setup::FailedBreakout => "failbreak",
        }
    }
}

/// The state of SPEC §6.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    Flat,
    Long,
    Short,
    PendingRetest,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Flat => "FLAT",
            Mode::Long => "LONG",
            Mode::Short => "SHORT",
            Mode::PendingRetest => "PENDING_RETEST",
        }
    }
}

/// Whether the kernel may open positions: the live graph's gate (SPEC §11.4, §16.1).
///
/// Signals are computed and logged whatever the permission; only placing an entry (a flip
/// included) depends on it. `CloseOnly` (observation before activation, a deactivated
/// graph) and `Blocked` (a halt: reconciliation mismatch, unexplained report) both refuse
/// new entries and cancel a working one; exits are decided as always (in `Blocked` the
/// executor sends nothing, the exchange-held stop protects the position). A backtest
/// never changes it from `Allowed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Permission {
    #[default]
    Allowed,
    CloseOnly,
    Blocked,
}

impl Permission {
    pub const ALL: [Permission; 3] = [
        Permission::Allowed,
        Permission::CloseOnly,
        Permission::Blocked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Allowed => "allowed",
            Permission::CloseOnly => "close_only",
            Permission::Blocked => "blocked",
        }
    }

    pub fn parse(s: &str) -> Result<Self, at_types::AtError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| at_types::AtError::InvalidConfig {
                key: "permission".into(),
                message: format!("`{s}` is not one of allowed, close_only, blocked"),
            })
    }
}

/// What the decision asks for (`signals_1m.chosen_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum Action {
    Hold,
    EnterLong,
    EnterShort,
    Exit,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Hold => "HOLD",
            Action::EnterLong => "ENTER_LONG",
            Action::EnterShort => "ENTER_SHORT",
            Action::Exit => "EXIT",
        }
    }
}

/// An entry order decided at a minute close.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EntryOrder {
    /// +1 long, -1 short.
    pub side: i8,
    pub setup: Setup,
    pub reason: Reason,
    pub qty_steps: i64,
    /// TP1 quantity in steps (0 = no partial).
    pub tp1_steps: i64,
    /// Limit price, or None for a market order.
    pub limit_price: Option<f64>,
    /// Price the size was computed from (the limit price, or the decision close).
    pub ref_price: f64,
    pub stop: f64,
    pub tp1: Option<f64>,
    pub tp2: Option<f64>,
    /// Breakouts: exit on a close at/inside this level (the locked VAH/VAL).
    pub close_inside_level: Option<f64>,
    /// Minute (start) whose close made the decision.
    pub decision_ts_min: i64,
}

/// A market exit of the whole remaining position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExitOrder {
    pub reason: Reason,
    pub qty_steps: i64,
}

/// The kernel's answer for one minute.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub ts_min: i64,
    pub action: Action,
    pub reason: Reason,
    /// `sig::*` bits of the setups that fired at this bar (before risk filters).
    pub signals: u8,
    /// `event::*` bits.
    pub events: u16,
    pub exit: Option<ExitOrder>,
    pub entry: Option<EntryOrder>,
    /// A working entry order must be cancelled.
    pub cancel_entry: bool,
    /// Mark-to-market equity at this close, and heat (SPEC §9.5) after the decision.
    pub equity: f64,
    pub heat: f64,
}

impl Decision {
    /// A HOLD with nothing to do.
    pub fn hold(ts_min: i64) -> Self {
        Decision {
            ts_min,
            action: Action::Hold,
            reason: Reason::NoSignal,
            signals: 0,
            events: 0,
            exit: None,
            entry: None,
            cancel_entry: false,
            equity: 0.0,
            heat: 0.0,
        }
    }
}

/// How an exit fill came about (reported by the executor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitKind {
    Stop,
    Tp1,
    Tp2,
    /// The market exit the kernel asked for (reason in the pending exit).
    Market,
}

impl ExitKind {
    /// From its name in reports and bindings: `stop|tp1|tp2|market`.
    pub fn parse(s: &str) -> Result<Self, at_types::AtError> {
        Ok(match s {
            "stop" => Self::Stop,
            "tp1" => Self::Tp1,
            "tp2" => Self::Tp2,
            "market" => Self::Market,
            _ => {
                return Err(at_types::AtError::InvalidInput {
                    location: "exit fill `kind`".into(),
                    message: format!("expected stop|tp1|tp2|market, got `{s}`"),
                })
            }
        })
    }
}

/// One side's acceptance sequence (SPEC §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeqTrack {
    pub count: u32,
    /// Boundary locked at sequence start; None = no sequence.
    pub locked: Option<f64>,
    /// Poke extreme since the sequence started (max high above / min low below).
    pub extreme: f64,
    /// The sequence already produced its breakout signal.
    pub fired: bool,
}

impl SeqTrack {
    pub const NONE: SeqTrack = SeqTrack {
        count: 0,
        locked: None,
        extreme: 0.0,
        fired: false,
    };
}

/// PENDING_RETEST details.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Retest {
    pub side: i8,
    /// Locked boundary of the accepted sequence.
    pub level: f64,
    /// Poke extreme of the breakout (stop of a failed-breakout reversal).
    pub poke_extreme: f64,
    /// Pullback extreme since arming (stop of the retest entry).
    pub pullback_extreme: f64,
    pub armed_ts_min: i64,
}

/// The open position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub side: i8,
    pub setup: Setup,
    pub entry_reason: Reason,
    pub qty_steps: i64,
    pub initial_qty_steps: i64,
    pub tp1_steps: i64,
    pub entry_price: f64,
    pub entry_fee: f64,
    pub stop: f64,
    pub tp1: Option<f64>,
    pub tp2: Option<f64>,
    pub tp1_done: bool,
    pub close_inside_level: Option<f64>,
    /// Close of the fill minute: the time stop counts from here (SPEC §9.2).
    pub timer_start_ms: i64,
    pub open_ts_ms: i64,
    pub extended: bool,
    pub funding: f64,
    pub realized: f64,
    pub fees: f64,
    /// A market exit was decided and not yet filled.
    pub exit_pending: Option<Reason>,
}

/// The fields of the position the per-minute management reads (copying the whole
/// `Position` every minute shows up in profiles).
#[derive(Clone, Copy)]
pub(crate) struct PosView {
    pub(crate) exit_pending: Option<Reason>,
    pub(crate) side: i8,
    pub(crate) close_inside_level: Option<f64>,
    pub(crate) timer_start_ms: i64,
    pub(crate) qty_steps: i64,
    pub(crate) entry_price: f64,
    pub(crate) realized: f64,
    pub(crate) fees: f64,
    pub(crate) extended: bool,
}

impl PosView {
    #[inline]
    pub(crate) fn of(p: &Position) -> Self {
        Self {
            exit_pending: p.exit_pending,
            side: p.side,
            close_inside_level: p.close_inside_level,
            timer_start_ms: p.timer_start_ms,
            qty_steps: p.qty_steps,
            entry_price: p.entry_price,
            realized: p.realized,
            fees: p.fees,
            extended: p.extended,
        }
    }
}

/// Everything the kernel remembers: export it, restore it, continue identically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelState {
    pub above: SeqTrack,
    pub below: SeqTrack,
    pub retest: Option<Retest>,
    pub working: Option<EntryOrder>,
    pub position: Option<Position>,
    /// Initial equity + realised P&L − fees + funding.
    pub cash: f64,
    pub day: i64,
    /// End (exclusive) of the current UTC day, ms.
    pub day_end_ms: i64,
    pub day_start_equity: f64,
    pub kill: bool,
    pub last_mtm: f64,
    pub last_price: f64,
    pub last_exit_min: Option<i64>,
    pub minutes_seen: u64,
    pub last_ts_min: Option<i64>,
    /// May the kernel open positions (the live graph's gate; `Allowed` in backtests).
    pub permission: Permission,
}
