"""What a live graph stored in SQLite, for the dashboard: its trades (``live_trades`` in
``execution.db``), its per-minute decisions with reason codes (``signals_1m`` in
``signals.db``) and its realised P&L. SQLite allows readers beside the writing actors, so
these are read directly, while the graph runs or after it stopped.

Pitfall: ``live_trades`` names the targets ``tp1`` / ``tp2`` where ``backtest_trades`` says
``tp1_price_target`` / ``tp2_price_target``; rows leave here in the backtest's shape so one
chart overlay draws both.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

from at_core.errors import InputError
from at_core.storage.stores import StorePaths

SIGNAL_FLAGS = (
    "signal_breakin_long", "signal_breakin_short", "signal_breakout_long",
    "signal_breakout_short", "signal_failbreak_long", "signal_failbreak_short",
)  # fmt: skip
MAX_ROWS = 5000


def _ro(path: Path) -> sqlite3.Connection | None:
    if not path.exists():
        return None
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _has(con: sqlite3.Connection, table: str) -> bool:
    q = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return con.execute(q, [table]).fetchone() is not None


def trades(db_dir: Path) -> list[dict[str, Any]]:
    """Every live trade, oldest first, in the shape of a backtest's trades."""
    from at_core.live.execution_actor import TRADE_COLUMNS

    con = _ro(StorePaths(db_dir).execution)
    if con is None:
        return []
    try:
        if not _has(con, "live_trades"):
            return []
        cols = ("session", "trade_no", "mode", *TRADE_COLUMNS)
        rows = con.execute(
            f"SELECT {', '.join(cols)} FROM live_trades ORDER BY fill_ts_ms, trade_no"
        ).fetchall()
    finally:
        con.close()
    out = []
    for r in rows:
        t = {c: _clean(v) for c, v in zip(cols, r, strict=True)}
        side = t["side"]
        if isinstance(side, int | float):
            t["side"] = "LONG" if side > 0 else "SHORT"
        for k in [c for c in t if c.endswith("_ts_ms")]:
            if isinstance(t[k], float):
                t[k] = int(t[k])
        t["tp1_price_target"] = t.pop("tp1")
        t["tp2_price_target"] = t.pop("tp2")
        out.append(t)
    return out


def pnl(db_dir: Path) -> dict[str, Any]:
    """Realised P&L after each closed live trade (net of fees and funding)."""
    ts, cum, total = [], [], 0.0
    for t in trades(db_dir):
        if t.get("exit_ts_ms") is not None and t.get("net_pnl") is not None:
            total += float(t["net_pnl"])
            ts.append(int(t["exit_ts_ms"]))
            cum.append(total)
    return {"ts": ts, "realised": cum}


def signals(
    db_dir: Path, since: int = 0, active_only: bool = True, limit: int = 50
) -> list[dict[str, Any]]:
    """The graph's decisions, newest first: with ``active_only``, the minutes where a
    setup fired or an action other than none was chosen, with the reason code."""
    if not 1 <= limit <= MAX_ROWS:
        raise InputError(f"limit: 1 .. {MAX_ROWS}, got {limit}")
    con = _ro(StorePaths(db_dir).signals)
    if con is None:
        return []
    try:
        if not _has(con, "signals_1m"):
            return []
        cols = ("ts_min", *SIGNAL_FLAGS, "acceptance_state", "chosen_action", "reason_code")
        where = "ts_min >= ?"
        if active_only:
            where += " AND (" + " OR ".join(f"{f} = 1" for f in SIGNAL_FLAGS)
            where += " OR coalesce(chosen_action, 'none') NOT IN ('none', 'NONE', 'hold', 'HOLD'))"
        rows = con.execute(
            f"SELECT {', '.join(cols)} FROM signals_1m WHERE {where} ORDER BY ts_min DESC LIMIT ?",
            [since, limit],
        ).fetchall()
    finally:
        con.close()
    out = []
    for r in rows:
        d = dict(zip(cols, r, strict=True))
        d["signals"] = [f.removeprefix("signal_") for f in SIGNAL_FLAGS if d.pop(f) == 1]
        try:  # the acceptance state is the kernel's JSON; its mode is what a trader reads
            d["acceptance_state"] = json.loads(d["acceptance_state"] or "{}").get("mode")
        except (ValueError, AttributeError):
            d["acceptance_state"] = None
        out.append(d)
    return out
