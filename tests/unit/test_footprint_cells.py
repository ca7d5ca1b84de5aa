"""Footprint cells: the aggregation, and the live recorder fed the way the features actor
feeds it (the real engine, ticks in uneven slices, minutes closed as the collector closes
them), checked against an independent oracle: the batch engine's side for every trade,
summed per minute and tick by a plain loop. Restarts from a snapshot (the actor's crash
recovery) must neither count a trade twice nor lose one."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from typing import Any

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from at_core import _core
from at_core.config import load_settings
from at_core.features.engine import engine_config
from at_core.live.footprint_recorder import FootprintRecorder
from at_core.storage.footprint import (
    BIN_SQL,
    TRADE_CELLS_SQL,
    merge_cells,
    to_ticks,
    trade_cells,
    uncovered_ranges,
)
from at_core.storage.lake import day_start_ms
from tests.synth_ticks import Arrays, ticks

M = 60_000
T0 = day_start_ms(dt.date(2024, 1, 1))
MINUTES = 75
SETTINGS = load_settings()
CFG = engine_config(SETTINGS)
TICK = SETTINGS.tick_size


@pytest.fixture(scope="module")
def market() -> tuple[Arrays, Arrays]:
    return ticks(3, T0, T0 + MINUTES * M)


@pytest.fixture(scope="module")
def oracle(market: tuple[Arrays, Arrays]) -> dict[tuple[int, int], list[float]]:
    """(minute, tick) -> [bid, ask, ambiguous] from the batch engine's per-trade sides."""
    t, q = market
    sign = np.asarray(_core.features_stage1(t, q, CFG, record_trades=True)["trade_sign"])
    cells: dict[tuple[int, int], list[float]] = {}
    for ts, px, size, s in zip(t["ts_ms"], t["price"], t["size"], sign, strict=True):
        key = (int(ts) // M * M, round(float(px) / TICK))
        cells.setdefault(key, [0.0, 0.0, 0.0])[0 if s < 0 else 1 if s > 0 else 2] += float(size)
    return cells


def _slices(t: Arrays, q: Arrays, seed: int) -> list[tuple[Arrays, Arrays, int]]:
    """Uneven time slices and the last minute each completes (the collector's
    ``close_through``). Each ends just after a trade, so the engine holds that trade's
    timestamp group unclassified when the slice is done (its side comes with the next)."""
    rng = np.random.default_rng(seed)
    end = T0 + MINUTES * M
    cuts = [T0]
    while cuts[-1] < end:
        c = cuts[-1] + int(rng.integers(300, 95_000))
        i = int(np.searchsorted(t["ts_ms"], c))
        cuts.append(min(end, int(t["ts_ms"][i]) + 1 if i < len(t["ts_ms"]) else end))
    out = []
    for a, b in itertools.pairwise(cuts):
        ti = (t["ts_ms"] >= a) & (t["ts_ms"] < b)
        qi = (q["ts_ms"] >= a) & (q["ts_ms"] < b)
        out.append(({k: v[ti] for k, v in t.items()}, {k: v[qi] for k, v in q.items()},
                    b // M * M - M))  # fmt: skip
    return out


def _feed(eng: Any, rec: FootprintRecorder, t: Arrays, q: Arrays, close_through: int) -> None:
    """What ``Features._feed`` does with one release."""
    parts = [dict(eng.push(t if len(t["ts_ms"]) else None, q if len(q["ts_ms"]) else None))]
    if close_through >= T0:
        parts.append(dict(eng.close_minute(close_through)))
    assert rec.add(t if len(t["ts_ms"]) else None, dict(eng.take_trade_sides()),
                   eng.pending_trades)  # fmt: skip
    closed = np.concatenate([np.asarray(p["ts_min"]) for p in parts])
    rec.close(closed)


def _table(con: duckdb.DuckDBPyConnection) -> dict[tuple[int, int], list[float]]:
    rows = con.execute("SELECT ts_min, tick, bid, ask, amb FROM footprint_1m").fetchall()
    keys = [(m, k) for m, k, *_ in rows]
    assert len(keys) == len(set(keys)), "a (minute, tick) cell written twice"
    return {(m, k): [b, a, n] for m, k, b, a, n in rows}


def _same(got: dict[Any, list[float]], want: dict[Any, list[float]]) -> None:
    assert got.keys() == want.keys()
    for key, v in want.items():
        assert got[key] == pytest.approx(v, abs=1e-9), key


def _covered(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [r[0] for r in con.execute("SELECT ts_min FROM footprint_cover ORDER BY 1").fetchall()]


def test_trade_cells_sum_per_minute_and_tick() -> None:
    ts = np.array([T0 + 5, T0 + 6, T0 + 7, T0 + M + 1, T0 + 9])
    px = np.array([100.3, 100.3, 100.4, 100.3, 100.3])
    tk = to_ticks(px, 0.1)
    assert list(tk) == [1003, 1003, 1004, 1003, 1003]  # 100.3 / 0.1 = 1002.99.. rounds up
    c = trade_cells(ts, tk, np.array([1.0, 2.0, 4.0, 8.0, 16.0]), np.array([1, -1, 0, 1, 1]))
    assert c["ts_min"].tolist() == [T0, T0, T0 + M]
    assert c["tick"].tolist() == [1003, 1004, 1003]
    assert c["ask"].tolist() == [17.0, 0.0, 8.0]
    assert c["bid"].tolist() == [2.0, 0.0, 0.0]
    assert c["amb"].tolist() == [0.0, 4.0, 0.0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5 * M),
            st.integers(990, 1010),
            st.integers(1, 50),
            st.sampled_from([-1, 0, 1]),
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 12),
    st.integers(0, 60),
)
def test_cells_binned_equal_trades_binned_and_merging_is_splitting(
    rows: list[tuple[int, int, int, int]], bin_ticks: int, cut: int
) -> None:
    ts = np.array([T0 + r[0] for r in rows], np.int64)
    tk = np.array([r[1] for r in rows], np.int64)
    size = np.array([r[2] / 8 for r in rows])
    sign = np.array([r[3] for r in rows])
    whole = trade_cells(ts, tk, size, sign)
    c = min(cut, len(rows))
    split = merge_cells(trade_cells(ts[:c], tk[:c], size[:c], sign[:c]),
                        trade_cells(ts[c:], tk[c:], size[c:], sign[c:]))  # fmt: skip
    for k in whole:
        assert np.allclose(whole[k], split[k])
    con = duckdb.connect()
    con.register("cells", {k: v for k, v in whole.items()})
    con.register("fp", {"ts_ms": ts, "price": tk * 0.1, "size": size, "side": sign})
    p = {"bt": bin_ticks, "start": T0, "end": T0 + 6 * M}
    a = con.execute(BIN_SQL.format(src="cells"), p).fetchall()
    b = con.execute(BIN_SQL.format(src=TRADE_CELLS_SQL.format(src="fp")), {**p, "tick": 0.1})
    b_rows = b.fetchall()
    assert [r[:2] for r in a] == [r[:2] for r in b_rows]
    for x, y in zip(a, b_rows, strict=True):
        assert x[2:] == pytest.approx(y[2:], abs=1e-9)


def test_uncovered_ranges() -> None:
    assert uncovered_ranges(np.array([T0, T0 + M]), T0, T0 + 2 * M) == []
    assert uncovered_ranges(np.array([], np.int64), T0, T0 + 2 * M) == [(T0, T0 + 2 * M)]
    got = uncovered_ranges(np.array([T0 + M, T0 + 4 * M]), T0, T0 + 6 * M)
    assert got == [(T0, T0 + M), (T0 + 2 * M, T0 + 4 * M), (T0 + 5 * M, T0 + 6 * M)]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_recorder_equals_the_batch_engine_trade_by_trade(
    market: tuple[Arrays, Arrays], oracle: dict[tuple[int, int], list[float]], seed: int
) -> None:
    con = duckdb.connect()
    rec = FootprintRecorder(con, TICK)
    eng = _core.FeatureEngine(CFG, record_trades=True)
    for t, q, ct in _slices(*market, seed):
        _feed(eng, rec, t, q, ct)
    _same(_table(con), oracle)
    assert _covered(con) == list(range(T0, T0 + MINUTES * M, M))


@pytest.mark.parametrize("crash_at", [3, 17, 40])
def test_a_restart_from_a_snapshot_counts_no_trade_twice_and_loses_none(
    market: tuple[Arrays, Arrays], oracle: dict[tuple[int, int], list[float]], crash_at: int
) -> None:
    """Snapshot after slice ``crash_at``, keep going (cells written), crash a few slices
    later, restore the engine and the recorder's state, feed again from the snapshot."""
    con = duckdb.connect()
    rec = FootprintRecorder(con, TICK)
    eng = _core.FeatureEngine(CFG, record_trades=True)
    slices = _slices(*market, 5)
    for t, q, ct in slices[: crash_at + 1]:
        _feed(eng, rec, t, q, ct)
    blob, state = bytes(eng.snapshot()), json.loads(json.dumps(rec.state()))
    assert state["queue"]["ts_ms"], "the snapshot should hold trades awaiting their sides"
    for t, q, ct in slices[crash_at + 1 : crash_at + 6]:
        _feed(eng, rec, t, q, ct)
    eng = _core.FeatureEngine.restore(blob, CFG, record_trades=True)
    rec = FootprintRecorder(con, TICK)
    rec.restore(state, eng.last_ts, eng.pending_trades)
    for t, q, ct in slices[crash_at + 1 :]:
        _feed(eng, rec, t, q, ct)
    _same(_table(con), oracle)
    assert _covered(con) == list(range(T0, T0 + MINUTES * M, M))


def test_a_snapshot_from_before_cells_leaves_its_open_minute_uncovered(
    market: tuple[Arrays, Arrays], oracle: dict[tuple[int, int], list[float]]
) -> None:
    """An engine snapshot taken without trade sides (an older actor): the minute it was in
    is partial here, so it is not covered; every later minute is exact."""
    con = duckdb.connect()
    slices = _slices(*market, 9)
    eng = _core.FeatureEngine(CFG)
    for t, q, _ in slices[:20]:  # an old actor: no sides, no cells
        eng.push(t, q)
        eng.take_ready()
    blob = bytes(eng.snapshot())
    eng = _core.FeatureEngine.restore(blob, CFG, record_trades=True)
    partial = eng.last_ts // M * M
    rec = FootprintRecorder(con, TICK)
    assert eng.pending_trades > 0  # its pending group's sides come without their trades
    rec.restore(None, eng.last_ts, eng.pending_trades)
    for t, q, ct in slices[20:]:
        _feed(eng, rec, t, q, ct)
    cover = _covered(con)
    assert cover == list(range(partial + M, T0 + MINUTES * M, M))
    _same(_table(con), {k: v for k, v in oracle.items() if k[0] > partial})


def test_binned_reads_written_and_open_minutes(
    market: tuple[Arrays, Arrays], oracle: dict[tuple[int, int], list[float]]
) -> None:
    con = duckdb.connect()
    rec = FootprintRecorder(con, TICK)
    eng = _core.FeatureEngine(CFG, record_trades=True)
    slices = _slices(*market, 4)
    for t, q, ct in slices[:-3]:
        _feed(eng, rec, t, q, ct)
    now = eng.last_ts // M * M  # the minute in progress
    assert now > int(_covered(con)[-1])
    for bt in (1, 7, 50):
        got = rec.binned(T0, T0 + MINUTES * M, bt, eng.last_ts)
        assert got["covered"].tolist() == list(range(T0, now + M, M))
        want: dict[tuple[int, int], list[float]] = {}
        t = market[0]
        last = eng.last_ts
        sides = oracle  # per (minute, tick); the open minute so far: from the trades seen
        for (m, k), v in sides.items():
            if m < now:
                cell = want.setdefault((m, k // bt), [0.0, 0.0, 0.0])
                for i in range(3):
                    cell[i] += v[i]
        open_vol = float(t["size"][(t["ts_ms"] >= now) & (t["ts_ms"] <= last)].sum())
        rows = {(int(m), int(k)): [b, a, n] for m, k, b, a, n in
                zip(got["m"], got["k"], got["bid"], got["ask"], got["amb"], strict=True)}  # fmt: skip
        _same({k: v for k, v in rows.items() if k[0] < now}, want)
        in_now = sum(sum(v) for k, v in rows.items() if k[0] == now)
        # the minute in progress: every trade seen but the engine's pending group
        pending = float(t["size"][t["ts_ms"] == last].sum())
        assert open_vol - pending - 1e-9 <= in_now <= open_vol + 1e-9


def test_sides_that_do_not_add_up_leave_the_minutes_uncovered(
    market: tuple[Arrays, Arrays], oracle: dict[tuple[int, int], list[float]]
) -> None:
    """A release whose sides do not match the trades fed (here: a trade the recorder is
    not told about) is refused and its minutes stay uncovered, never guessed."""
    con = duckdb.connect()
    rec = FootprintRecorder(con, TICK)
    eng = _core.FeatureEngine(CFG, record_trades=True)
    slices = _slices(*market, 6)
    for t, q, ct in slices[:10]:
        _feed(eng, rec, t, q, ct)
    t, q, ct = slices[10]
    eng.push(t, q)
    hidden = {k: v[1:] for k, v in t.items()}  # the recorder misses the first trade
    assert not rec.add(hidden, dict(eng.take_trade_sides()), eng.pending_trades)
    bad = int(t["ts_ms"][-1]) // M * M
    rec.close(np.asarray(eng.close_minute(ct)["ts_min"]))
    for t, q, ct in slices[11:]:
        _feed(eng, rec, t, q, ct)
    cover = _covered(con)
    assert bad not in cover
    assert [m for m in cover if m > bad] == list(range(bad + M, T0 + MINUTES * M, M))
    _same(_table(con), {k: v for k, v in oracle.items() if k[0] in set(cover)})
