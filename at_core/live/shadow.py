"""Shadow mode's continuous comparison (SPEC §11.3): the live decisions and paper fills
against a backtest of the same stored ticks.

A second driver starts from the live driver's exact state (its snapshot) and is fed, at
every minute close, the ticks read back from ``raw.duckdb`` (not the releases the live
driver took), with the operator's permission changes at the same cursors. Every minute
both decided is compared (action, reason, setup flags) and every trade both closed
(entry and exit times and prices, quantities, fees, P&L). They run the same code, so a
difference can only come from the live path: a release lost, duplicated or reordered on
its way, a tick fed that the store lacks. A difference is recorded in ``divergence``
(signals.db), raises ``shadow_divergence``, and trading goes on (alert only, §11.3).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from at_core.backtest.stream import StreamingDriver
from at_core.config import Settings
from at_core.live.cursor import Cursor
from at_core.live.ticks import Arrays

DDL = """CREATE TABLE IF NOT EXISTS divergence (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms     INTEGER NOT NULL,
    ts_min    INTEGER,
    kind      TEXT NOT NULL,
    live      TEXT,
    backtest  TEXT
)"""
TRADE_KEYS = (
    "side", "decision_ts_ms", "fill_ts_ms", "entry_price", "qty", "exit_ts_ms", "exit_price",
    "fees", "funding", "net_pnl",
)  # fmt: skip
Fetch = Callable[[Cursor, Cursor], tuple[Arrays | None, Arrays | None]]


def _same(a: Any, b: Any) -> bool:
    fa, fb = isinstance(a, float), isinstance(b, float)
    if fa and fb and a != a and b != b:
        return True
    return bool(a == b)


class ShadowCheck:
    def __init__(
        self, blob: bytes, settings: Settings, fills: str, cursor: Cursor, closed: int | None
    ) -> None:
        self.d = StreamingDriver.restore(blob, settings, fills=fills)
        self.cursor = cursor
        self.closed = closed
        self.perms: list[tuple[Cursor, int | None, str]] = []
        self.live: dict[int, tuple[int, int, int]] = {}
        self.trades_checked = self.d.state()["trades"]
        self.minutes_compared = 0
        self.divergences = 0

    def note_live(self, got: list[dict[str, Any]]) -> None:
        for g in got:
            for i in range(len(g["ts_min"])):
                self.live[int(g["ts_min"][i])] = (
                    int(g["action"][i]), int(g["reason"][i]), int(g["signals"][i])
                )  # fmt: skip

    def note_permission(self, cursor: Cursor, closed: int | None, permission: str) -> None:
        self.perms.append((cursor, closed, permission))

    def advance(
        self, fetch: Fetch, upto: Cursor, closed: int | None, live: StreamingDriver
    ) -> list[dict[str, Any]]:
        """Feed the stored ticks up to ``upto`` and compare; returns the differences."""
        got: list[dict[str, Any]] = []
        stops = [p for p in self.perms if upto.covers(p[0])]
        self.perms = [p for p in self.perms if not upto.covers(p[0])]
        for cur, cl, perm in [*stops, (upto, closed, None)]:
            if not (self.cursor.covers(cur)):
                t, q = fetch(self.cursor, cur)
                if t is not None or q is not None:
                    got.append(self.d.push(t, q))
                self.cursor = cur
            if cl is not None and (self.closed is None or cl > self.closed):
                got.append(self.d.close_until(int(cl)))
                self.closed = cl
            if perm is not None:
                self.d.set_permission(perm)
        out: list[dict[str, Any]] = []
        for g in got:
            for i in range(len(g["ts_min"])):
                ts = int(g["ts_min"][i])
                mine = (int(g["action"][i]), int(g["reason"][i]), int(g["signals"][i]))
                theirs = self.live.pop(ts, None)
                self.minutes_compared += 1
                if theirs != mine:
                    out.append({"ts_min": ts, "kind": "decision", "live": theirs, "backtest": mine})
        n_live, n_me = live.state()["trades"], self.d.state()["trades"]
        upto_n = min(n_live, n_me)
        if upto_n > self.trades_checked:
            a = live.trades_since(self.trades_checked)
            b = self.d.trades_since(self.trades_checked)
            for k in range(upto_n - self.trades_checked):
                la = {c: _py(a[c][k]) for c in TRADE_KEYS}
                lb = {c: _py(b[c][k]) for c in TRADE_KEYS}
                if not all(_same(la[c], lb[c]) for c in TRADE_KEYS):
                    out.append({"ts_min": None, "kind": "trade", "live": la, "backtest": lb})
            self.trades_checked = upto_n
        self.divergences += len(out)
        return out


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def record(con: sqlite3.Connection, diffs: list[dict[str, Any]]) -> None:
    now = int(time.time() * 1000)
    with con:
        con.executemany(
            "INSERT INTO divergence (ts_ms, ts_min, kind, live, backtest) VALUES (?, ?, ?, ?, ?)",
            [
                [now, d["ts_min"], d["kind"], json.dumps(d["live"], default=str),
                 json.dumps(d["backtest"], default=str)]
                for d in diffs
            ],
        )  # fmt: skip


def report(con: sqlite3.Connection, last: int = 100) -> list[dict[str, Any]]:
    try:
        rows = con.execute(
            "SELECT ts_ms, ts_min, kind, live, backtest FROM divergence ORDER BY id DESC LIMIT ?",
            [last],
        ).fetchall()
    except sqlite3.OperationalError:  # no shadow run yet
        return []
    return [
        {"ts_ms": a, "ts_min": b, "kind": k, "live": json.loads(lv), "backtest": json.loads(bt)}
        for a, b, k, lv, bt in reversed(rows)
    ]
