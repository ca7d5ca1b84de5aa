"""Feature engine output → the backtester's minute table (:data:`MINUTE_TABLE_COLUMNS`).

Input is the MERGED stage-1 + stage-2 arrays of one run, ``{**stage1, **stage2(stage1,
settings)}`` (what ``auction-trader features`` stores under ``<db_dir>/stage1`` plus what
``at_core.features.engine.stage2`` recomputes per grid point). The table is built in Rust
(``rust/at-backtest/src/features.rs``) by the same code the streaming driver runs at every
minute close: column renames, the BVC fallback (SPEC §5.9) and the fill references (the
first quote strictly after each close; a quiet minute is skipped). Nothing is recomputed
here, and a missing column is an error naming it.

The warm-up (SPEC §16.1: no tradeable value area before 240 minutes of data) is the feature
engine's (``warmup_minutes``, stage 2), so the batch and the streaming paths share it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from at_core import _core
from at_core.backtest import MINUTE_TABLE_COLUMNS
from at_core.errors import CoreError, InputError

MINUTE_MS = 60_000


def minute_table(
    arrays: dict[str, NDArray[Any]], *, use_bvc: bool | None = None
) -> dict[str, NDArray[Any]]:
    """The backtester's table from merged stage-1 + stage-2 arrays (see the module doc).

    ``use_bvc``: the ``use_bvc_fallback`` setting (default: whether ``bvc_net`` carries
    values, which stage 2 fills only when the setting is on).
    """
    if use_bvc is None:
        bvc = arrays.get("bvc_net")
        use_bvc = bvc is not None and bool(np.isfinite(np.asarray(bvc, dtype=np.float64)).any())
    try:
        out = dict(_core.backtest_minute_table(arrays, use_bvc))
    except CoreError as exc:
        stage1_only = ("low_ts", "high_ts", "fq_ts", "fq_bid_px", "fq_ask_px")
        if "missing" in str(exc) and any(f"`{c}`" in str(exc) for c in stage1_only):
            raise InputError(
                f"{exc} (stage-1 summaries from an older feature engine: "
                "re-run `auction-trader features`)"
            ) from exc
        raise InputError(str(exc)) from exc
    return {k: out[k] for k in MINUTE_TABLE_COLUMNS}


def slice_table(table: dict[str, NDArray[Any]], lo: int, hi: int) -> dict[str, NDArray[Any]]:
    """Rows with ``lo <= ts_min <= hi`` (fill references keep pointing past the slice, to
    the real next quote; tick-path offsets are rebased)."""
    ts = table["ts_min"]
    a, b = int(np.searchsorted(ts, lo, side="left")), int(np.searchsorted(ts, hi, side="right"))
    out = {k: v[a:b] for k, v in table.items() if k not in ("tick_ts", "tick_price", "tick_start")}
    if "tick_start" in table:
        st = table["tick_start"]
        t0, t1 = int(st[a]), int(st[b])
        out["tick_ts"] = table["tick_ts"][t0:t1]
        out["tick_price"] = table["tick_price"][t0:t1]
        out["tick_start"] = (st[a : b + 1] - t0).astype(np.uint32)
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def tick_path(db_dir: str | Path, ts_min: NDArray[Any]) -> dict[str, NDArray[Any]]:
    """Trade ticks of the table's minutes for ``stop_fill_mode: tick_path``: ``tick_ts``,
    ``tick_price`` in (ts_ms, seq) order and ``tick_start`` (``n + 1`` offsets: row ``m``'s
    ticks are ``tick_start[m]:tick_start[m+1]``). Read from the lake day by day; the same
    trades stage 1 saw, in the same order."""
    from at_core.storage.lake import Lake, day_start_ms

    ts_min = np.asarray(ts_min, dtype=np.int64)
    if not len(ts_min):
        return {
            "tick_ts": np.zeros(0, np.int64),
            "tick_price": np.zeros(0, np.float64),
            "tick_start": np.zeros(1, np.uint32),
        }
    lo, hi = int(ts_min[0]), int(ts_min[-1]) + MINUTE_MS
    lake = Lake(db_dir)
    ts_parts: list[NDArray[np.int64]] = []
    px_parts: list[NDArray[np.float64]] = []
    for day in lake.days("trades"):
        d0 = day_start_ms(day)
        if d0 + 86_400_000 <= lo or d0 >= hi:
            continue
        t = lake.read_day("trades", day)
        t = t.filter(
            pc.and_(
                pc.greater_equal(t["ts_ms"], pa.scalar(lo, pa.int64())),
                pc.less(t["ts_ms"], pa.scalar(hi, pa.int64())),
            )
        )
        ts_parts.append(np.asarray(t["ts_ms"].to_numpy(), dtype=np.int64))
        px_parts.append(np.asarray(t["price"].to_numpy(), dtype=np.float64))
    tts = np.concatenate(ts_parts) if ts_parts else np.zeros(0, np.int64)
    tpx = np.concatenate(px_parts) if px_parts else np.zeros(0, np.float64)
    if len(tts) > np.iinfo(np.uint32).max:
        raise InputError("tick path: more than 2^32 trades in range; narrow --from/--to")
    edges = np.append(ts_min, ts_min[-1] + MINUTE_MS)
    start = np.searchsorted(tts, edges, side="left").astype(np.uint32)
    # minutes of the table are contiguous from stage 1; a tick outside every row's minute
    # would belong to no row: there is none when rows are contiguous
    return {
        "tick_ts": np.ascontiguousarray(tts),
        "tick_price": np.ascontiguousarray(tpx),
        "tick_start": np.ascontiguousarray(start),
    }
