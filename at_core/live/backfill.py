"""A warm start: the lake's ticks just before the live feed, loaded into ``raw.duckdb``.

The live graph needs ``warmup_minutes`` of ticks before it may trade (the 240-minute
profile and sigma). When the lake already holds the minutes just before the feed starts
(downloaded or recorded history, a replayed market), ``warm_from_lake`` copies them into
``raw.duckdb`` before the graph starts; the features and signals actors then rebuild from
them and the graph is warm at once. It never writes over anything: with any row at or
after the window's start already stored it does nothing. The join to the live
feed is recorded by the collector like any other restart (``feed_gaps``), so a hole
between the history and the first live tick is visible, never hidden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from at_core.errors import InputError
from at_core.live.raw_store import RawStore
from at_core.live.ticks import Released
from at_core.storage.lake import Lake, day_of_ms
from at_core.storage.stores import init_store

MINUTE_MS = 60_000


def _window(lake: Lake, kind: str, lo: int, hi: int) -> pa.Table:
    parts = []
    day = day_of_ms(lo)
    last = day_of_ms(hi - 1)
    while day <= last:
        t = lake.read_day(kind, day)  # type: ignore[arg-type]
        if t.num_rows:
            m = pc.and_(pc.greater_equal(t["ts_ms"], lo), pc.less(t["ts_ms"], hi))
            parts.append(t.filter(m))
        day = day.fromordinal(day.toordinal() + 1)
    if not parts:
        return pa.table({})
    return pa.concat_tables(parts)


def warm_from_lake(
    db_dir: str | Path, lake_dir: str | Path, until_ms: int, minutes: int
) -> dict[str, Any]:
    """Copy the lake's trades and quotes of ``[until_ms - minutes, until_ms)`` into
    ``raw.duckdb`` (which no process may hold: run before the graph starts)."""
    lo = (until_ms // MINUTE_MS - minutes) * MINUTE_MS
    lake = Lake(lake_dir)
    trades = _window(lake, "trades", lo, until_ms)
    quotes = _window(lake, "quotes", lo, until_ms)
    if trades.num_rows == 0 or quotes.num_rows == 0:
        raise InputError(
            f"the lake in {lake.root} holds {trades.num_rows} trades and {quotes.num_rows} "
            f"quotes in the {minutes} minutes before {until_ms}: nothing to warm up from"
        )
    paths = init_store(db_dir, "raw")
    store = RawStore(paths.raw)
    try:
        last = store.last()
        if max(last["trade_ts"], last["quote_ts"]) >= lo:
            return {"written": False, "why": "raw.duckdb already holds ticks in the window"}
        trades = trades.sort_by([("ts_ms", "ascending"), ("seq", "ascending")])
        quotes = quotes.sort_by([("ts_ms", "ascending"), ("seq", "ascending")])
        nt, nq = trades.num_rows, quotes.num_rows
        side = trades["exchange_side"].to_numpy(zero_copy_only=False)
        t = {
            "ts_ms": trades["ts_ms"].to_numpy().astype(np.int64),
            "seq": np.arange(last["trade_seq"] + 1, last["trade_seq"] + 1 + nt, dtype=np.int64),
            "price": trades["price"].to_numpy().astype(np.float64),
            "size": trades["size"].to_numpy().astype(np.float64),
            "exchange_side": np.nan_to_num(np.asarray(side, dtype=np.float64)).astype(np.int8),
            "trade_id": np.array(trades["trade_id"].to_pylist(), dtype=object),
        }
        q = {
            "ts_ms": quotes["ts_ms"].to_numpy().astype(np.int64),
            "seq": np.arange(last["quote_seq"] + 1, last["quote_seq"] + 1 + nq, dtype=np.int64),
        }
        for c in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
            q[c] = quotes[c].to_numpy().astype(np.float64)
        store.append(Released(trades=t, quotes=q))
    finally:
        store.close()
    return {"written": True, "from_ms": lo, "until_ms": until_ms, "trades": nt, "quotes": nq}
