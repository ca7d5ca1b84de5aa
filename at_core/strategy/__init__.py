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

#: Settings keys the kernel and the fill model read (same names on both sides), declared
#: once in Rust (``rust/at-strategy/src/param_keys.rs``).
KERNEL_KEYS: tuple[str, ...] = tuple(_core.strategy_param_keys())

#: Fields of one kernel minute (``MinuteInput``), declared once in Rust
#: (``with_bar_fields!`` in ``rust/at-strategy/src/input.rs``); ``StrategyKernel.on_minute``
#: takes exactly these keys.
MINUTE_FIELDS: tuple[str, ...] = tuple(_core.strategy_minute_fields())

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
