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


def _minute() -> dict[str, object]:
    """A valid kernel minute with every field (the §20.5 break-in bar)."""
    from at_core.strategy import MINUTE_FIELDS

    m: dict[str, object] = dict.fromkeys(MINUTE_FIELDS, 0.0)
    m.update(
        ts_min=1_704_067_200_000,
        open=49_850.0,
        high=49_920.0,
        low=49_820.0,
        close=49_950.0,
        volume=10.0,
        mid_close=49_950.0,
        spread_avg=1.0,
        poc=50_000.0,
        vah=50_100.0,
        val=49_900.0,
        va_valid=True,
        of_1m=0.5,
        of_norm_1m=0.05,
        qimb_close=0.15,
        qimb_ema=0.1,
        ambiguous_frac=0.2,
    )
    return m


def test_minute_fields_come_from_rust() -> None:
    from at_core.strategy import MINUTE_FIELDS

    assert list(MINUTE_FIELDS) == list(_core.strategy_minute_fields())
    k = _core.StrategyKernel(params_dict(load_settings()))
    assert k.on_minute(_minute())["ts_min"] == 1_704_067_200_000


@pytest.mark.parametrize(
    ("rename", "match"),
    [
        # what the feature engine calls them: misnamed for the kernel, refused
        (("spread_avg", "spread_avg_60m"), "spread_avg_60m.*not a kernel input"),
        (("qimb_ema", "qimb_ema_60s"), "qimb_ema_60s"),
        (("ambiguous_frac", "ambiguous_trade_frac_1m"), "ambiguous_trade_frac_1m"),
        (("va_valid", None), "va_valid.*missing"),
        (("volume", None), "volume.*missing"),
    ],
)
def test_missing_or_misnamed_live_fields_are_errors(
    rename: tuple[str, str | None], match: str
) -> None:
    """Defect 4: the live path read ``spread_avg`` while the engine emits
    ``spread_avg_60m``, and a missing key silently became NaN / 0 / qimb_close."""
    m = _minute()
    old, new = rename
    v = m.pop(old)
    if new is not None:
        m[new] = v
    k = _core.StrategyKernel(params_dict(load_settings()))
    with pytest.raises(CoreError, match=match):
        k.on_minute(m)


def test_none_is_nan_only_for_prices() -> None:
    k = _core.StrategyKernel(params_dict(load_settings()))
    m = _minute()
    m.update(open=None, high=None, low=None, close=None, volume=0.0)  # a minute without trades
    assert k.on_minute(m)["action"] == "HOLD"
    m = _minute()
    m["va_valid"] = None
    with pytest.raises(CoreError, match="va_valid"):
        _core.StrategyKernel(params_dict(load_settings())).on_minute(m)


def test_rust_errors_map_onto_their_python_classes() -> None:
    """Issue 10 §4: a config error from Rust is a ConfigError, bad input an InputError
    (both stay CoreErrors); no ValueError / TypeError leaks from the bindings."""
    import numpy as np

    from at_core.errors import ConfigError, InputError

    p = params_dict(load_settings())
    p["risk_pct"] = -1.0
    with pytest.raises(ConfigError, match="risk_pct"):
        _core.StrategyKernel(p)
    k = _core.StrategyKernel(params_dict(load_settings()))
    m = _minute()
    m["spread_avg_60m"] = 1.0
    with pytest.raises(InputError, match="spread_avg_60m"):
        k.on_minute(m)
    strided = np.arange(10, dtype=np.int64)[::2]
    with pytest.raises(InputError, match="contiguous"):
        _core.fill_reference_rows(strided, strided, np.zeros(5), np.zeros(5))
