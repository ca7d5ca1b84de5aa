"""SPEC §20.3 (value area) and §20.4 (order-flow inference), through the Python binding,
with the numbers of the spec text."""

from __future__ import annotations

import numpy as np
import pytest

import at_core._core as core
from at_core.config import load_settings
from at_core.features.engine import engine_config

T12 = 1_704_110_400_000  # 2024-01-01 12:00 UTC


def _trades(ts: list[int], px: list[float], sz: list[float]) -> dict[str, np.ndarray]:
    n = len(ts)
    return {
        "ts_ms": np.array(ts, dtype=np.int64),
        "seq": np.arange(n, dtype=np.int64),
        "price": np.array(px, dtype=np.float64),
        "size": np.array(sz, dtype=np.float64),
        "exchange_side": np.zeros(n, dtype=np.int8),
    }


def _quotes(ts: list[int], bid: list[float], ask: list[float]) -> dict[str, np.ndarray]:
    n = len(ts)
    return {
        "ts_ms": np.array(ts, dtype=np.int64),
        "seq": np.arange(n, dtype=np.int64),
        "bid_px": np.array(bid, dtype=np.float64),
        "bid_sz": np.ones(n),
        "ask_px": np.array(ask, dtype=np.float64),
        "ask_sz": np.ones(n),
    }


def test_spec_20_4_order_flow() -> None:
    trades = _trades(
        [T12 + 1000, T12 + 2000, T12 + 3000, T12 + 4000],
        [50_001.0, 50_000.0, 50_000.5, 50_001.0],
        [0.1, 0.2, 0.15, 0.25],
    )
    quotes = _quotes([T12 + 500], [50_000.0], [50_001.0])
    cfg = engine_config(load_settings())
    out = core.features_stage1(trades, quotes, cfg, record_trades=True)
    assert list(out["trade_quote_sign"]) == [1, -1, 0, 1]
    assert list(out["trade_sign"]) == [1, -1, 1, 1], "tick rule: 50,000.5 > 50,000 -> +1"
    assert out["of_1m"][0] == pytest.approx(0.3, abs=1e-12)
    assert out["of_norm_1m"][0] == pytest.approx(0.3 / 0.7, abs=1e-12)
    assert round(float(out["of_norm_1m"][0]), 2) == 0.43
    assert out["ambiguous_trade_frac_1m"][0] == pytest.approx(0.15 / 0.7, abs=1e-12)
    assert round(float(out["ambiguous_trade_frac_1m"][0]), 2) == 0.21


def test_spec_20_3_value_area_from_stage1_columns() -> None:
    """Stage 2 from a hand-built stage-1 table: three minutes of mids (so sigma > 0 and the
    huge alpha clamps the width to $100), the §20.3 volumes in the last minute."""
    q = 1e8  # hist_qty units per 1.0 of size
    edges = [498_000, 499_000, 500_000, 501_000, 502_000, 503_000]
    vols = [100, 250, 400, 300, 150, 50]
    m = 60_000
    stage1 = {
        "ts_min": np.array([T12, T12 + m, T12 + 2 * m], dtype=np.int64),
        "bid_px_close": np.array([50_000.0, 50_010.0, 49_995.0]),
        "ask_px_close": np.array([50_000.1, 50_010.1, 49_995.1]),
        "close": np.full(3, np.nan),
        "volume": np.array([0.0, 0.0, 1250.0]),
        "hist_minute": np.full(6, T12 + 2 * m, dtype=np.int64),
        "hist_bin": np.array(edges, dtype=np.int64),
        "hist_qty": (np.array(vols) * q).astype(np.int64),
    }
    cfg = engine_config(
        load_settings(
            # three minutes of data are the whole warm-up here (SPEC §16.1 is not the subject)
            overrides={
                "alpha_bin": 100.0,
                "bin_width_max_ticks": 1000,
                "min_va_bins": 6,
                "rolling_window_minutes": 3,
                "warmup_minutes": 0,
            }
        )
    )
    f = core.features_stage2(stage1, cfg)
    assert f["bin_width"][2] == 100.0
    assert (f["poc"][2], f["val"][2], f["vah"][2]) == (50_000.0, 49_900.0, 50_100.0)
    assert f["va_coverage"][2] == pytest.approx(950 / 1250, abs=1e-15)
    assert f["va_bin_count"][2] == 6 and bool(f["va_valid"][2])
    assert f["total_volume_4h"][2] == pytest.approx(1250.0)
    cfg["min_va_bins"] = 20  # the spec default: 6 bins are not enough
    assert not bool(core.features_stage2(stage1, cfg)["va_valid"][2])
