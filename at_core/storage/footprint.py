"""Footprint cells: per minute and price tick, the volume sold into the bid, bought at the
ask, and ambiguous — the one aggregation the dashboard's footprint is served from.

The live features actor keeps them in ``features.duckdb`` as its engine classifies each
trade (``footprint_1m``, one row per minute and traded tick; ``footprint_cover``, one row per
minute whose cells are complete), so a 4-hour footprint is a few ten thousand cells summed
into price bins, not half a million trades and their quotes read back and reclassified.
Where no cells cover a minute (data from before the live graph, a batch store) the same
aggregation runs over the stored trades and their stored sides (``TRADE_CELLS_SQL``).

Pitfalls:

* Prices become whole ticks by rounding (``round(price / tick)``) before any ``floor``: a
  float division such as 100.3 / 0.1 = 1002.9999... would put a trade in the tick below.
  A bin is then ``floor(tick / bin_ticks)``, exact in integers, so cells at one tick and
  trades binned directly land in the same bins.
* The side is the engine's inferred one (SPEC §5.7, the sign OF_1m counts); ambiguous
  trades are their own column, never guessed into a side.
* A minute is covered only once all its trades are in its cells: a minute the engine saw
  only part of (a restart from an older snapshot format) is left uncovered, so the reader
  falls back to the stored trades for it rather than showing half a minute as whole.
"""

from __future__ import annotations

import numpy as np

MINUTE_MS = 60_000

FOOTPRINT_1M_DDL = """CREATE TABLE IF NOT EXISTS footprint_1m (
    ts_min  BIGINT NOT NULL,
    tick    BIGINT NOT NULL,
    bid     DOUBLE NOT NULL,
    ask     DOUBLE NOT NULL,
    amb     DOUBLE NOT NULL
)"""

FOOTPRINT_COVER_DDL = """CREATE TABLE IF NOT EXISTS footprint_cover (
    ts_min  BIGINT NOT NULL
)"""

#: the cells of a relation ``{src}`` of cells summed into price bins of ``$bt`` ticks for
#: the minutes in ``[$start, $end)`` (rows sorted by minute, then bin)
BIN_SQL = """
    SELECT ts_min AS m, floor(tick / $bt)::BIGINT AS k, sum(bid) AS bid, sum(ask) AS ask,
           sum(amb) AS amb
    FROM {src} WHERE ts_min >= $start AND ts_min < $end
    GROUP BY m, k ORDER BY m, k
"""

#: the stored cells of covered minutes only (a minute's cells are trusted with its cover row)
COVERED_CELLS_SQL = """
    (SELECT * FROM footprint_1m WHERE ts_min >= $start AND ts_min < $end AND ts_min IN
       (SELECT ts_min FROM footprint_cover WHERE ts_min >= $start AND ts_min < $end))
"""

#: per-trade cells of a relation ``{src}`` of trades with a ``side`` (+1 ask, -1 bid, 0
#: ambiguous), filtered on ``ts_ms`` so the scan below can skip what is out of the window
TRADE_CELLS_SQL = """
    (SELECT (ts_ms // 60000) * 60000 AS ts_min, round(price / $tick)::BIGINT AS tick,
            CASE WHEN side < 0 THEN size ELSE 0 END AS bid,
            CASE WHEN side > 0 THEN size ELSE 0 END AS ask,
            CASE WHEN side = 0 THEN size ELSE 0 END AS amb
     FROM {src} WHERE ts_ms >= $start AND ts_ms < $end)
"""

CELL_COLUMNS = ("ts_min", "tick", "bid", "ask", "amb")

Cells = dict[str, np.ndarray]


def empty_cells() -> Cells:
    return {
        "ts_min": np.zeros(0, np.int64),
        "tick": np.zeros(0, np.int64),
        "bid": np.zeros(0),
        "ask": np.zeros(0),
        "amb": np.zeros(0),
    }


def to_ticks(price: np.ndarray, tick_size: float) -> np.ndarray:
    """Whole ticks of prices on the tick grid (see the module's pitfalls)."""
    return np.rint(np.asarray(price, dtype=float) / tick_size).astype(np.int64)


def trade_cells(
    ts_ms: np.ndarray, tick: np.ndarray, size: np.ndarray, sign: np.ndarray, merged: bool = True
) -> Cells:
    """The cells of classified trades (``sign`` +1 bought at the ask, -1 sold into the bid,
    0 ambiguous), summed per minute and tick (``merged=False``: one row per trade, to be
    summed later with ``merge_cells``)."""
    ts_ms = np.asarray(ts_ms, dtype=np.int64)
    size = np.asarray(size, dtype=float)
    sign = np.asarray(sign)
    rows = {
        "ts_min": ts_ms - ts_ms % MINUTE_MS,
        "tick": np.asarray(tick, dtype=np.int64),
        "bid": np.where(sign < 0, size, 0.0),
        "ask": np.where(sign > 0, size, 0.0),
        "amb": np.where(sign == 0, size, 0.0),
    }
    return merge_cells(rows) if merged else rows


def merge_cells(*parts: Cells) -> Cells:
    """One row per (minute, tick), volumes summed, sorted by minute then tick."""
    cols = {c: np.concatenate([p[c] for p in parts]) for c in CELL_COLUMNS} if parts else None
    if cols is None or not len(cols["ts_min"]):
        return empty_cells()
    order = np.lexsort((cols["tick"], cols["ts_min"]))
    m, k = cols["ts_min"][order], cols["tick"][order]
    first = np.flatnonzero(np.r_[True, (m[1:] != m[:-1]) | (k[1:] != k[:-1])])
    out: Cells = {"ts_min": m[first], "tick": k[first]}
    for c in ("bid", "ask", "amb"):
        out[c] = np.add.reduceat(cols[c][order], first)
    return out


def select(cells: Cells, keep: np.ndarray) -> Cells:
    return {c: cells[c][keep] for c in CELL_COLUMNS}


def uncovered_ranges(covered: np.ndarray, start: int, end: int) -> list[tuple[int, int]]:
    """The ``[lo, hi)`` runs of minutes of ``[start, end)`` not in ``covered``."""
    mins = np.arange(start, end, MINUTE_MS, dtype=np.int64)
    missing = mins[~np.isin(mins, np.asarray(covered, dtype=np.int64))]
    if not len(missing):
        return []
    breaks = np.flatnonzero(np.diff(missing) != MINUTE_MS)
    starts = np.r_[missing[0], missing[breaks + 1]]
    ends = np.r_[missing[breaks], missing[-1]] + MINUTE_MS
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]
