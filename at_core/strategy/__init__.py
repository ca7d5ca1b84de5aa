"""Thin Python face of the Rust strategy kernel (``rust/at-strategy``).

There is exactly one implementation of the trading rules (SPEC §6–§9): the Rust kernel.
This module only turns :class:`~at_core.config.Settings` into the kernel's parameter dict
and re-exports the live-path class. The pitfall it guards against is a second, drifting
copy of the rules in Python: nothing here decides anything.
"""

from __future__ import annotations

from typing import Any

from at_core import _core
from at_core.config import Settings

#: Settings keys the kernel and the fill model read (same names on both sides).
KERNEL_KEYS: tuple[str, ...] = (
    "tick_size",
    "qty_step",
    "min_qty",
    "min_notional",
    "accept_outside_k",
    "crossing_spread_mult",
    "pullback_spread_mult",
    "ambiguous_trade_frac_max",
    "use_qimb",
    "qimb_signal_source",
    "qimb_entry_min",
    "qimb_breakout_min",
    "qimb_fail_min",
    "of_threshold_mode",
    "of_entry_min",
    "of_entry_min_norm",
    "of_breakout_min",
    "of_breakout_min_norm",
    "of_fail_min",
    "of_fail_min_norm",
    "risk_pct",
    "max_leverage",
    "tp1_pct",
    "move_stop_to_breakeven_after_tp1",
    "max_hold_minutes",
    "extend_if_profitable",
    "cooldown_minutes",
    "stop_buffer_ticks",
    "max_daily_loss_pct",
    "enable_retest_mode",
    "enable_flip_on_signal",
    "use_limit_for_entry",
    "use_market_for_exit",
    "limit_price_mode",
    "limit_order_timeout_minutes",
    "taker_fee_bps",
    "maker_fee_bps",
    "slippage_ticks_entry",
    "slippage_ticks_exit",
    "funding_rate_8h_bps",
    "stop_fill_mode",
    "initial_equity",
)

#: Fields of one kernel minute (``MinuteInput``); see ``at_core/_core.pyi``.
MINUTE_FIELDS: tuple[str, ...] = (
    "ts_min",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "max_trade_gap",
    "mid_close",
    "spread_avg",
    "poc",
    "vah",
    "val",
    "va_valid",
    "of_1m",
    "of_norm_1m",
    "qimb_close",
    "qimb_ema",
    "ambiguous_frac",
)

StrategyKernel = _core.StrategyKernel


def params_dict(settings: Settings, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The kernel parameter dict of ``settings`` (plus raw ``overrides``, e.g. a grid point)."""
    d = {k: getattr(settings, k) for k in KERNEL_KEYS}
    if overrides:
        unknown = sorted(set(overrides) - set(KERNEL_KEYS))
        if unknown:
            from at_core.errors import ConfigError

            raise ConfigError(f"not a strategy parameter: {', '.join(unknown)}")
        d.update(overrides)
    return d


def new_kernel(settings: Settings) -> Any:
    """A fresh live-path kernel for ``settings``."""
    return _core.StrategyKernel(params_dict(settings))


def reason_codes() -> list[str]:
    """Reason code names in code order (``decisions['reason']`` indexes into it)."""
    return list(_core.strategy_reason_codes())
