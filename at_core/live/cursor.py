"""A consumer's place in the collector's tick log, and how it catches up.

The collector numbers trades and quotes separately (``seq``, time order within a kind) and
sends each release with the cursor it starts from. A consumer feeds a batch only when the
batch starts exactly at its own cursor. Otherwise:

* the batch ends at or before the cursor: already fed (a replay after a catch-up), skipped;
* it starts after the cursor: something was lost (the consumer restarted, a call failed),
  so the missing rows up to the batch's end are read back from ``raw.duckdb`` through the
  collector and fed instead. Rows of consecutive releases never interleave in time (every
  row of a later release is later than every row of an earlier one), so feeding a read-back
  range in one call is the same as feeding its releases one by one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from at_core.live.ticks import Arrays


@dataclass(frozen=True)
class Cursor:
    trade_seq: int = 0
    quote_seq: int = 0

    def to_json(self) -> dict[str, int]:
        return {"trade_seq": self.trade_seq, "quote_seq": self.quote_seq}

    @staticmethod
    def of(d: dict[str, Any] | None) -> Cursor:
        if not d:
            return Cursor()
        return Cursor(int(d["trade_seq"]), int(d["quote_seq"]))

    def covers(self, other: Cursor) -> bool:
        return self.trade_seq >= other.trade_seq and self.quote_seq >= other.quote_seq


def make_batch(
    trades: Arrays | None,
    quotes: Arrays | None,
    start: Cursor,
    end: Cursor,
    close_through: int | None,
) -> dict[str, Any]:
    """What the collector sends on: rows, the cursor before and after them, and the last
    complete minute."""
    return {
        "trades": trades,
        "quotes": quotes,
        "from": start.to_json(),
        "to": end.to_json(),
        "close_through": close_through,
    }


def plan(cursor: Cursor, batch: dict[str, Any]) -> str:
    """``feed`` (starts at the cursor), ``skip`` (already fed) or ``catch_up`` (rows lost)."""
    start, end = Cursor.of(batch["from"]), Cursor.of(batch["to"])
    if cursor.covers(end):
        return "skip"
    if start == cursor:
        return "feed"
    return "catch_up"


def end_of(start: Cursor, trades: Arrays | None, quotes: Arrays | None) -> Cursor:
    """The cursor after feeding ``trades`` and ``quotes`` from ``start``."""
    return Cursor(
        start.trade_seq if trades is None else int(trades["seq"][-1]),
        start.quote_seq if quotes is None else int(quotes["seq"][-1]),
    )


class Follower:
    """A consumer of the collector's batches (the features and signals actors): routes each
    batch by its cursor (``plan``) to ``_feed_batch`` or ``_catch_up``."""

    cursor: Cursor

    def on_ticks(self, batch: dict[str, Any]) -> None:
        t_in = time.time()
        what = plan(self.cursor, batch)
        if what == "skip":
            return
        if what == "catch_up":
            self._catch_up(Cursor.of(batch["to"]), batch["close_through"])
            return
        # stamps: wall times of the release and each stage so far (latency, hop by hop)
        self._feed_batch(batch, [*batch["stamps"], t_in] if batch.get("stamps") else None)

    def _feed_batch(self, batch: dict[str, Any], stamps: list[float] | None) -> None:
        raise NotImplementedError

    def _catch_up(self, upto: Cursor | None, close_through: int | None) -> None:
        raise NotImplementedError
