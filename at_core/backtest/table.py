"""Feature engine output → the backtester's minute table (:data:`MINUTE_TABLE_COLUMNS`).

Input is the MERGED stage-1 + stage-2 arrays of one run, ``{**stage1, **stage2(stage1,
settings)}`` (what ``auction-trader features`` stores under ``<db_dir>/stage1`` plus what
``at_core.features.engine.stage2`` recomputes per grid point). Everything here is a
column rename or a vectorised pass; no feature is recomputed.

Domain pitfalls handled here:

* **Fill references look ahead on purpose, and only by one quote.** A decision taken at
  the close of minute ``m`` (``ts_min + 59_999``) fills against the first L1 quote with
  ``ts >= ts_min[m] + 60_000``. Stage 1 stores each minute's *first* quote (``fq_*``), so
  the reference of row ``m`` is ``fq_*`` of the next row ``j > m`` that has one (a quiet
  minute without quote updates is skipped, the quote still in force is older than the
  close and would be a look-ahead-free but stale — and wrong — price). None after the
  last quote of the data: NaN prices, ``next_quote_ts = -1``.
* **The value area is not tradeable before the warm-up.** The feature engine's
  ``va_valid`` only checks ``min_va_bins``; in the first hours of data the 240-minute
  profile holds less than its window and a VA from 20 minutes of trades passes that
  test. SPEC §14/§15: the full warm-up is required before signals are valid, so
  ``va_valid`` here also requires that the rolling window ending at the minute starts at
  or after the first minute of data (``warmup_minutes`` minutes of history including the
  minute itself). The first minute of data may be partial if the data starts mid-minute;
  it still counts as one.
* **BVC fallback (SPEC §5.9).** Stage 2 fills ``bvc_net`` only when ``use_bvc_fallback``
  is on (NaN otherwise). When it carries values, order flow is the BVC proxy, exactly as
  ``features_1m.of_1m`` stores it; this keeps the signature settings-free so the grid can
  sweep ``use_bvc_fallback`` (a stage-2 key) through the same call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from at_core.backtest import MINUTE_TABLE_COLUMNS
from at_core.config import Settings
from at_core.errors import InputError

MINUTE_MS = 60_000

#: Table column ← engine column, for columns that are a plain copy (with dtype cast).
RENAMES: dict[str, str] = {
    "ts_min": "ts_min",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "max_trade_gap": "max_trade_gap",
    "mid_close": "mid_close",
    "spread_avg": "spread_avg_60m",
    "poc": "poc",
    "vah": "vah",
    "val": "val",
    "qimb_close": "qimb_close",
    "qimb_ema": "qimb_ema_60s",
    "ambiguous_frac": "ambiguous_trade_frac_1m",
    "low_ts": "low_ts",
    "high_ts": "high_ts",
}
#: Engine columns read besides :data:`RENAMES`.
OTHER_INPUTS = ("va_valid", "of_1m", "of_norm_1m", "fq_ts", "fq_bid_px", "fq_ask_px")


def default_warmup(settings: Settings | None = None) -> int:
    """Minutes of history a VA needs: ``max(warmup_minutes, rolling_window_minutes)``
    (the spec defaults are both 240)."""
    if settings is None:
        fields = Settings.model_fields
        return max(
            int(fields["warmup_minutes"].default), int(fields["rolling_window_minutes"].default)
        )
    return max(int(settings.warmup_minutes), int(settings.rolling_window_minutes))


def next_quote_refs(
    fq_ts: NDArray[Any], fq_bid: NDArray[Any], fq_ask: NDArray[Any]
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Row ``m`` → the first-quote fields of the first row ``j > m`` whose ``fq_ts >= 0``
    (backward fill of the next row that has a quote); -1 / NaN after the last one."""
    fq_ts = np.asarray(fq_ts, dtype=np.int64)
    n = len(fq_ts)
    has = np.flatnonzero(fq_ts >= 0)
    # index of the first row with a quote strictly after each row m
    k = np.searchsorted(has, np.arange(n, dtype=np.int64), side="right")
    ok = k < len(has)
    src = has[np.minimum(k, len(has) - 1)] if len(has) else np.zeros(n, dtype=np.int64)
    ts = np.where(ok, fq_ts[src], -1) if len(has) else np.full(n, -1, dtype=np.int64)
    bid = np.asarray(fq_bid, dtype=np.float64)
    ask = np.asarray(fq_ask, dtype=np.float64)
    if len(has):
        nb = np.where(ok, bid[src], np.nan)
        na = np.where(ok, ask[src], np.nan)
    else:
        nb = np.full(n, np.nan)
        na = np.full(n, np.nan)
    return ts.astype(np.int64), nb.astype(np.float64), na.astype(np.float64)


