"""``features_profile``: the volume profile behind one minute's features (the dashboard's
histogram) equals what the batch engine stored for that minute: POC / VAH / VAL,
``total_volume_4h`` and ``va_bin_count``, computed from the full stage 1 and from the
window's trades alone (what the dashboard has)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from at_core import _core
from at_core.config import load_settings
from at_core.errors import CoreInputError
from at_core.features.engine import batch, engine_config
from at_core.storage.lake import day_start_ms
from tests.synth_ticks import ticks

M = 60_000
T0 = day_start_ms(dt.date(2024, 1, 1))
MINUTES = 330
SETTINGS = load_settings()
CFG = engine_config(SETTINGS)
WINDOW = SETTINGS.rolling_window_minutes
Arrays = dict[str, np.ndarray]


@pytest.fixture(scope="module")
def market() -> tuple[Arrays, Arrays, Arrays, Arrays]:
    trades, quotes = ticks(5, T0, T0 + MINUTES * M)
    feats = batch(trades, quotes, SETTINGS)
    stage1 = dict(_core.features_stage1(trades, quotes, CFG))
    return trades, quotes, feats, stage1


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _window_trades(trades: Arrays, t: int) -> Arrays:
    """The trades of the window ending at minute ``t`` (what the dashboard reads)."""
    keep = (trades["ts_ms"] >= t - (WINDOW - 1) * M) & (trades["ts_ms"] < t + M)
    return {k: np.ascontiguousarray(v[keep]) for k, v in trades.items()}


def _check(p: dict[str, object], feats: Arrays, i: int) -> None:
    t = int(feats["ts_min"][i])
    for k in ("poc", "vah", "val"):
        assert _same(float(p[k]), float(feats[k][i])), (k, t, p[k], feats[k][i])  # type: ignore[arg-type]
    assert p["total_volume"] == feats["total_volume_4h"][i], t
    assert p["va_bin_count"] == feats["va_bin_count"][i], t
    assert p["bin_width"] == feats["bin_width"][i], t
    price = np.asarray(p["price"])
    volume = np.asarray(p["volume"])
    assert price.shape == volume.shape and price.dtype == volume.dtype == np.float64
    total = float(p["total_volume"])  # type: ignore[arg-type]
    # the bins add up to the total, exactly in volume units
    q = _core.features_volume_quantum()
    assert int(np.rint(volume / q).sum()) == round(total / q), t
    assert math.isclose(math.fsum(volume), total, rel_tol=1e-12), t
    assert int(np.count_nonzero(volume)) == p["va_bin_count"], t
    if total > 0:
        w = float(feats["bin_width"][i])
        # contiguous lower edges, one bin width apart; the POC bin holds the most volume
        assert np.allclose(np.diff(price), w, rtol=0, atol=1e-9 * w), t
        assert volume[0] > 0 and volume[-1] > 0, t
        poc = float(p["poc"])  # type: ignore[arg-type]
        assert volume[np.isclose(price, poc, rtol=0, atol=1e-9 * w)].item() == volume.max(), t
        assert price[0] <= float(p["val"]) <= poc <= float(p["vah"]) <= price[-1]  # type: ignore[arg-type]


def test_profile_equals_the_stored_features_at_each_minute(
    market: tuple[Arrays, Arrays, Arrays, Arrays],
) -> None:
    trades, _, feats, stage1 = market
    n = len(feats["ts_min"])
    assert n == MINUTES
    # the first minute, warm-up, the window's end, well after warm-up, the last minute
    picks = [0, 1, 37, WINDOW - 1, WINDOW, WINDOW + 17, 301, n - 1]
    for i in range(n):  # every minute, from the whole stage 1
        t = int(feats["ts_min"][i])
        _check(_core.features_profile(stage1, CFG, t, float(feats["bin_width"][i])), feats, i)
    for i in picks:  # the dashboard's way: stage 1 of the window's trades only, no quotes
        t = int(feats["ts_min"][i])
        s1 = dict(_core.features_stage1(_window_trades(trades, t), None, CFG))
        _check(_core.features_profile(s1, CFG, t, float(feats["bin_width"][i])), feats, i)
    assert feats["va_valid"][picks[-1]], "the last minute is past warm-up"
    assert len(set(feats["bin_width"][picks].tolist())) > 3, "the bin width should vary"


def test_a_minute_before_any_trade_has_an_empty_profile(
    market: tuple[Arrays, Arrays, Arrays, Arrays],
) -> None:
    _, _, _, stage1 = market
    p = _core.features_profile(stage1, CFG, T0 - 10 * M, 0.1)
    assert len(p["price"]) == len(p["volume"]) == 0
    assert all(math.isnan(p[k]) for k in ("poc", "vah", "val"))
    assert (p["total_volume"], p["va_bin_count"]) == (0.0, 0)


def test_bad_inputs_raise_input_errors_naming_the_field(
    market: tuple[Arrays, Arrays, Arrays, Arrays],
) -> None:
    _, _, feats, stage1 = market
    t = int(feats["ts_min"][-1])
    for bad in (0.15, 0.0, -0.1, 0.1000001, math.nan, math.inf):
        with pytest.raises(CoreInputError, match="bin_width"):
            _core.features_profile(stage1, CFG, t, bad)
    short = dict(stage1, hist_bin=stage1["hist_bin"][:-1])
    with pytest.raises(CoreInputError, match="hist_bin"):
        _core.features_profile(short, CFG, t, 0.1)
    missing = {k: v for k, v in stage1.items() if k != "hist_qty"}
    with pytest.raises(CoreInputError, match="hist_qty"):
        _core.features_profile(missing, CFG, t, 0.1)
    with pytest.raises(CoreInputError, match="ts_min"):
        _core.features_profile(stage1, CFG, t + 1, 0.1)
