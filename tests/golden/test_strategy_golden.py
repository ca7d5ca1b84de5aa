"""SPEC §20.1 (sizing), §20.2 (partial exit) and §20.5 (break-in signal) through the
live-path kernel class. Expected numbers are the spec's, worked by hand; tick size 1 $ as
the examples use ("$49,820 - 2 ticks = $49,818")."""

from __future__ import annotations

from typing import Any

import pytest

from at_core.config import load_settings
from at_core.strategy import StrategyKernel, params_dict

T0 = 1_704_070_800_000  # 2024-01-01 01:00 UTC


@pytest.fixture
def params() -> dict[str, Any]:
    s = load_settings(
        overrides={"tick_size": 1.0, "use_limit_for_entry": False, "cooldown_minutes": 0}
    )
    return params_dict(s)


def minute(**kw: Any) -> dict[str, Any]:
    m = {
        "ts_min": T0,
        "open": 49_850.0,
        "high": 49_920.0,
        "low": 49_820.0,
        "close": 49_950.0,
        "volume": 10.0,
        # §6.3 input: a trade printed at VAL; the nearest trade to VAH is the high
        "vah_trade_dist": 180.0,
        "val_trade_dist": 0.0,
        "mid_close": 49_950.0,
        "spread_avg": 1.0,
        "poc": 50_000.0,
        "vah": 50_100.0,
        "val": 49_900.0,
        "va_valid": True,
        "of_1m": 0.5,
        "of_norm_1m": 0.05,
        "qimb_close": 0.15,
        "qimb_ema": 0.15,
        "ambiguous_frac": 0.20,
    }
    m.update(kw)
    return m


def test_20_5_breakin_long(params: dict[str, Any]) -> None:
    k = StrategyKernel(params)
    d = k.on_minute(minute())
    assert d["signals"]["breakin_long"] is True
    assert d["action"] == "ENTER_LONG"
    assert d["reason"] == "BREAKIN_LONG"
    e = d["entry"]
    assert e["ref_price"] == 49_950.0
    assert e["stop"] == 49_818.0
    assert (e["tp1"], e["tp2"]) == (50_000.0, 50_100.0)
    # "(or limit at $49,900)": the boundary limit mode.
    k = StrategyKernel({**params, "use_limit_for_entry": True, "limit_price_mode": "boundary"})
    assert k.on_minute(minute())["entry"]["limit_price"] == 49_900.0


def test_breakin_needs_a_trade_near_val(params: dict[str, Any]) -> None:
    """SPEC §6.3: the nearest trade must lie within 1 x spread (1 $) of VAL; an unknown
    distance (None = NaN) proves nothing. The failed-breakout reading (C) remains."""
    for m in (minute(val_trade_dist=1.0), minute(val_trade_dist=0.5)):
        assert StrategyKernel(params).on_minute(m)["signals"]["breakin_long"] is True
    far = minute(val_trade_dist=1.5)
    unknown = minute(val_trade_dist=None)
    for m in (far, unknown):
        d = StrategyKernel(params).on_minute(m)
        assert d["signals"]["breakin_long"] is False
        assert d["reason"] == "FAILBREAK_LONG"


def test_20_1_sizing_and_20_2_partial_exit(params: dict[str, Any]) -> None:
    # Break-in long closing at 50,000 with the trigger low at 49,502: stop 49,500
    # (1 % below entry), TP1 50,500 (POC), TP2 51,000 (VAH).
    k = StrategyKernel(params)
    d = k.on_minute(
        minute(low=49_502.0, close=50_000.0, mid_close=50_000.0, poc=50_500.0, vah=51_000.0)
    )
    e = d["entry"]
    assert (e["ref_price"], e["stop"]) == (50_000.0, 49_500.0)
    assert e["qty"] == pytest.approx(0.4, abs=1e-12)  # $200 / $500
    assert e["qty"] * 50_000 / 10_000 == pytest.approx(2.0)  # 2x < 10x: approved
    assert "LEVERAGE_CAP_HIT" not in d["events"]
    assert e["tp1_qty"] == pytest.approx(0.12, abs=1e-12)  # round(0.4 * 0.30)
    k.on_entry_fill(T0 + 60_100, 50_000.0, 0.0)
    assert k.mode == "LONG"
    assert k.on_exit_fill("tp1", T0 + 120_000, 50_500.0, 0.12, 0.0) is False
    pos = k.position()
    assert pos is not None
    assert pos["qty"] == pytest.approx(0.28, abs=1e-12)
    assert pos["stop"] == 50_000.0  # breakeven
    assert k.on_exit_fill("tp2", T0 + 180_000, 51_000.0, 0.28, 0.0) is True
    assert k.mode == "FLAT"
    assert k.cash == pytest.approx(10_000 + 0.12 * 500 + 0.28 * 1_000)
