"""The live graph's entry permission, in the kernel (one implementation, no Python gate).

Observation (``close_only``) computes and logs the same signals as an allowed run but
places nothing (reason ``ENTRY_NOT_PERMITTED``); allowing entries part-way gives trades
only after that point; a refusal of an unknown permission names it.
"""

from __future__ import annotations

import numpy as np
import pytest

from at_core import _core
from at_core.backtest.stream import StreamingDriver
from at_core.config import load_settings
from at_core.errors import ConfigError, CoreError
from tests.unit.test_driver_snapshot import DAY0, M


def _day() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    b = _core.SynthGenerator(7, DAY0).next_day()
    t = {
        "ts_ms": b["trade_ts_ms"], "seq": b["trade_seq"], "price": b["trade_price"],
        "size": b["trade_size"], "exchange_side": b["trade_side"].astype(np.int8),
    }  # fmt: skip
    q = {k: b[k] for k in ("bid_px", "bid_sz", "ask_px", "ask_sz")}
    q["ts_ms"], q["seq"] = b["quote_ts_ms"], b["quote_seq"]
    return t, q


def _cut(a: dict[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
    sel = (a["ts_ms"] >= lo) & (a["ts_ms"] < hi)
    return {k: v[sel] for k, v in a.items()}


def _run(permissions: list[tuple[int, str]]) -> tuple[dict[str, np.ndarray], dict]:
    """Feed the day; ``permissions``: (from ms, permission) set between slices."""
    t, q = _day()
    d = StreamingDriver(load_settings(overrides={"max_daily_loss_pct": 0.0}))
    edges = [0, *[ms for ms, _ in permissions[1:]], 2**62]
    parts = []
    for (_, perm), lo, hi in zip(permissions, edges[:-1], edges[1:], strict=True):
        d.set_permission(perm)
        parts.append(d.push(_cut(t, lo, hi), _cut(q, lo, hi)))
    cols = {
        k: np.concatenate([p[k] for p in parts]) for k in ("ts_min", "action", "reason", "signals")
    }
    return cols, d.state()


def test_observation_logs_the_same_signals_and_places_nothing() -> None:
    allowed, st_a = _run([(0, "allowed")])
    watched, st_w = _run([(0, "close_only")])
    assert st_a["trades"] > 0, "the generated day must trade for this test to mean anything"
    np.testing.assert_array_equal(allowed["ts_min"], watched["ts_min"])
    reasons = list(_core.strategy_reason_codes())
    # every minute an allowed run entered, the observing one logged the setup, not an entry
    entered = np.isin(allowed["action"], [1, 2])
    assert entered.sum() > 0
    first = int(np.argmax(entered))
    assert allowed["signals"][first] == watched["signals"][first]
    assert reasons[watched["reason"][first]] == "ENTRY_NOT_PERMITTED"
    assert not np.isin(watched["action"], [1, 2]).any()
    assert st_w["trades"] == 0 and st_w["position"] is None and st_w["permission"] == "close_only"


def test_activation_part_way_trades_only_after_it() -> None:
    half = DAY0 + 12 * 60 * M
    cols, st = _run([(0, "close_only"), (half, "allowed")])
    names = list(_core.strategy_action_names())
    assert names == ["HOLD", "ENTER_LONG", "ENTER_SHORT", "EXIT"]
    entries = cols["ts_min"][np.isin(cols["action"], [1, 2])]
    assert len(entries) > 0 and entries.min() >= half - M
    assert st["permission"] == "allowed"


def test_unknown_permission_is_refused() -> None:
    d = StreamingDriver(load_settings())
    with pytest.raises((ConfigError, CoreError), match="permission"):
        d.set_permission("maybe")
    assert next(iter(_core.strategy_signal_names())) == "breakin_long"
