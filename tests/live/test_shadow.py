"""The shadow comparison without Ray: a live driver that missed half an hour of ticks is
caught by the backtest of the stored ticks; one that saw exactly the stored ticks is not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from at_core import _core
from at_core.backtest.stream import StreamingDriver
from at_core.config import load_settings
from at_core.live import shadow
from at_core.live.cursor import Cursor
from at_core.live.demo import DEMO_SETTINGS

T0 = 1_704_067_200_000
M = 60_000


def _day() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    b = _core.SynthGenerator(1, T0).generate(T0 + 360 * M)
    t = {
        "ts_ms": b["trade_ts_ms"], "seq": np.arange(1, len(b["trade_ts_ms"]) + 1),
        "price": b["trade_price"], "size": b["trade_size"],
        "exchange_side": b["trade_side"].astype(np.int8),
    }  # fmt: skip
    q = {k: b[k] for k in ("bid_px", "bid_sz", "ask_px", "ask_sz")}
    q["ts_ms"], q["seq"] = b["quote_ts_ms"], np.arange(1, len(b["quote_ts_ms"]) + 1)
    return t, q


def _sel(a: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v[keep]) for k, v in a.items()}


def _run(drop: bool) -> list[dict]:
    t, q = _day()
    settings = load_settings(overrides=DEMO_SETTINGS)
    live = StreamingDriver(settings)
    check = shadow.ShadowCheck(bytes(live.snapshot()), settings, "paper", Cursor(), None)

    def fetch(a: Cursor, b: Cursor) -> tuple:
        tk = (t["seq"] > a.trade_seq) & (t["seq"] <= b.trade_seq)
        qk = (q["seq"] > a.quote_seq) & (q["seq"] <= b.quote_seq)
        return _sel(t, tk), _sel(q, qk)

    diffs: list[dict] = []
    for lo in range(T0, T0 + 360 * M, 10 * M):  # ten-minute releases
        tk = (t["ts_ms"] >= lo) & (t["ts_ms"] < lo + 10 * M)
        qk = (q["ts_ms"] >= lo) & (q["ts_ms"] < lo + 10 * M)
        end = Cursor(int(t["seq"][tk][-1]), int(q["seq"][qk][-1]))
        lost = drop and T0 + 280 * M <= lo < T0 + 310 * M
        got = [] if lost else [live.push(_sel(t, tk), _sel(q, qk))]
        check.note_live(got)
        diffs += check.advance(fetch, end, None, live)
    return diffs


def test_identical_feeds_do_not_diverge() -> None:
    assert _run(drop=False) == []


def test_lost_releases_are_caught_and_recorded(tmp_path: Path) -> None:
    diffs = _run(drop=True)
    assert diffs, "half an hour of ticks the live driver never saw went unnoticed"
    assert {d["kind"] for d in diffs} >= {"decision"}
    con = sqlite3.connect(tmp_path / "s.db")
    con.execute(shadow.DDL)
    shadow.record(con, diffs)
    rows = shadow.report(con)
    assert len(rows) == len(diffs) and rows[0]["kind"] == diffs[0]["kind"]
