"""The live features actor's footprint cells: each trade's side as the engine classified it,
summed per minute and price tick into ``footprint_1m`` of ``features.duckdb``.

The engine reports sides (``take_trade_sides``) in the order the trades were pushed, but
only once a trade's timestamp group is complete: the trades of the newest timestamp wait
inside the engine. So the pushed trades queue here until their sides come out, and the
queue and the open minutes' cells travel in the actor's snapshot state beside the engine's
own snapshot, which holds that pending group.

Restart: the features after a restart are those of a run without it — the engine is
restored from a snapshot and the ticks stored after it are fed again. Cells written after
that snapshot would then be counted twice, so on restore every minute after the snapshot's
last closed minute is deleted before anything is written (they come back from the replay).
A minute's cells and its cover row are written in one transaction when the engine closes
the minute, never before: a crash leaves a minute either whole or absent.

A snapshot taken before cells were recorded (older state) cannot say which trades of the
open minute were already counted: that minute is left uncovered (the dashboard reads it
from the stored trades), and the sides of the engine's pending trades, which the queue here
never saw, are dropped. After every release the queue must hold exactly the trades the
engine still holds unclassified (``pending_trades``); when it does not, the minutes
concerned are left uncovered and the mismatch is logged, never guessed into cells.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from at_core import logging as at_logging
from at_core.storage.footprint import (
    BIN_SQL,
    CELL_COLUMNS,
    COVERED_CELLS_SQL,
    FOOTPRINT_1M_DDL,
    FOOTPRINT_COVER_DDL,
    MINUTE_MS,
    Cells,
    empty_cells,
    merge_cells,
    select,
    to_ticks,
    trade_cells,
)

log = at_logging.get(__name__)
NO_EVENT = -(2**63)


def _minute(ts: int) -> int:
    return ts - ts % MINUTE_MS


class FootprintRecorder:
    def __init__(self, con: duckdb.DuckDBPyConnection, tick_size: float) -> None:
        self.con = con
        self.tick_size = tick_size
        con.execute(FOOTPRINT_1M_DDL)
        con.execute(FOOTPRINT_COVER_DDL)
        #: trades pushed whose sides the engine has not reported yet (its pending group)
        self.queue: Cells = {"ts_ms": np.zeros(0, np.int64), "tick": np.zeros(0, np.int64),
                             "size": np.zeros(0)}  # fmt: skip
        #: cells of minutes not closed yet: summed, and per-trade rows added since
        self._open: Cells = empty_cells()
        self._open_rows: list[Cells] = []
        #: the last minute the engine closed (all cells up to it are in the table)
        self.closed_through: int | None = None
        #: minutes up to this one are incomplete here and never covered
        self.partial_through: int | None = None
        #: before the first write, delete the table's minutes from this process's first
        #: minute on (None once done, or when the restore already did)
        self._clean_first = True
        #: sides still to come of trades pushed before this recorder existed (``restore``)
        self._orphans = 0

    # ---- snapshot state -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "queue": {k: v.tolist() for k, v in self.queue.items()},
            "open": {k: v.tolist() for k, v in self._merged_open().items()},
            "closed_through": self.closed_through,
            "partial_through": self.partial_through,
        }

    def restore(self, state: dict[str, Any] | None, engine_last_ts: int, pending: int) -> None:
        """After the engine was restored from a snapshot whose actor state held ``state``
        (None: a snapshot from before cells were recorded; the engine then holds
        ``pending`` trades this recorder never saw, whose sides come first)."""
        if state is None:
            if engine_last_ts != NO_EVENT:
                self.partial_through = _minute(engine_last_ts)
            self._orphans = pending
            return
        self.queue = {
            "ts_ms": np.asarray(state["queue"]["ts_ms"], np.int64),
            "tick": np.asarray(state["queue"]["tick"], np.int64),
            "size": np.asarray(state["queue"]["size"], float),
        }
        o = state["open"]
        self._open = {c: np.asarray(o[c], np.int64 if c in ("ts_min", "tick") else float)
                      for c in CELL_COLUMNS}  # fmt: skip
        self._open_rows = []
        self.closed_through = state["closed_through"]
        self.partial_through = state["partial_through"]
        if self.closed_through is not None:
            self._delete_from(self.closed_through + MINUTE_MS)
            self._clean_first = False

    def _merged_open(self) -> Cells:
        """The open minutes' cells summed (the rows of each release are summed only here:
        once a minute, not once a release)."""
        if self._open_rows:
            self._open = merge_cells(self._open, *self._open_rows)
            self._open_rows = []
        return self._open

    def _delete_from(self, ts_min: int) -> None:
        for table in ("footprint_1m", "footprint_cover"):
            self.con.execute(f"DELETE FROM {table} WHERE ts_min >= ?", [ts_min])

    # ---- the stream ---------------------------------------------------------------------------
    def add(self, trades: dict[str, Any] | None, sides: dict[str, Any], pending: int) -> bool:
        """``trades`` just pushed into the engine (None: none), the sides it then reported
        and the number of trades it still holds unclassified (``pending_trades``). False
        when they do not add up (the minutes concerned are then left uncovered)."""
        if trades is not None and len(trades["ts_ms"]):
            new = {
                "ts_ms": np.asarray(trades["ts_ms"], np.int64),
                "tick": to_ticks(trades["price"], self.tick_size),
                "size": np.asarray(trades["size"], float),
            }
            self.queue = {k: np.concatenate((self.queue[k], v)) for k, v in new.items()}
        sign = np.asarray(sides["trade_sign"])
        if self._orphans:  # sides of trades pushed before an older snapshot (see restore)
            k = min(self._orphans, len(sign))
            sign, self._orphans = sign[k:], self._orphans - k
        n, queued = len(sign), len(self.queue["ts_ms"])
        if n > queued or queued - n != pending:
            log.error("footprint_sides_mismatch",
                      extra={"sides": n, "queued": queued, "engine_pending": pending})  # fmt: skip
            last = int(self.queue["ts_ms"][-1]) if queued else self.closed_through
            if last is not None:
                self.partial_through = max(self.partial_through or NO_EVENT, _minute(last))
            self.queue = {k: v[len(v) - min(pending, len(v)) :] for k, v in self.queue.items()}
            return False
        if n:
            q = self.queue
            got = trade_cells(q["ts_ms"][:n], q["tick"][:n], q["size"][:n], sign, merged=False)
            self.queue = {k: v[n:] for k, v in q.items()}
            self._open_rows.append(got)
        return True

    def close(self, closed_minutes: np.ndarray) -> None:
        """The engine closed these minutes: write their cells and cover them."""
        if not len(closed_minutes):
            return
        mins = np.asarray(closed_minutes, np.int64)
        last = int(mins.max())
        open_cells = self._merged_open()
        done = open_cells["ts_min"] <= last
        cells, self._open = select(open_cells, done), select(open_cells, ~done)
        if self.partial_through is not None:
            cells = select(cells, cells["ts_min"] > self.partial_through)
            mins = mins[mins > self.partial_through]
        self.con.execute("BEGIN")
        try:
            if self._clean_first:
                first = [int(mins.min())] if len(mins) else []
                first += [int(cells["ts_min"].min())] if len(cells["ts_min"]) else []
                if first:
                    self._delete_from(min(first))
                    self._clean_first = False
            if len(cells["ts_min"]):
                self.con.register("fp_new", pa.table(cells))
                self.con.execute(f"INSERT INTO footprint_1m SELECT {', '.join(CELL_COLUMNS)} "
                                 "FROM fp_new")  # fmt: skip
                self.con.unregister("fp_new")
            if len(mins):
                self.con.register("fp_cover", pa.table({"ts_min": mins}))
                self.con.execute("INSERT INTO footprint_cover SELECT ts_min FROM fp_cover")
                self.con.unregister("fp_cover")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.closed_through = last

    # ---- reads -------------------------------------------------------------------------------
    def binned(self, lo: int, hi: int, bin_ticks: int, engine_last_ts: int) -> dict[str, Any]:
        """The cells of ``[lo, hi)`` summed into bins of ``bin_ticks`` ticks (``BIN_SQL``
        columns), and the minutes they cover: the closed ones written, and the minutes
        the engine has open (their cells so far; the minute in progress is shown as far as
        the engine has seen it)."""
        covered = self.con.execute(
            "SELECT ts_min FROM footprint_cover WHERE ts_min >= ? AND ts_min < ? ORDER BY ts_min",
            [lo, hi],
        ).fetchnumpy()["ts_min"]
        covered = np.asarray(covered, np.int64)
        if engine_last_ts != NO_EVENT:
            # the minutes after the last closed one up to the engine's latest event: the
            # open minute (nothing closed yet: only the minute of the latest event)
            now = _minute(engine_last_ts)
            first_open = now if self.closed_through is None else self.closed_through + MINUTE_MS
            if self.partial_through is not None:
                first_open = max(first_open, self.partial_through + MINUTE_MS)
            first_open, now = max(first_open, lo), min(now, hi - MINUTE_MS)
            if first_open <= now:
                covered = np.r_[covered, np.arange(first_open, now + MINUTE_MS, MINUTE_MS)]
        self.con.register("fp_open", pa.table(self._merged_open()))
        try:
            src = f"(SELECT * FROM {COVERED_CELLS_SQL} UNION ALL SELECT * FROM fp_open)"
            got = self.con.execute(
                BIN_SQL.format(src=src), {"bt": bin_ticks, "start": lo, "end": hi}
            ).fetchnumpy()
        finally:
            self.con.unregister("fp_open")
        return {**{k: np.asarray(v) for k, v in got.items()}, "covered": covered}
