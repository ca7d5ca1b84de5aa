"""Stored market data for the dashboard: minutes (bars + features), the footprint and the
volume profile at one minute.

Everything is read through ``open_query_connection`` (DuckDB stores attached READ_ONLY,
file access locked to the lake), one short-lived connection per request: a dashboard that
kept ``features.duckdb`` open would stop the live features actor from taking it for
writing, and DuckDB allows one writing process per file.

Pitfalls:

* The footprint is one aggregation (``at_core.storage.footprint``): per minute and price
  tick, then summed into bins. Its bid / ask split is the engine's inferred side (SPEC
  §5.7), the same one OF_1m counts — from the live features actor's cells where it recorded
  them, from the stored sides of a ``features`` run elsewhere, and the venue's aggressor
  flag only where no engine classified the trade; ambiguous trades are their own column.
* The profile at a minute is computed by the Rust engine (``features_profile``) from the
  ticks of the 240 minutes it covers, at that minute's stored bin width: the same code as
  ``features_1m``, so the histogram's POC / VAH / VAL are the stored ones. After a data
  hole the engine starts a new profile, so the window starts after the hole
  (``segment_start``), never 240 minutes back across it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa

from at_core import _core
from at_core.config import Settings
from at_core.errors import InputError, StorageError
from at_core.storage.footprint import (
    BIN_SQL,
    COVERED_CELLS_SQL,
    TRADE_CELLS_SQL,
    uncovered_ranges,
)
from at_core.storage.minutes import minute_columns
from at_core.storage.query import open_query_connection

MINUTE_MS = 60_000
#: the most minutes one request may ask for (a little over 31 days)
MAX_MINUTES = 45_000
#: the footprint's cap: minutes x price bins of one answer
MAX_FOOTPRINT_CELLS = 400_000


@contextmanager
def _connection(db_dir: Path, stores: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    try:
        con = open_query_connection(db_dir, memory_limit="1GB", stores=stores)
    except duckdb.IOException as exc:
        raise StorageError(
            f"a store in {db_dir} is held for writing by another process (the live graph?): {exc}"
        ) from exc
    try:
        yield con
    finally:
        con.close()


def _floats(a: np.ndarray) -> list[float | None]:
    """JSON has no NaN: missing values travel as null."""
    return [None if not math.isfinite(x) else float(x) for x in a.astype(float)]


#: epoch ms accepted at all (1970 .. 2286): beyond, DuckDB's BIGINT parameters overflow
MAX_MS = 10**13


def check_ms(x: int, what: str) -> int:
    if not 0 <= x < MAX_MS:
        raise InputError(f"{what}: {x} is not an epoch time in ms (0 .. {MAX_MS})")
    if x % MINUTE_MS:
        raise InputError(f"{what}: {x} is not a whole minute in epoch ms")
    return x


def check_range(start: int, end: int, what: str = "range") -> tuple[int, int]:
    """``[start, end)`` in epoch ms, on minute boundaries, not empty, not too long."""
    check_ms(start, f"{what} start")
    check_ms(end, f"{what} end")
    if end <= start:
        raise InputError(f"{what}: end ({end}) must be after start ({start})")
    if (end - start) // MINUTE_MS > MAX_MINUTES:
        raise InputError(
            f"{what}: {(end - start) // MINUTE_MS} minutes asked, at most {MAX_MINUTES}"
        )
    return start, end


def extent(db_dir: Path) -> dict[str, Any]:
    """The stored minutes: first and last ``ts_min`` and their count (None when empty)."""
    with _connection(db_dir) as con:
        row = con.execute("SELECT min(ts_min), max(ts_min), count(*) FROM features_1m").fetchone()
    assert row is not None
    first, last, n = row
    return {"first_ts_min": first, "last_ts_min": last, "minutes": int(n)}


def minutes(db_dir: Path, start: int, end: int) -> dict[str, Any]:
    """Bars and features of ``[start, end)``, columnar (one list per column, ``ts`` first)."""
    check_range(start, end)
    with _connection(db_dir) as con:
        return minute_columns(con, start, end)


def last_days(db_dir: Path, days: int, last: int | None = None) -> tuple[int, int]:
    """``[start, end)`` of the last ``days`` UTC days up to the last stored minute's day
    (``last``: that minute when the caller knows it, e.g. from the live graph)."""
    if not 1 <= days <= 31:
        raise InputError(f"days: 1 .. 31, got {days}")
    if last is None:
        last = extent(db_dir)["last_ts_min"]
    if last is None:
        raise InputError("days: no stored minutes in this data folder")
    end = (last // 86_400_000 + 1) * 86_400_000
    return end - days * 86_400_000, end


#: quotes read before a live window's first trade, for its prevailing quote (SPEC §5.7's
#: quote rule); BTCUSDT quotes change many times a second, so five minutes always hold one
QUOTE_LOOKBACK_MS = 5 * MINUTE_MS


class LiveTicks(Protocol):
    """What the dashboard needs of a running live graph to read ticks (``LiveLink``)."""

    def window(
        self, lo_ms: int, hi_ms: int, quotes_from_ms: int | None
    ) -> tuple[Any, int | None]: ...

    def minutes(self, start: int, end: int) -> dict[str, Any]: ...

    def footprint_bins(self, lo: int, hi: int, bin_ticks: int) -> dict[str, Any]: ...


#: the stored trades with their side: the engine's inferred one where a ``features`` run
#: stored it (``trade_sides``), else the venue's aggressor flag
_STORED_SIDES = (
    "CREATE TEMP VIEW fp AS SELECT ts_ms, price, size, "
    "coalesce(inferred_side, exchange_side, 0) AS side FROM raw_trades"
)


_TRADES_SCHEMA = pa.schema(
    [("ts_ms", pa.int64()), ("seq", pa.int64()), ("price", pa.float64()),
     ("size", pa.float64()), ("exchange_side", pa.int8()), ("side", pa.int8())]
)  # fmt: skip


def _live_trades(db_dir: Path, live: LiveTicks, lo: int, hi: int, sides: bool) -> pa.Table:
    """The trades of ``[lo, hi)`` while a live graph runs (``_TRADES_SCHEMA``; ``side``
    only asked for with ``sides``): the rows the collector still holds come through it,
    their sides classified there by the Rust engine from its quotes (the live buffer has
    no stored sides); older rows come from the lake, with the sides of the last
    ``features`` run where it stored them (the venue's flag elsewhere)."""
    t, first = live.window(lo, hi, lo - QUOTE_LOOKBACK_MS if sides else None)
    cut = hi if first is None else max(lo, min(hi, first))
    parts = []
    if cut > lo:  # the part of the window before the collector's first row: the lake
        with _connection(db_dir, stores=False) as con:
            parts.append(
                con.sql(
                    "SELECT ts_ms, seq, price, size, coalesce(exchange_side, 0)::TINYINT AS "
                    "exchange_side, coalesce(inferred_side, exchange_side, 0)::TINYINT AS side "
                    "FROM raw_trades WHERE ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms, seq",
                    params=[lo, cut],
                )
                .to_arrow_table()
                .cast(_TRADES_SCHEMA)
            )
    if t is not None and len(t["ts_ms"]):
        keep = np.asarray(t["ts_ms"]) >= cut
        cols = {f.name: np.asarray(t[f.name])[keep] if f.name in t else None
                for f in _TRADES_SCHEMA}  # fmt: skip
        if cols["side"] is None:
            cols["side"] = np.zeros(int(keep.sum()), np.int8)
        parts.append(pa.table(cols).cast(_TRADES_SCHEMA))
    return pa.concat_tables(parts) if parts else _TRADES_SCHEMA.empty_table()


def footprint(
    db_dir: Path,
    settings: Settings,
    start: int,
    end: int,
    bin_ticks: int,
    live: LiveTicks | None = None,
) -> dict[str, Any]:
    """Per minute and price bin: volume sold into the bid, bought at the ask, ambiguous,
    delta (ask - bid) and the diagonal imbalance flags (ask at a bin against bid one bin
    lower, ratio >= ``ratio``; and the mirror for the bid), for ``[start, end)``.

    Minutes the live features actor recorded cells for (``at_core.storage.footprint``)
    are summed from them — through the actor while a graph runs (``live``), from
    ``features.duckdb`` otherwise; the other minutes from the stored trades and sides
    (while a graph runs, the rows its collector still holds come through it)."""
    check_range(start, end, "footprint")
    if bin_ticks < 1 or bin_ticks > 1_000_000:
        raise InputError(f"footprint: bin_ticks must be 1 .. 1000000, got {bin_ticks}")
    tick = settings.tick_size
    params = {"tick": tick, "bt": bin_ticks, "start": start, "end": end}
    binned = BIN_SQL.format(src=TRADE_CELLS_SQL.format(src="fp"))
    parts: list[dict[str, Any]] = []
    if live is None:
        with _connection(db_dir) as con:
            got = con.execute(
                BIN_SQL.format(src=COVERED_CELLS_SQL),
                {k: params[k] for k in ("bt", "start", "end")},
            ).fetchnumpy()
            covered = con.execute(
                "SELECT ts_min FROM footprint_cover WHERE ts_min >= ? AND ts_min < ?", [start, end]
            ).fetchnumpy()["ts_min"]
            parts.append(got)
            con.execute(_STORED_SIDES)
            for lo, hi in uncovered_ranges(covered, start, end):
                parts.append(con.execute(binned, {**params, "start": lo, "end": hi}).fetchnumpy())
    else:
        got = live.footprint_bins(start, end, bin_ticks)
        parts.append(got)
        gaps = uncovered_ranges(got["covered"], start, end)
        if gaps:
            con = duckdb.connect()
            try:
                for lo, hi in gaps:
                    con.register("fp", _live_trades(db_dir, live, lo, hi, sides=True))
                    parts.append(
                        con.execute(binned, {**params, "start": lo, "end": hi}).fetchnumpy()
                    )
                    con.unregister("fp")
            finally:
                con.close()
    return _footprint_answer(_sorted_bins(parts), tick, bin_ticks)


def _sorted_bins(parts: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The bin rows of disjoint minute ranges as one table sorted by (minute, bin)."""
    cols = {
        c: np.concatenate([np.asarray(p[c]) for p in parts])
        for c in ("m", "k", "bid", "ask", "amb")
    }
    order = np.lexsort((cols["k"], cols["m"]))
    return {c: v[order] for c, v in cols.items()}


def _footprint_answer(t: dict[str, Any], tick: float, bin_ticks: int) -> dict[str, Any]:
    n = len(t["m"])
    if n > MAX_FOOTPRINT_CELLS:
        raise InputError(
            f"footprint: {n} cells for this range at {bin_ticks} ticks per bin (at most "
            f"{MAX_FOOTPRINT_CELLS}); ask for a shorter range or wider bins"
        )
    m, k = np.asarray(t["m"], dtype=np.int64), np.asarray(t["k"], dtype=np.int64)
    bid, ask = np.asarray(t["bid"], dtype=float), np.asarray(t["ask"], dtype=float)
    ratio = 3.0
    # Diagonal imbalance: the ask at bin k against the bid at bin k - 1 of the same minute
    # (buyers lifting the offer one level above where sellers hit the bid), and the bid at
    # k against the ask at k + 1. Rows are sorted by (minute, bin): the bin below is the
    # previous row when it exists. A zero on the other side is no imbalance (nothing to
    # compare: a thin level, not aggression).
    below = np.zeros(n)
    above = np.zeros(n)
    if n > 1:
        adj = (m[1:] == m[:-1]) & (k[1:] == k[:-1] + 1)
        below[1:] = np.where(adj, bid[:-1], 0.0)
        above[:-1] = np.where(adj, ask[1:], 0.0)
    ask_imb = (below > 0) & (ask >= ratio * below)
    bid_imb = (above > 0) & (bid >= ratio * above)
    width = bin_ticks * tick
    return {
        "bin_ticks": bin_ticks,
        "bin_width": width,
        "imbalance_ratio": ratio,
        "ts": [int(x) for x in m],
        "price": [round(int(x) * width, 10) for x in k],
        "bid": _floats(bid),
        "ask": _floats(ask),
        "ambiguous": _floats(np.asarray(t["amb"], dtype=float)),
        "delta": _floats(ask - bid),
        "ask_imbalance": ask_imb.tolist(),
        "bid_imbalance": bid_imb.tolist(),
    }


def profile(
    db_dir: Path, settings: Settings, ts_min: int, live: LiveTicks | None = None
) -> dict[str, Any]:
    """The volume profile the features of minute ``ts_min`` were computed from. With
    ``live``, the minute's features and ticks are read through the running graph."""
    from at_core.features.engine import trades_arrays

    check_ms(ts_min, "profile ts_min")
    window = settings.rolling_window_minutes * MINUTE_MS
    lo, hi = ts_min - window + MINUTE_MS, ts_min + MINUTE_MS
    if live is None:
        with _connection(db_dir) as con:
            rows = con.execute(
                "SELECT bin_width FROM features_1m WHERE ts_min = ?", [ts_min]
            ).fetchall()
            if not rows:
                raise InputError(f"profile: no stored features at ts_min {ts_min}")
            ts = con.execute(
                "SELECT ts_min FROM features_1m WHERE ts_min BETWEEN ? AND ? ORDER BY ts_min",
                [lo - MINUTE_MS, ts_min],
            ).fetchnumpy()["ts_min"]
            lo = segment_start(np.asarray(ts), lo)
            # The histogram needs the trades' prices and sizes only (no sides, no quotes).
            trades = con.sql(
                "SELECT * FROM raw_trades WHERE ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms, seq",
                params=[lo, hi],
            ).to_arrow_table()
        bin_width = rows[0][0]
    else:
        got = live.minutes(lo - MINUTE_MS, hi)
        if not got["ts"] or got["ts"][-1] != ts_min:
            raise InputError(f"profile: no stored features at ts_min {ts_min}")
        lo = segment_start(np.asarray(got["ts"], dtype=np.int64), lo)
        bin_width = got["bin_width"][-1]
        trades = _live_trades(db_dir, live, lo, hi, sides=False)
    return _profile_answer(settings, ts_min, bin_width, trades_arrays(trades), lo)


def _profile_answer(
    settings: Settings, ts_min: int, bin_width: Any, trades: dict[str, np.ndarray], lo: int
) -> dict[str, Any]:
    from at_core.features.engine import engine_config

    if bin_width is None or not math.isfinite(bin_width):
        raise InputError(f"profile: minute {ts_min} has no profile yet (no bin width)")
    cfg = engine_config(settings)
    s1 = _core.features_stage1(trades, None, cfg)
    p = _core.features_profile(s1, cfg, ts_min, float(bin_width))
    return {
        "ts_min": ts_min,
        "bin_width": float(bin_width),
        "price": _floats(np.asarray(p["price"])),
        "volume": _floats(np.asarray(p["volume"])),
        "poc": _nan_none(p["poc"]),
        "vah": _nan_none(p["vah"]),
        "val": _nan_none(p["val"]),
        "va_bin_count": int(p["va_bin_count"]),
        "valid": int(p["va_bin_count"]) >= settings.min_va_bins,
        "total_volume": float(p["total_volume"]),
        "window_start": lo,
    }


def segment_start(ts: np.ndarray, lo: int) -> int:
    """The first minute of the window starting at ``lo`` that the profile at the last of
    the stored minutes ``ts`` (ascending, from ``lo`` - 1 minute on) holds: stage 2 starts
    from scratch at a minute that does not follow the stored minute before it (a data hole,
    where no minute is written), so the window starts after the last such break."""
    breaks = np.flatnonzero(np.diff(ts) != MINUTE_MS)
    return max(lo, int(ts[breaks[-1] + 1])) if len(breaks) else lo


def _nan_none(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)
