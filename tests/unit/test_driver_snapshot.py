"""Snapshot / restore of the streaming driver and the feature engine through the Python API.

A generated day is pushed in slices through one driver that is never interrupted and
through one that is snapshotted and restored at several cuts (mid-minute, with a working
entry, with an open position); every decided minute, trade, equity value and metric must
be bit-identical. ``state()`` and ``trades_since()`` must agree with ``finish()``. A
snapshot under other settings or with damaged bytes is refused.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from at_core import _core
from at_core.backtest import BacktestRun
from at_core.backtest.stream import StreamingDriver
from at_core.config import Settings, load_settings
from at_core.errors import CoreError
from at_core.features.engine import engine_config
from tests.synth_ticks import tick_arrays

DAY0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
M = 60_000
SLICE = 7 * M + 13_417  # slices end mid-minute


@pytest.fixture(scope="module")
def day() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    return tick_arrays(_core.SynthGenerator(7, DAY0).next_day())


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(overrides={"use_limit_for_entry": True, "max_daily_loss_pct": 0.0})


def _slices(
    day: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
) -> list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    t, q = day
    end = int(max(t["ts_ms"][-1], q["ts_ms"][-1])) + 1
    edges = np.arange(DAY0, end + SLICE, SLICE)
    ti, qi = np.searchsorted(t["ts_ms"], edges), np.searchsorted(q["ts_ms"], edges)
    return [
        (
            {k: v[ti[e] : ti[e + 1]] for k, v in t.items()},
            {k: v[qi[e] : qi[e + 1]] for k, v in q.items()},
        )
        for e in range(len(edges) - 1)
    ]


def _bits(a: Any) -> list[Any]:
    x = np.asarray(a)
    return x.view(np.int64).tolist() if x.dtype.kind == "f" else x.tolist()


def _same_run(a: BacktestRun, b: BacktestRun) -> None:
    assert a.trades.keys() == b.trades.keys()
    for k in a.trades:
        assert _bits(a.trades[k]) == _bits(b.trades[k]), k
    assert _bits(a.equity) == _bits(b.equity)
    for k in a.decisions:
        assert _bits(a.decisions[k]) == _bits(b.decisions[k]), k
    assert [np.float64(v).view(np.int64) for v in a.metrics.values()] == [
        np.float64(v).view(np.int64) for v in b.metrics.values()
    ]


def _same_pushes(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for k in ("ts_min", "action", "reason", "signals", "events", "heat", "equity"):
            assert _bits(x[k]) == _bits(y[k]), k
        assert x["orders"] == y["orders"]


def _run(
    settings: Settings, slices: list[Any], cuts: set[int]
) -> tuple[BacktestRun, list[dict[str, Any]], list[dict[str, Any]]]:
    d = StreamingDriver(settings)
    pushes, states = [], []
    for i, (t, q) in enumerate(slices):
        if i in cuts:
            before = d.state()
            blob = d.snapshot()
            d = StreamingDriver.restore(blob, settings)
            assert d.state() == before
            assert d.snapshot() == blob
        pushes.append(d.push(t, q))
        states.append(d.state())
    return d.finish(), pushes, states


def test_a_restored_driver_continues_bit_for_bit(
    day: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], settings: Settings
) -> None:
    slices = _slices(day)
    whole, pushes, states = _run(settings, slices, set())
    assert len(whole.trades["side"]) >= 3, "too few trades to compare"
    # cuts: a few fixed ones plus the first slice after which an entry is working and the
    # first with an open position (the cut is before the next slice)
    working = next(i for i, s in enumerate(states) if s["working"] is not None)
    open_ = next(i for i, s in enumerate(states) if s["position"] is not None)
    cuts = {0, 1, 40, working + 1, open_ + 1, len(slices) // 2, len(slices) - 1}
    split, pushes2, _ = _run(settings, slices, cuts)
    _same_pushes(pushes, pushes2)
    _same_run(whole, split)


def test_state_and_trades_since_agree_with_finish(
    day: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], settings: Settings
) -> None:
    d = StreamingDriver(settings)
    s0 = d.state()
    assert s0["minutes"] == 0 and s0["position"] is None and s0["trades"] == 0
    got: dict[str, list[Any]] = {}
    for t, q in _slices(day):
        d.push(t, q)
        st = d.state()
        new = d.trades_since(sum(len(v) for v in got.get("side", [])))
        for k, v in new.items():
            got.setdefault(k, []).append(np.asarray(v))
        assert sum(len(v) for v in got["side"]) == st["trades"]
        assert st["day_pnl"] == st["equity"] - st["day_start_equity"]
        if st["position"] is not None:
            assert st["position"]["side"] in ("LONG", "SHORT") and st["position"]["qty"] > 0
    n = st["trades"]
    assert n >= 3
    assert st["minutes"] == d.minutes
    assert st["last_ts_min"] is not None and st["last_ts_min"] % M == 0
    assert set(d.trades_since(n + 5)["side"]) == set()
    r = d.finish()
    for k, parts in got.items():
        # the closed trades so far are the first ones of the result, column for column
        assert _bits(np.concatenate(parts)) == _bits(np.asarray(r.trades[k])[:n]), k
    assert all(x == "END_OF_DATA" for x in r.trades["exit_reason"][n:])


def test_other_settings_and_damaged_bytes_are_refused(
    day: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], settings: Settings
) -> None:
    d = StreamingDriver(settings)
    for t, q in _slices(day)[:5]:
        d.push(t, q)
    blob = d.snapshot()
    StreamingDriver.restore(blob, settings)  # the same settings: fine
    with pytest.raises(CoreError, match="stop_buffer_ticks"):
        StreamingDriver.restore(blob, settings, {"stop_buffer_ticks": 7})
    other = load_settings(
        overrides={"use_limit_for_entry": True, "max_daily_loss_pct": 0.0, "va_fraction": 0.6}
    )
    with pytest.raises(CoreError, match="va_fraction"):
        StreamingDriver.restore(blob, other)
    with pytest.raises(CoreError, match="fills"):
        StreamingDriver.restore(blob, settings, fills="exchange")
    funding = (np.array([DAY0 + 8 * 3_600_000]), np.array([1e-4]))
    with pytest.raises(CoreError, match="funding"):
        StreamingDriver.restore(blob, settings, funding=funding)
    damaged = bytearray(blob)
    damaged[len(blob) // 2] ^= 0x01
    with pytest.raises(CoreError, match="checksum"):
        StreamingDriver.restore(bytes(damaged), settings)
    for n in (0, 12, len(blob) - 1):
        with pytest.raises(CoreError):
            StreamingDriver.restore(blob[:n], settings)
    with pytest.raises(CoreError, match="magic"):
        StreamingDriver.restore(b"x" * 64, settings)


def test_feature_engine_snapshot(
    day: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], settings: Settings
) -> None:
    cfg = engine_config(settings)
    slices = _slices(day)[:60]

    def run(cuts: set[int]) -> list[dict[str, np.ndarray]]:
        e = _core.FeatureEngine(cfg)
        out = []
        for i, (t, q) in enumerate(slices):
            if i in cuts:
                e = _core.FeatureEngine.restore(e.snapshot(), cfg)
            out.append(e.push(t, q))
        out.append(e.finish())
        return out

    a, b = run(set()), run({3, 17, 41})
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            assert _bits(x[k]) == _bits(y[k]), k
    blob = _core.FeatureEngine(cfg).snapshot()
    with pytest.raises(CoreError, match="rolling_window_minutes"):
        _core.FeatureEngine.restore(blob, {**cfg, "rolling_window_minutes": 60})


def test_snapshot_size_and_time_after_one_day(
    day: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    d = StreamingDriver(settings)
    d.push(*day)
    t0 = time.perf_counter()
    blob = d.snapshot()
    t1 = time.perf_counter()
    r = StreamingDriver.restore(blob, settings)
    t2 = time.perf_counter()
    assert r.minutes == d.minutes == 24 * 60 - 1
    with capsys.disabled():
        print(
            f"\ndriver snapshot after one day ({d.minutes} minutes, {d.events} events): "
            f"{len(blob):,} bytes, snapshot {1e3 * (t1 - t0):.1f} ms, "
            f"restore {1e3 * (t2 - t1):.1f} ms"
        )
    assert len(blob) < 4_000_000
