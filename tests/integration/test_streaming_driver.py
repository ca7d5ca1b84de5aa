"""The streaming driver (the live graph's paper-mode core) against the batch backtest.

Two generated days go through ``auction-trader features`` + the backtest command's table
(the batch path a user runs) and, separately, tick by tick through the streaming driver
(the lake's days pushed as they come). Trades, fills, equity and decisions must be
bit-identical, for market and limit entries, with and without the tick path, with a
funding history. The driver must not trade during the 240-minute warm-up: checked against
the ticks' own first timestamp, not against anything the driver counts.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from at_core import cli
from at_core.backtest import BacktestRun, action_names
from at_core.backtest.cli import backtest
from at_core.backtest.stream import StreamingDriver, replay
from at_core.config import load_settings
from at_core.errors import CoreError
from at_core.features.engine import quotes_arrays, trades_arrays
from at_core.ingest.download import store_funding
from at_core.ingest.synthetic import generate_market
from at_core.storage.lake import Lake

DAY0 = 1_704_067_200_000  # 2024-01-01, the generator's default start
M = 60_000
H = 3_600_000


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("stream") / "db"
    generate_market(d, days=2, seed=7, progress=False)
    assert cli.main(["features", "--db-dir", str(d)]) == 0
    return d


def _same(a: BacktestRun, b: BacktestRun) -> None:
    assert a.trades.keys() == b.trades.keys()
    for k in a.trades:
        x, y = np.asarray(a.trades[k]), np.asarray(b.trades[k])
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x.view(np.int64), y.view(np.int64), err_msg=k)
        else:
            assert x.tolist() == y.tolist(), k
    np.testing.assert_array_equal(a.equity.view(np.int64), b.equity.view(np.int64))
    for k in a.decisions:
        np.testing.assert_array_equal(a.decisions[k], b.decisions[k], err_msg=k)
    assert a.metrics.keys() == b.metrics.keys()
    for k, v in a.metrics.items():
        w = b.metrics[k]
        assert v == w or (v != v and w != w), (k, v, w)


CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("market", {"use_limit_for_entry": False}, False),
    ("limit", {"use_limit_for_entry": True}, False),
    ("market+tick_path", {"use_limit_for_entry": False, "stop_fill_mode": "tick_path"}, False),
    ("limit+tick_path+funding", {"stop_fill_mode": "tick_path"}, True),
]


@pytest.mark.parametrize(("what", "overrides", "with_funding"), CASES, ids=[c[0] for c in CASES])
def test_streamed_ticks_equal_the_batch_backtest(
    db: Path, what: str, overrides: dict[str, Any], with_funding: bool
) -> None:
    if with_funding:
        # an hourly made-up venue, so that positions cross instants
        store_funding(db, "BTCUSDT", [(DAY0 + h * H, 2e-4) for h in range(1, 48)])
        overrides = {**overrides, "funding_source": "history"}
    s = load_settings(overrides=overrides)
    out = backtest(db, s, write_report=False, store=False)
    streamed = replay(db, s, progress=False)
    assert len(out.result.trades["side"]) >= 5, f"{what}: too few trades to compare"
    _same(out.result, streamed)
    if with_funding:
        assert out.result.metrics["funding"] != 0.0


def test_no_entry_during_the_warm_up(db: Path) -> None:
    """Warm-up (SPEC §16.1) counted from the first tick in the lake: no entry decision at
    a close less than 240 minutes of data after it, whatever the VA looks like."""
    lake = Lake(db)
    day = lake.days("trades")[0]
    t, q = lake.read_day("trades", day), lake.read_day("quotes", day)
    first_tick = min(int(t["ts_ms"][0].as_py()), int(q["ts_ms"][0].as_py()))
    warm_end = (first_tick // M) * M + 239 * M  # the 240th minute of data
    d = StreamingDriver(load_settings(overrides={"min_va_bins": 1}))
    # feed in small slices, as a live feed would
    tt, qq = trades_arrays(t), quotes_arrays(q)
    edges = np.arange(DAY0, DAY0 + 24 * H + 1, 10 * M)
    entries: list[int] = []
    names = action_names()
    for a, b in itertools.pairwise(edges):
        ts_sel = (tt["ts_ms"] >= a) & (tt["ts_ms"] < b)
        qs_sel = (qq["ts_ms"] >= a) & (qq["ts_ms"] < b)
        out = d.push(
            {k: np.ascontiguousarray(v[ts_sel]) for k, v in tt.items()},
            {k: np.ascontiguousarray(v[qs_sel]) for k, v in qq.items()},
        )
        for ts, act in zip(out["ts_min"], out["action"], strict=True):
            if names[act] in ("ENTER_LONG", "ENTER_SHORT"):
                entries.append(int(ts))
    assert entries, "the day should trade after the warm-up"
    assert min(entries) >= warm_end, (min(entries) - warm_end) / M
    assert d.minutes == 24 * 60 - 1  # the last minute is still open


def test_bad_input_halts_the_driver_with_the_row_named() -> None:
    d = StreamingDriver(load_settings())
    q = {
        "ts_ms": np.array([DAY0 + 1_000, DAY0 + 500], dtype=np.int64),
        "seq": np.array([0, 1], dtype=np.int64),
        "bid_px": np.array([42_000.0, 42_000.0]),
        "bid_sz": np.array([1.0, 1.0]),
        "ask_px": np.array([42_000.1, 42_000.1]),
        "ask_sz": np.array([1.0, 1.0]),
    }
    with pytest.raises(CoreError, match="quote #1"):
        d.push(None, q)
    assert d.halted is not None
    later = {k: v[:1] + (60_000 if k == "ts_ms" else 0) for k, v in q.items()}
    with pytest.raises(CoreError, match="halted"):
        d.push(None, later)


def test_exchange_fills_book_like_paper_fills(db: Path) -> None:
    """Live mode: the driver says which orders to send; when the exchange reports exactly
    the fills the paper run made (each before its minute closes), the book, the equity and
    every decision are the paper run's."""
    s = load_settings(overrides={"funding_rate_8h_bps": 0.0})
    paper = replay(db, s, progress=False)
    tr = paper.trade_records()
    assert len(tr) >= 5

    def fee(px: float, qty: float, maker: bool) -> float:
        # the exchange's fee, computed as the fill model does (notional x bps / 1e4)
        return px * qty * (s.maker_fee_bps if maker else s.taker_fee_bps) / 1e4

    reports: list[tuple[int, str, tuple[Any, ...]]] = []
    for t in tr:
        reports.append(
            (
                t["fill_ts_ms"],
                "entry",
                (t["entry_price"], t["qty"], fee(t["entry_price"], t["qty"], t["entry_maker"])),
            )
        )
        if t["tp1_qty"]:
            reports.append(
                (
                    t["tp1_ts_ms"],
                    "tp1",
                    (t["tp1_price"], t["tp1_qty"], fee(t["tp1_price"], t["tp1_qty"], False)),
                )
            )
        if t["exit_reason"] == "END_OF_DATA":
            continue
        kind = {"STOP": "stop", "BREAKEVEN_STOP": "stop", "TP2": "tp2"}.get(
            t["exit_reason"], "market"
        )
        rest = round((t["qty"] - t["tp1_qty"]) / s.qty_step) * s.qty_step
        reports.append(
            (t["exit_ts_ms"], kind, (t["exit_price"], rest, fee(t["exit_price"], rest, False)))
        )
    reports.sort(key=lambda r: r[0])

    live = StreamingDriver(s, fills="exchange")
    lake = Lake(db)
    orders: list[dict[str, Any]] = []
    k = 0
    for day in lake.days("trades"):
        tt, qq = (
            trades_arrays(lake.read_day("trades", day)),
            quotes_arrays(lake.read_day("quotes", day)),
        )
        # one-second slices: every fill is reported once time has passed it
        edges = np.arange(
            tt["ts_ms"][0] // 1000 * 1000, max(tt["ts_ms"][-1], qq["ts_ms"][-1]) + 1001, 1000
        )
        ti, qi = np.searchsorted(tt["ts_ms"], edges), np.searchsorted(qq["ts_ms"], edges)
        for e in range(len(edges) - 1):
            while k < len(reports) and reports[k][0] < edges[e]:
                ts, what, (px, qty, f) = reports[k]
                if what == "entry":
                    assert live.entry_fill(ts, px, qty, f)
                else:
                    live.exit_fill(what, ts, px, qty, f)
                k += 1
            if ti[e] == ti[e + 1] and qi[e] == qi[e + 1]:
                continue
            out = live.push(
                {c: v[ti[e] : ti[e + 1]] for c, v in tt.items()},
                {c: v[qi[e] : qi[e + 1]] for c, v in qq.items()},
            )
            orders.extend(out["orders"])
    assert k == len(reports)
    got = live.finish()
    entries = [o for o in orders if o["entry"] is not None]
    assert len(entries) >= len(tr) and {"side", "qty", "limit_price", "stop"} <= set(
        entries[0]["entry"]
    )
    np.testing.assert_array_equal(got.equity.view(np.int64), paper.equity.view(np.int64))
    for key in ("action", "reason", "signals"):
        np.testing.assert_array_equal(got.decisions[key], paper.decisions[key])
    assert got.metrics["net_pnl"] == paper.metrics["net_pnl"]
    for a, b in zip(got.trade_records(), tr, strict=True):
        for key in (
            "fill_ts_ms",
            "entry_price",
            "qty",
            "exit_ts_ms",
            "exit_price",
            "exit_reason",
            "net_pnl",
        ):
            assert a[key] == b[key], (key, a, b)
