"""What reaches the strategy kernel is declared once, in Rust, and nothing is defaulted
silently: an unknown or misnamed parameter key is an error naming it (issue 9, defect 4)."""

from __future__ import annotations

import pytest

from at_core import _core
from at_core.config import load_settings
from at_core.errors import CoreError
from at_core.strategy import KERNEL_KEYS, params_dict


def test_kernel_keys_come_from_rust() -> None:
    assert list(KERNEL_KEYS) == list(_core.strategy_param_keys())
    assert {"risk_pct", "qimb_signal_source", "stop_fill_mode"} <= set(KERNEL_KEYS)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("spread_avg_60m", 1.0, "spread_avg_60m.*not a strategy"),
        ("risk_pcnt", 0.01, "risk_pcnt"),
        ("stop_fill_mode", "best_case", "stop_fill_mode.*worst_case tick_path"),
        ("cooldown_minutes", True, "cooldown_minutes"),
        ("use_qimb", 1, "use_qimb.*true or false"),
        ("risk_pct", "2%", "risk_pct.*number"),
    ],
)
def test_bad_parameter_keys_and_values_are_named(key: str, value: object, match: str) -> None:
    p = params_dict(load_settings())
    p[key] = value
    with pytest.raises(CoreError, match=match):
        _core.StrategyKernel(p)


def test_every_key_round_trips_into_the_kernel() -> None:
    p = params_dict(load_settings(overrides={"risk_pct": 0.013, "qimb_signal_source": "ema"}))
    import json

    got = json.loads(_core.strategy_params_json(p))
    assert got["risk_pct"] == 0.013
    assert got["qimb_source"] == "Ema"
