"""Every fill of a backtest checked against the ticks it claims to have traded on.

Independent evidence: the generated day's trades and quotes read back from the lake, not
anything the backtester keeps. For each trade of a backtest on two generated days:

* a taker entry or market exit happened at the first quote strictly after its deciding
  close, at that quote's ask (buy) / bid (sell) plus / minus the slippage;
* a maker (limit) entry happened at a real trade through the limit, after the order's
  arrival quote;
* a stop, TP1 or TP2 happened at a real trade at or beyond the price it was filled from,
  never before the entry fill (a target strictly after it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from at_core import cli
from at_core.backtest.cli import backtest
from at_core.config import load_settings
from at_core.ingest.synthetic import generate_market
from at_core.storage.lake import Lake

MARKET_EXITS = {"TIME_STOP", "TRAIL_EXIT", "FLIP", "BREAKOUT_CLOSE_INSIDE", "KILL_SWITCH"}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fills") / "db"
    generate_market(d, days=2, seed=11, progress=False)
    assert cli.main(["features", "--db-dir", str(d)]) == 0
    return d


def _lake(db: Path, kind: str) -> pa.Table:
    lake = Lake(db)
    return pa.concat_tables([lake.read_day(kind, day) for day in lake.days(kind)])  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ticks(db: Path) -> dict[str, np.ndarray]:
    q = _lake(db, "quotes")
    t = _lake(db, "trades")
    return {
        "q_ts": q["ts_ms"].to_numpy(),
        "bid": q["bid_px"].to_numpy(),
        "ask": q["ask_px"].to_numpy(),
        "t_ts": t["ts_ms"].to_numpy(),
        "px": t["price"].to_numpy(),
    }


def _first_quote_after(tk: dict[str, np.ndarray], ts: int) -> tuple[int, float, float]:
    i = int(np.searchsorted(tk["q_ts"], ts, side="right"))
    assert i < len(tk["q_ts"]), f"no quote after {ts}"
    return int(tk["q_ts"][i]), float(tk["bid"][i]), float(tk["ask"][i])


def _prints_at(tk: dict[str, np.ndarray], ts: int) -> np.ndarray:
    a, b = np.searchsorted(tk["t_ts"], [ts, ts + 1])
    return np.asarray(tk["px"][a:b])


def _check_trades(recs: list[dict[str, Any]], tk: dict[str, np.ndarray], s: Any) -> int:
    slip_in = s.slippage_ticks_entry * s.tick_size
    slip_out = s.slippage_ticks_exit * s.tick_size
    eps = 1e-6
    checked = 0
    for r in recs:
        side = 1.0 if r["side"] == "LONG" else -1.0
        where = f"trade {r}"
        q_ts, bid, ask = _first_quote_after(tk, r["decision_ts_ms"])
        if r["entry_maker"]:
            prints = _prints_at(tk, r["fill_ts_ms"])
            assert r["fill_ts_ms"] >= q_ts, where
            assert (side * (prints - r["entry_price"]) < 0).any(), where
        else:
            if r["fill_ts_ms"] != q_ts:
                # a limit that timed out: market at the first quote after its window
                assert s.use_limit_for_entry, where
                window_end = r["decision_ts_ms"] + s.limit_order_timeout_minutes * 60_000
                q_ts, bid, ask = _first_quote_after(tk, window_end)
                assert r["fill_ts_ms"] == q_ts, where
            touch = ask if side > 0 else bid
            # at the quote plus slippage; a marketable limit never beyond its limit
            assert side * (r["entry_price"] - (touch + side * slip_in)) <= eps, where
            if not s.use_limit_for_entry:
                assert r["entry_price"] == pytest.approx(touch + side * slip_in, abs=eps), where
        if r["tp1_qty"]:
            prints = _prints_at(tk, r["tp1_ts_ms"])
            level = r["tp1_price"] + side * slip_out if s.use_market_for_exit else r["tp1_price"]
            assert r["tp1_ts_ms"] > r["fill_ts_ms"], where
            assert (side * (prints - level) >= -eps).any(), where
        reason = r["exit_reason"]
        if reason in ("STOP", "BREAKEVEN_STOP"):
            prints = _prints_at(tk, r["exit_ts_ms"])
            assert r["exit_ts_ms"] >= r["fill_ts_ms"], where
            assert (side * (prints - (r["exit_price"] + side * slip_out)) <= eps).any(), where
        elif reason in ("TP1", "TP2"):
            prints = _prints_at(tk, r["exit_ts_ms"])
            level = r["exit_price"] + side * slip_out if s.use_market_for_exit else r["exit_price"]
            assert r["exit_ts_ms"] > r["fill_ts_ms"], where
            assert (side * (prints - level) >= -eps).any(), where
        elif reason in MARKET_EXITS:
            x_ts, x_bid, x_ask = _first_quote_after(tk, r["exit_decision_ts_ms"])
            assert r["exit_ts_ms"] == x_ts, where
            expect = x_bid - slip_out if side > 0 else x_ask + slip_out
            assert r["exit_price"] == pytest.approx(expect, abs=eps), where
        checked += 1
    return checked


@pytest.mark.parametrize(
    "overrides",
    [
        {"use_limit_for_entry": False},
        {"use_limit_for_entry": True},
        {"use_limit_for_entry": False, "stop_fill_mode": "tick_path"},
    ],
    ids=["market", "limit", "tick_path"],
)
def test_every_fill_is_backed_by_the_ticks(
    db: Path, ticks: dict[str, np.ndarray], overrides: dict[str, Any]
) -> None:
    s = load_settings(overrides=overrides)
    out = backtest(db, s, write_report=False, store=False)
    recs = out.result.trade_records()
    assert len(recs) >= 5, f"too few trades to check: {len(recs)}"
    assert _check_trades(recs, ticks, s) == len(recs)
    assert out.result.metrics["lookahead_violations"] == 0
