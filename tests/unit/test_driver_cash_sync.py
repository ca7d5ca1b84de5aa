"""Live sizing from the exchange's account (SPEC §7.4): the driver's cash becomes the
wallet balance, entries are sized from it, and the difference is no P&L (a big
withdrawal must not trip the daily-loss kill switch). Paper mode keeps its own book."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from at_core.backtest.stream import StreamingDriver
from at_core.config import load_settings
from tests.unit.test_driver_permission import _cut, _day
from tests.unit.test_driver_snapshot import DAY0, M

HOUR = 60 * M
TRADY = {"accept_outside_k": 2, "of_entry_min_norm": 0.0, "qimb_entry_min": 0.0}


def _first_entry(wallet: float | None) -> tuple[dict[str, Any], StreamingDriver]:
    """Feed the day with exchange fills (none reported); the first entry order's qty."""
    t, q = _day()
    d = StreamingDriver(load_settings(overrides=TRADY), fills="exchange")
    cut = DAY0 + 3 * HOUR  # before the warm-up ends: no entry yet
    d.push(_cut(t, 0, cut), _cut(q, 0, cut))
    if wallet is not None:
        d.sync_cash(wallet)
    got = d.push(_cut(t, cut, 2**62), _cut(q, cut, 2**62))
    entries = [o["entry"] for o in got["orders"] if o.get("entry")]
    assert entries, "the generated day must enter for this test to mean anything"
    return entries[0], d


def test_entries_are_sized_from_the_wallet() -> None:
    base, _ = _first_entry(None)  # initial_equity 10,000
    double, _ = _first_entry(20_000.0)
    assert double["limit_price"] == base["limit_price"] and double["stop"] == base["stop"]
    # risk-based size doubles with the account (floored to the qty step; or both capped)
    step = load_settings().qty_step
    assert abs(float(double["qty"]) - 2 * float(base["qty"])) <= 2 * step, (base, double)
    assert float(double["qty"]) > float(base["qty"])


def test_the_adjustment_is_not_a_loss_for_the_kill_switch() -> None:
    t, q = _day()
    d = StreamingDriver(load_settings(overrides={"max_daily_loss_pct": 0.03}), fills="exchange")
    d.push(_cut(t, 0, DAY0 + HOUR), _cut(q, 0, DAY0 + HOUR))
    eq0 = float(d.state()["equity"])
    assert d.sync_cash(3_000.0) == pytest.approx(3_000.0 - eq0)  # flat: equity = cash
    out = d.push(_cut(t, DAY0 + HOUR, DAY0 + 3 * HOUR), _cut(q, DAY0 + HOUR, DAY0 + 3 * HOUR))
    assert not d.state()["kill"], "a 70 % withdrawal counted as a loss"
    assert float(out["equity"][-1]) == pytest.approx(3_000.0, rel=0.05)


def test_before_the_first_minute_the_wallet_is_kept_then_applied() -> None:
    t, q = _day()
    d = StreamingDriver(load_settings(), fills="exchange")
    assert d.sync_cash(25_000.0) == 0.0
    out = d.push(_cut(t, 0, DAY0 + HOUR), _cut(q, 0, DAY0 + HOUR))
    assert np.allclose(out["equity"], 25_000.0)


def test_paper_fills_refuse_a_wallet_and_bad_values_are_named() -> None:
    t, q = _day()
    paper = StreamingDriver(load_settings())
    paper.push(_cut(t, 0, DAY0 + HOUR), _cut(q, 0, DAY0 + HOUR))
    with pytest.raises(Exception, match="live"):
        paper.sync_cash(20_000.0)
    live = StreamingDriver(load_settings(), fills="exchange")
    with pytest.raises(Exception, match="finite and positive"):
        live.sync_cash(float("nan"))
