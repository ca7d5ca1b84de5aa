"""Stored backtests for the dashboard: runs, metrics, trades, and the per-minute equity
with its drawdown (``backtest_runs`` / ``backtest_trades`` in ``execution.db``).

The equity is the curve the backtester measured its drawdown on, stored with the run;
runs stored before it was kept have none (``equity`` is then empty and says so), and
the dashboard never rebuilds it from the trades (that would miss open-position marks).
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

from at_core.storage.stores import StorePaths, connect_sqlite, init_execution_db

_TRADE_COLUMNS = (
    "trade_no", "side", "setup", "entry_reason", "decision_ts_ms", "fill_ts_ms",
    "entry_price", "entry_maker", "qty", "stop_initial", "tp1_price_target",
    "tp2_price_target", "tp1_ts_ms", "tp1_price", "tp1_qty", "exit_decision_ts_ms",
    "exit_ts_ms", "exit_price", "exit_reason", "gross_pnl", "fees", "funding",
    "slippage_cost", "net_pnl",
)  # fmt: skip


def _con(db_dir: Path) -> sqlite3.Connection:
    path = StorePaths(db_dir).execution
    init_execution_db(path)
    return connect_sqlite(path)


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def runs(db_dir: Path) -> list[dict[str, Any]]:
    con = _con(db_dir)
    try:
        rows = con.execute(
            "SELECT r.run_id, r.created_at, r.from_ts_min, r.to_ts_min, r.n_minutes, "
            "r.metrics_json, (SELECT count(*) FROM backtest_trades t WHERE t.run_id = r.run_id) "
            "FROM backtest_runs r ORDER BY r.created_at DESC"
        ).fetchall()
    finally:
        con.close()
    out = []
    for run_id, created, frm, to, n, mj, n_trades in rows:
        m = json.loads(mj)
        out.append(
            {
                "run_id": run_id,
                "created_at": created,
                "from_ts_min": frm,
                "to_ts_min": to,
                "n_minutes": n,
                "n_trades": n_trades,
                "net_pnl": _clean(m.get("net_pnl")),
                "sharpe": _clean(m.get("sharpe")),
                "max_drawdown_pct": _clean(m.get("max_drawdown_pct")),
            }
        )
    return out


def detail(db_dir: Path, run_id: str) -> dict[str, Any]:
    con = _con(db_dir)
    try:
        row = con.execute(
            "SELECT created_at, from_ts_min, to_ts_min, n_minutes, settings_json, metrics_json, "
            "equity_ts, equity FROM backtest_runs WHERE run_id = ?",
            [run_id],
        ).fetchone()
        if row is None:
            raise LookupError(f"no backtest run {run_id!r}")
        trades = con.execute(
            f"SELECT {', '.join(_TRADE_COLUMNS)} FROM backtest_trades WHERE run_id = ? "
            "ORDER BY trade_no",
            [run_id],
        ).fetchall()
    finally:
        con.close()
    created, frm, to, n, sj, mj, ets, eqb = row
    ts = np.frombuffer(ets, dtype="<i8") if ets else np.zeros(0, dtype=np.int64)
    eq = np.frombuffer(eqb, dtype="<f8") if eqb else np.zeros(0)
    peak = np.maximum.accumulate(eq) if len(eq) else eq
    dd = np.where(peak > 0, eq / peak - 1.0, 0.0) if len(eq) else eq
    return {
        "run_id": run_id,
        "created_at": created,
        "from_ts_min": frm,
        "to_ts_min": to,
        "n_minutes": n,
        "settings": json.loads(sj),
        "metrics": {k: _clean(v) for k, v in json.loads(mj).items()},
        "trades": [{c: _clean(v) for c, v in zip(_TRADE_COLUMNS, t, strict=True)} for t in trades],
        "equity": {
            "ts": [int(x) for x in ts],
            "equity": [float(x) for x in eq],
            "drawdown": [float(x) for x in dd],
            "note": None if len(eq) else "this run was stored before equity curves were kept",
        },
    }
