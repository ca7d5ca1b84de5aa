"""The backtest of the stored ticks that a live graph's decisions must equal.

The signals actor records how its driver started (``driver_starts``: fresh, or rebuilt
from the stored ticks since some minute) and every permission change with the tick cursor
and the last closed minute at that moment (``permission_log``). Replaying ``raw.duckdb``
through a fresh driver with the same starting point, the same permission changes at the
same places and the same final minute close reproduces, bit for bit, what the live graph
decided, if (and only if) the graph saw exactly the stored ticks in the stored order. The
shadow mode and the tests compare the two; any difference is a defect in the live path
(a lost, duplicated or reordered tick), never a difference of code: it is the same code.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from at_core.backtest.stream import StreamingDriver
from at_core.config import Settings
from at_core.live.ticks import Arrays
from at_core.storage.stores import StorePaths


def _q(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> Arrays | None:
    d = con.execute(sql, params).fetchnumpy()
    if not len(d["ts_ms"]):
        return None
    out: Arrays = {}
    for k, v in d.items():
        a = np.asarray(v)
        out[k] = np.ascontiguousarray(
            a.astype(np.int64)
            if k in ("ts_ms", "seq")
            else a.astype(np.int8)
            if k == "exchange_side"
            else a.astype(np.float64)
        )
    return out


def read_raw(
    raw_path: Path, t_lo: int, t_hi: int, q_lo: int, q_hi: int
) -> tuple[Arrays | None, Arrays | None]:
    """Stored rows with seq in (lo, hi] of each kind (a read-only connection: the
    collector must not be running)."""
    con = duckdb.connect(str(raw_path), read_only=True)
    try:
        t = _q(
            con,
            "SELECT ts_ms, seq, price, size, coalesce(exchange_side, 0)::TINYINT AS exchange_side "
            "FROM raw_trades WHERE seq > ? AND seq <= ? ORDER BY seq",
            [t_lo, t_hi],
        )
        q = _q(
            con,
            "SELECT ts_ms, seq, bid_px, bid_sz, ask_px, ask_sz FROM raw_quotes "
            "WHERE seq > ? AND seq <= ? ORDER BY seq",
            [q_lo, q_hi],
        )
    finally:
        con.close()
    return t, q


def replay_live(
    db_dir: str | Path, settings: Settings, upto: dict[str, int], closed_through: int | None
) -> tuple[StreamingDriver, list[dict[str, Any]]]:
    """A driver that went through what the live signals actor went through, up to the
    cursor ``upto`` and the final close ``closed_through``. Returns it and the decided
    minutes (one dict of arrays per push)."""
    paths = StorePaths(Path(db_dir))
    con = sqlite3.connect(str(paths.signals))
    try:
        start = con.execute(
            "SELECT how, from_ms, trade_seq, quote_seq FROM driver_starts ORDER BY id DESC LIMIT 1"
        ).fetchone()
        log = con.execute(
            "SELECT trade_seq, quote_seq, closed_through, permission FROM permission_log ORDER BY id"
        ).fetchall()
    finally:
        con.close()
    if start is None:
        raise ValueError(f"{paths.signals}: no driver start recorded")
    _, _, t0, q0 = start
    log = [r for r in log if (r[0], r[1]) >= (t0, q0)]
    d = StreamingDriver(settings)
    d.set_permission("close_only")
    decided: list[dict[str, Any]] = []
    ct, cq = t0, q0
    for t_seq, q_seq, closed, perm in [
        *log,
        (upto["trade_seq"], upto["quote_seq"], closed_through, None),
    ]:
        t, q = read_raw(paths.raw, ct, t_seq, cq, q_seq)
        if t is not None or q is not None:
            decided.append(d.push(t, q))
        if closed is not None:
            decided.append(d.close_until(int(closed)))
        if perm is not None:
            d.set_permission(perm)
        ct, cq = t_seq, q_seq
    return d, decided
