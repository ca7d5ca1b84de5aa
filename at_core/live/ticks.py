"""Bybit public messages → tick rows, released in one time order.

The collector turns ``publicTrade`` and ``orderbook.1`` messages into the rows of
``raw_trades`` / ``raw_quotes`` and hands them on in the order the batch feature run uses
(time, quotes before trades within a millisecond). Two pitfalls decide the design:

* **Order across topics.** Trades and book updates are separate topics; nothing promises
  that a book update of millisecond ``t`` reaches us before a trade of ``t + 1``. Rows are
  therefore held in a small reorder buffer and released only once a strictly later
  timestamp (minus ``reorder_ms``) has been seen, or after an idle pause; the release is
  sorted, and each kind gets its sequence number at release, so ``seq`` order is time
  order. A row that arrives after its time was released is *late*: feeding it would send
  the engine back in time, so it is kept aside (``late``) and counted, never dropped
  silently and never fed.
* **Re-sent books.** Bybit re-sends an unchanged depth-1 book every 3 s with the same
  update id ``u``; that is not a new quote. A book message whose ``u`` did not advance is
  skipped; a snapshot with ``u == 1`` is a service restart and is taken.

Prices and sizes arrive as decimal strings and are parsed with ``float`` (the engine
quantises them onto the tick grid and refuses off-grid prices with the row named).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]
QUOTE, TRADE = 0, 1  # quotes sort before trades within a millisecond
MINUTE_MS = 60_000


@dataclass
class Released:
    """One release of the buffer: time-ordered rows of each kind with their seq numbers."""

    trades: Arrays | None = None
    quotes: Arrays | None = None
    #: minutes that are complete (every later row is in a later minute), ascending
    close_through: int | None = None

    @property
    def rows(self) -> int:
        n = 0
        for a in (self.trades, self.quotes):
            if a is not None:
                n += len(a["ts_ms"])
        return n

    def merged(self, later: Released) -> Released:
        """This release followed by ``later`` as one (seq numbers stay consecutive, since
        each kind's seq is given at release)."""
        return Released(
            trades=_cat(self.trades, later.trades),
            quotes=_cat(self.quotes, later.quotes),
            close_through=later.close_through
            if later.close_through is not None
            else self.close_through,
        )

    @property
    def last_ts(self) -> int | None:
        ts = [int(a["ts_ms"][-1]) for a in (self.trades, self.quotes) if a is not None]
        return max(ts) if ts else None


@dataclass
class TickBuffer:
    """The reorder buffer between the WebSocket and the stores (see module doc)."""

    next_trade_seq: int = 1
    next_quote_seq: int = 1
    reorder_ms: int = 0
    released_ts: int = -(2**62)  # every row with ts <= this has been released
    max_ts: int = -(2**62)
    late: list[dict[str, Any]] = field(default_factory=list)
    late_count: int = 0
    book_u: int | None = None
    skipped_book_resends: int = 0
    _heap: list[tuple[int, int, int, tuple[Any, ...]]] = field(default_factory=list)
    _arrival: itertools.count[int] = field(default_factory=itertools.count)

    # ---- intake ---------------------------------------------------------------------------
    def on_message(self, msg: dict[str, Any]) -> int:
        """Take one public message; returns the rows it added."""
        topic = str(msg.get("topic", ""))
        if topic.startswith("publicTrade."):
            return self._trades(msg.get("data") or [])
        if topic.startswith("orderbook.1."):
            return self._book(msg)
        return 0

    def _push(self, ts: int, kind: int, row: tuple[Any, ...], raw: dict[str, Any]) -> int:
        if ts <= self.released_ts:
            self.late_count += 1
            if len(self.late) < 10_000:
                self.late.append(
                    {"kind": "quote" if kind == QUOTE else "trade", "ts_ms": ts, **raw}
                )
            return 0
        heapq.heappush(self._heap, (ts, kind, next(self._arrival), row))
        self.max_ts = max(self.max_ts, ts)
        return 1

    def _trades(self, data: list[dict[str, Any]]) -> int:
        n = 0
        for r in data:
            ts = int(r["T"])
            side = {"Buy": 1, "Sell": -1}.get(str(r.get("S")), 0)
            row = (float(r["p"]), float(r["v"]), side, str(r.get("i", "")))
            n += self._push(ts, TRADE, row, {"price": r.get("p"), "size": r.get("v")})
        return n

    def _book(self, msg: dict[str, Any]) -> int:
        d = msg.get("data") or {}
        u = int(d.get("u", 0))
        if (
            self.book_u is not None
            and u <= self.book_u
            and not (msg.get("type") == "snapshot" and u == 1)
        ):
            self.skipped_book_resends += 1
            return 0
        self.book_u = u
        bids, asks = d.get("b") or [], d.get("a") or []
        if not bids or not asks:
            return 0  # a one-sided book is no quote (nothing to store or feed)
        ts = int(msg.get("cts") or msg.get("ts") or 0)
        row = (float(bids[0][0]), float(bids[0][1]), float(asks[0][0]), float(asks[0][1]))
        return self._push(ts, QUOTE, row, {"bid": bids[0], "ask": asks[0]})

    # ---- release ------------------------------------------------------------------------------
    def pending(self) -> int:
        return len(self._heap)

    def release(self, idle: bool = False) -> Released:
        """Release every row that can no longer be overtaken: ts < max_ts - reorder_ms
        (everything when ``idle``: no message for a while)."""
        limit = self.max_ts if idle else self.max_ts - max(self.reorder_ms, 1)
        trades: list[tuple[int, tuple[Any, ...]]] = []
        quotes: list[tuple[int, tuple[Any, ...]]] = []
        while self._heap and self._heap[0][0] <= limit:
            ts, kind, _, row = heapq.heappop(self._heap)
            (quotes if kind == QUOTE else trades).append((ts, row))
        if not trades and not quotes:
            return Released()
        self.released_ts = max(self.released_ts, limit)
        out = Released(trades=self._trade_arrays(trades), quotes=self._quote_arrays(quotes))
        # every later (non-late) row has ts > limit: minutes ending at or before it are complete
        out.close_through = ((limit + 1) // MINUTE_MS) * MINUTE_MS - MINUTE_MS
        return out

    def _trade_arrays(self, rows: list[tuple[int, tuple[Any, ...]]]) -> Arrays | None:
        if not rows:
            return None
        n = len(rows)
        seq = np.arange(self.next_trade_seq, self.next_trade_seq + n, dtype=np.int64)
        self.next_trade_seq += n
        return {
            "ts_ms": np.fromiter((r[0] for r in rows), np.int64, n),
            "seq": seq,
            "price": np.fromiter((r[1][0] for r in rows), np.float64, n),
            "size": np.fromiter((r[1][1] for r in rows), np.float64, n),
            "exchange_side": np.fromiter((r[1][2] for r in rows), np.int8, n),
            "trade_id": np.array([r[1][3] for r in rows], dtype=object),
        }

    def _quote_arrays(self, rows: list[tuple[int, tuple[Any, ...]]]) -> Arrays | None:
        if not rows:
            return None
        n = len(rows)
        seq = np.arange(self.next_quote_seq, self.next_quote_seq + n, dtype=np.int64)
        self.next_quote_seq += n
        cols = ("bid_px", "bid_sz", "ask_px", "ask_sz")
        out: Arrays = {
            "ts_ms": np.fromiter((r[0] for r in rows), np.int64, n),
            "seq": seq,
        }
        for k, c in enumerate(cols):
            out[c] = np.fromiter((r[1][k] for r in rows), np.float64, n)
        return out


def _cat(a: Arrays | None, b: Arrays | None) -> Arrays | None:
    if a is None or b is None:
        return a if b is None else b
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def engine_trades(a: Arrays | None) -> Arrays | None:
    """The engine's trade input (no trade ids) from released or stored rows."""
    if a is None or not len(a["ts_ms"]):
        return None
    return {k: a[k] for k in ("ts_ms", "seq", "price", "size", "exchange_side")}


def engine_quotes(a: Arrays | None) -> Arrays | None:
    if a is None or not len(a["ts_ms"]):
        return None
    return {k: a[k] for k in ("ts_ms", "seq", "bid_px", "bid_sz", "ask_px", "ask_sz")}
