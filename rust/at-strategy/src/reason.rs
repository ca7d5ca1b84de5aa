//! Reason codes, signal bits and event bits carried by every decision.

use serde::{Deserialize, Serialize};

/// Why the kernel did what it did (stored as `signals_1m.reason_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Reason {
    // holds
    NoSignal = 0,
    NoTrades,
    VaInvalid,
    Cooldown,
    KillSwitchActive,
    OrderWorking,
    InPosition,
    ExitPending,
    Conflict,
    InvalidStop,
    BelowMinimum,
    NoMargin,
    RetestArmed,
    RetestWaiting,
    RetestFailed,
    TimeExtended,
    // entries
    BreakinLong,
    BreakinShort,
    BreakoutLong,
    BreakoutShort,
    RetestLong,
    RetestShort,
    FailbreakLong,
    FailbreakShort,
    RetestFailedLong,
    RetestFailedShort,
    // exits
    Stop,
    BreakevenStop,
    Tp1,
    Tp2,
    BreakoutCloseInside,
    TimeStop,
    TrailExit,
    KillSwitch,
    Flip,
    EndOfData,
    /// The data stopped (a gap longer than `max_gap_minutes`): closed at the last mark
    /// before it, like at the end of the data.
    DataGap,
    /// A setup fired but the live graph does not permit entries (observation before
    /// activation, deactivated, halted): logged, not placed.
    EntryNotPermitted,
}

impl Reason {
    pub const ALL: [Reason; 38] = [
        Reason::NoSignal,
        Reason::NoTrades,
        Reason::VaInvalid,
        Reason::Cooldown,
        Reason::KillSwitchActive,
        Reason::OrderWorking,
        Reason::InPosition,
        Reason::ExitPending,
        Reason::Conflict,
        Reason::InvalidStop,
        Reason::BelowMinimum,
        Reason::NoMargin,
        Reason::RetestArmed,
        Reason::RetestWaiting,
        Reason::RetestFailed,
        Reason::TimeExtended,
        Reason::BreakinLong,
        Reason::BreakinShort,
        Reason::BreakoutLong,
        Reason::BreakoutShort,
        Reason::RetestLong,
        Reason::RetestShort,
        Reason::FailbreakLong,
        Reason::FailbreakShort,
        Reason::RetestFailedLong,
        Reason::RetestFailedShort,
        Reason::Stop,
        Reason::BreakevenStop,
        Reason::Tp1,
        Reason::Tp2,
        Reason::BreakoutCloseInside,
        Reason::TimeStop,
        Reason::TrailExit,
        Reason::KillSwitch,
        Reason::Flip,
        Reason::EndOfData,
        Reason::DataGap,
        Reason::EntryNotPermitted,
    ];

    /// Stable text code (what the stores and reports show).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoSignal => "NO_SIGNAL",
            Reason::NoTrades => "NO_TRADES",
            Reason::VaInvalid => "VA_INVALID",
            Reason::Cooldown => "COOLDOWN",
            Reason::KillSwitchActive => "KILL_SWITCH_ACTIVE",
            Reason::OrderWorking => "ORDER_WORKING",
            Reason::InPosition => "IN_POSITION",
            Reason::ExitPending => "EXIT_PENDING",
            Reason::Conflict => "CONFLICT",
            Reason::InvalidStop => "INVALID_STOP",
            Reason::BelowMinimum => "BELOW_MIN_QTY",
            Reason::NoMargin => "NO_MARGIN",
            Reason::RetestArmed => "RETEST_ARMED",
            Reason::RetestWaiting => "RETEST_WAITING",
            Reason::RetestFailed => "RETEST_FAILED",
            Reason::TimeExtended => "TIME_EXTENDED",
            Reason::BreakinLong => "BREAKIN_LONG",
            Reason::BreakinShort => "BREAKIN_SHORT",
            Reason::BreakoutLong => "BREAKOUT_LONG",
            Reason::BreakoutShort => "BREAKOUT_SHORT",
            Reason::RetestLong => "RETEST_LONG",
            Reason::RetestShort => "RETEST_SHORT",
            Reason::FailbreakLong => "FAILBREAK_LONG",
            Reason::FailbreakShort => "FAILBREAK_SHORT",
            Reason::RetestFailedLong => "RETEST_FAILED_LONG",
            Reason::RetestFailedShort => "RETEST_FAILED_SHORT",
            Reason::Stop => "STOP",
            Reason::BreakevenStop => "BREAKEVEN_STOP",
            Reason::Tp1 => "TP1",
            Reason::Tp2 => "TP2",
            Reason::BreakoutCloseInside => "BREAKOUT_CLOSE_INSIDE",
            Reason::TimeStop => "TIME_STOP",
            Reason::TrailExit => "TRAIL_EXIT",
            Reason::KillSwitch => "KILL_SWITCH",
            Reason::Flip => "FLIP",
            Reason::EndOfData => "END_OF_DATA",
            Reason::DataGap => "DATA_GAP",
            Reason::EntryNotPermitted => "ENTRY_NOT_PERMITTED",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(c: u8) -> Option<Reason> {
        Reason::ALL.get(c as usize).copied()
    }
}

/// Bits of `Decision::signals`: which of the six setups fired at this bar (`signals_1m`).
pub mod sig {
    pub const BREAKIN_LONG: u8 = 1;
    pub const BREAKIN_SHORT: u8 = 2;
    pub const BREAKOUT_LONG: u8 = 4;
    pub const BREAKOUT_SHORT: u8 = 8;
    pub const FAILBREAK_LONG: u8 = 16;
    pub const FAILBREAK_SHORT: u8 = 32;
}

/// Bits of `Decision::events`: risk and lifecycle events worth an alert or a log line.
pub mod event {
    /// Sizing hit `max_leverage` and reduced the position (SPEC §15.2).
    pub const LEVERAGE_CAP_HIT: u16 = 1;
    /// The daily-loss kill switch tripped at this bar (SPEC §9.4).
    pub const KILL_SWITCH_ON: u16 = 2;
    pub const RETEST_ARMED: u16 = 4;
    pub const RETEST_FAILED: u16 = 8;
    /// The time stop was reached while profitable: the position now trails (SPEC §9.2).
    pub const TIME_EXTENDED: u16 = 16;
    /// A new UTC day started at this bar (daily P&L reset).
    pub const DAY_ROLLED: u16 = 32;
    /// A working entry order was cancelled.
    pub const ENTRY_CANCELLED: u16 = 64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.code() as usize, i);
            assert_eq!(Reason::from_code(r.code()), Some(*r));
        }
    }
}