def warm_mask(ts_min: NDArray[Any], warmup_minutes: int) -> NDArray[np.bool_]:
    """True where the ``warmup_minutes``-minute window ending at the minute lies inside
    the data (starts at or after the first minute)."""
    ts = np.asarray(ts_min, dtype=np.int64)
    if not len(ts):
        return np.zeros(0, dtype=np.bool_)
    return np.asarray(ts - ts[0] >= (max(int(warmup_minutes), 1) - 1) * MINUTE_MS, dtype=np.bool_)


def minute_table(
    arrays: dict[str, NDArray[Any]], warmup_minutes: int | None = None
) -> dict[str, NDArray[Any]]:
    """The backtester's table from merged stage-1 + stage-2 arrays (see the module doc).

    ``warmup_minutes``: history a VA needs before it is tradeable; default
    :func:`default_warmup` of the spec defaults (240).
    """
    need = list(RENAMES.values()) + list(OTHER_INPUTS)
    missing = [k for k in need if k not in arrays]
    if missing:
        stage1_only = {"max_trade_gap", "low_ts", "high_ts", "fq_ts", "fq_bid_px", "fq_ask_px"}
        hint = (
            " (stage-1 summaries from an older feature engine: re-run `auction-trader features`)"
            if set(missing) & stage1_only
            else ""
        )
        raise InputError(f"feature arrays lack column(s) {', '.join(missing)}{hint}")
    ts = np.asarray(arrays["ts_min"], dtype=np.int64)
    n = len(ts)
    bad = [k for k in need if len(arrays[k]) != n]
    if bad:
        raise InputError(
            f"feature arrays: column(s) {', '.join(bad)} do not have the {n} rows of ts_min"
        )
    out: dict[str, NDArray[Any]] = {}
    for dst, src in RENAMES.items():
        out[dst] = np.ascontiguousarray(arrays[src], dtype=MINUTE_TABLE_COLUMNS[dst])
    vol = out["volume"]
    bvc = arrays.get("bvc_net")
    if bvc is not None and len(bvc) == n and np.isfinite(np.asarray(bvc, dtype=np.float64)).any():
        of = np.asarray(bvc, dtype=np.float64).copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            of_norm = np.where(vol > 0, of / np.where(vol > 0, vol, 1.0), np.nan)
    else:
        of = np.asarray(arrays["of_1m"], dtype=np.float64)
        of_norm = np.asarray(arrays["of_norm_1m"], dtype=np.float64)
    out["of_1m"] = np.ascontiguousarray(of)
    out["of_norm_1m"] = np.ascontiguousarray(of_norm)
    warm = warm_mask(ts, default_warmup() if warmup_minutes is None else warmup_minutes)
    out["va_valid"] = np.ascontiguousarray(np.asarray(arrays["va_valid"], dtype=np.bool_) & warm)
    nts, nb, na = next_quote_refs(arrays["fq_ts"], arrays["fq_bid_px"], arrays["fq_ask_px"])
    out["next_quote_ts"], out["next_bid"], out["next_ask"] = nts, nb, na
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
