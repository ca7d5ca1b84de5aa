"""The minute rows a chart draws: bars joined with features, one query for every reader.

The dashboard reads them through a read-only connection over the stores when no live graph
runs, and through the live features actor (the one process that holds ``features.duckdb``
open for writing) when one does; both call ``minute_columns`` so the two paths cannot
disagree on a column.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: bars_1m columns first, then features_1m columns
BAR_COLUMNS = ("open", "high", "low", "close", "volume", "trade_count")
FEATURE_COLUMNS = (
    "poc", "vah", "val", "va_bin_count", "bin_width",
    "of_1m", "of_norm_1m", "qimb_close", "qimb_ema_60s", "ambiguous_trade_frac_1m",
)  # fmt: skip
MINUTE_COLUMNS = BAR_COLUMNS + FEATURE_COLUMNS

MINUTES_SQL = (
    "SELECT f.ts_min AS ts, "
    + ", ".join([f"b.{c}" for c in BAR_COLUMNS] + [f"f.{c}" for c in FEATURE_COLUMNS])
    + ", CASE WHEN g.ts_min IS NULL THEN NULL ELSE coalesce(g.reason, 'feed gap') END AS gap"
    " FROM {features} f JOIN {bars} b USING (ts_min) LEFT JOIN minute_flags g"
    " ON g.ts_min = f.ts_min AND g.gap WHERE f.ts_min >= ? AND f.ts_min < ? ORDER BY f.ts_min"
)


def _floats(a: Any) -> list[float | None]:
    """JSON has no NaN: missing values travel as null."""
    if np.ma.isMaskedArray(a):
        a = np.ma.filled(a.astype(float), np.nan)
    return [None if not math.isfinite(x) else float(x) for x in np.asarray(a, dtype=float)]


def minute_columns(con: Any, start: int, end: int, features: str = "features_1m",
                   bars: str = "bars_1m") -> dict[str, Any]:  # fmt: skip
    """``[start, end)`` as columns: ``ts`` (epoch ms) and one list per ``MINUTE_COLUMNS``
    entry, nulls for missing values, and ``gap``: the reason a recorded live feed gap
    touched the minute (its bar may miss trades the venue printed), else null. ``con``: any
    DuckDB connection that sees both tables and ``minute_flags``."""
    t = con.execute(MINUTES_SQL.format(features=features, bars=bars), [start, end]).fetchnumpy()
    out: dict[str, Any] = {"ts": [int(x) for x in t["ts"]]}
    for c in MINUTE_COLUMNS:
        out[c] = _floats(t[c])
    gap = t["gap"]
    out["gap"] = [None if np.ma.is_masked(g) or g is None else str(g) for g in gap]
    return out
