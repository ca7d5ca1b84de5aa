"""The Python face of the feature engine: input validation, config mapping, time parsing,
and the streaming class used by the live graph."""

from __future__ import annotations

import numpy as np
import pytest

import at_core._core as core
from at_core.config import load_settings
from at_core.errors import AuctionTraderError, CoreError, InputError
from at_core.features.cli import parse_time
from at_core.features.engine import engine_config


def trades(ts: list[int], px: list[float], sz: list[float] | None = None) -> dict[str, np.ndarray]:
    n = len(ts)
    return {
        "ts_ms": np.array(ts, dtype=np.int64),
        "seq": np.arange(n, dtype=np.int64),
        "price": np.array(px, dtype=np.float64),
        "size": np.array(sz if sz is not None else [1.0] * n, dtype=np.float64),
        "exchange_side": np.zeros(n, dtype=np.int8),
    }


CFG = engine_config(load_settings())


def test_off_grid_price_names_the_trade() -> None:
    with pytest.raises(CoreError, match=r"trade #1.*price 50000\.15.*tick grid"):
        core.features_batch(trades([1, 2], [50_000.1, 50_000.15]), None, CFG)


def test_price_50000_1_bins_to_its_own_tick() -> None:
    # floor(50000.1 / 0.1) on floats gives 500000 (the tick below); the engine must not
    out = core.features_stage1(trades([1, 2], [50_000.1, 50_000.0]), None, CFG)
    assert list(out["hist_bin"]) == [500_000, 500_001]
    assert out["high"][0] == 50_000.1 and out["low"][0] == 50_000.0


def test_unsorted_input_names_the_row_and_nothing_is_half_done() -> None:
    eng = core.FeatureEngine(CFG)
    with pytest.raises(CoreError, match=r"trade #2"):
        eng.push(trades([10, 20, 15], [1.0, 1.0, 1.0]), None)
    with pytest.raises(CoreError, match=r"size"):
        core.features_batch(trades([1], [1.0], [-1.0]), None, CFG)


def test_wrong_dtype_and_missing_arrays_are_clear() -> None:
    bad = trades([1], [1.0])
    bad["ts_ms"] = bad["ts_ms"].astype(np.float64)
    with pytest.raises(CoreError, match="ts_ms"):
        core.features_batch(bad, None, CFG)
    del bad["ts_ms"]
    with pytest.raises(CoreError, match="missing array `ts_ms`"):
        core.features_batch(bad, None, CFG)


def test_config_errors_are_core_errors_naming_the_key() -> None:
    with pytest.raises(CoreError, match="quote_match"):
        core.features_batch(None, None, {**CFG, "quote_match": "sometimes"})
    with pytest.raises(CoreError, match="va_fraction"):
        core.features_batch(None, None, {**CFG, "va_fraction": 0.0})
    assert issubclass(CoreError, AuctionTraderError)


def test_streaming_class_event_by_event() -> None:
    eng = core.FeatureEngine(CFG, record_trades=True)
    eng.push_quote(1_000, 0, 100.0, 1.0, 100.1, 3.0)
    eng.push_trade(2_000, 0, 100.1, 0.5, 1)
    eng.push_trade(2_000, 1, 100.0, 0.25, -1)
    assert len(eng.take_ready()["ts_min"]) == 0
    eng.push_quote(61_000, 1, 100.1, 1.0, 100.2, 1.0)  # closes minute 0
    ready = eng.take_ready()
    assert list(ready["ts_min"]) == [0]
    assert ready["of_1m"][0] == 0.25 and ready["qimb_close"][0] == -0.5
    assert ready["side_agree_quote"][0] == 2
    closed = eng.close_minute(60_000)
    assert list(closed["ts_min"]) == [60_000] and closed["fq_ts"][0] == 61_000
    with pytest.raises(CoreError, match="already closed"):
        eng.push_trade(90_000, 2, 100.1, 1.0, 0)
    sides = eng.take_trade_sides()
    assert list(sides["trade_sign"]) == [1, -1]
    assert list(sides["trade_staleness_ms"]) == [1_000, 1_000]


@pytest.mark.parametrize(
    ("text", "end", "want"),
    [
        ("1712275200000", False, 1_712_275_200_000),
        ("2024-04-05", False, 1_712_275_200_000),
        ("2024-04-05", True, 1_712_275_200_000 + 86_400_000 - 1),
        ("2024-04-05T01:30", False, 1_712_275_200_000 + 90 * 60_000),
        ("2024-04-05T01:30Z", False, 1_712_275_200_000 + 90 * 60_000),
        ("2024-04-05T03:30+02:00", False, 1_712_275_200_000 + 90 * 60_000),
    ],
)
def test_parse_time(text: str, end: bool, want: int) -> None:
    assert parse_time(text, end=end, flag="--to") == want


def test_parse_time_rejects_garbage() -> None:
    with pytest.raises(InputError, match="--from"):
        parse_time("last tuesday", end=False, flag="--from")


def test_rejected_batch_leaves_the_engine_untouched() -> None:
    eng = core.FeatureEngine(CFG)
    eng.push(trades([1_000], [100.0]), None)
    bad = trades([2_000, 3_000, 70_000], [100.0, 100.1, 100.2], [1.0, float("nan"), 1.0])
    with pytest.raises(CoreError, match=r"trade #1"):
        eng.push(bad, None)
    assert eng.last_ts == 1_000, "nothing of the bad batch was fed"
    out = eng.push(trades([2_000, 70_000], [100.0, 100.2]), None)
    assert list(out["ts_min"]) == [0] and out["trade_count"][0] == 2


def test_the_engine_config_keys_come_from_rust_and_nothing_else_is_taken() -> None:
    """One list of keys (exported by Rust); a key the engine would not read is refused,
    never silently ignored."""
    from at_core.features.engine import ENGINE_KEYS

    assert tuple(core.features_config_keys()) == ENGINE_KEYS and "max_gap_minutes" in ENGINE_KEYS
    with pytest.raises(CoreError, match="max_gap_minute"):
        core.features_batch(trades([1], [50_000.1]), None, {**CFG, "max_gap_minute": 3})
