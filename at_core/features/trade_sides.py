"""Per-trade results of the feature engine, stored beside the lake for ``raw_trades``.

SPEC §3.3 gives ``raw_trades`` the columns ``inferred_side`` (+1 buy, -1 sell, 0 ambiguous),
``quote_bid_px``, ``quote_ask_px`` and ``quote_staleness_ms``: the side the engine inferred
(§5.7, with the configured tie rule and tick-rule fallback) and the quote it was matched to.
They are results of a ``features`` run, not facts of the source file, so the immutable
lake parts are not rewritten: each run writes ``<lake>/trade_sides/date=D/sides.parquet``
(keyed by ``ts_ms``, ``seq``), which ``auction-trader sql`` joins onto ``raw_trades``.

Pitfalls handled here: the engine resolves a group of trades sharing a timestamp only when
the group ends, so its per-trade output lags the input (possibly across a day boundary) and
is matched to days by count, in input order; and a day whose (ts_ms, seq) keys are not
unique (two sources with colliding sequences) gets no sidecar at all rather than a join
that would duplicate trades: its columns stay NULL, and a warning says so.

A run's sidecars are staged (``<lake>/.trade_sides-staging-PID``) and moved into place by
``commit()`` only when the whole run succeeded: a failed ``features`` run leaves the
previous sidecars as they were (``discard()``), never half of a new run's.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from at_core import logging as at_logging
from at_core.storage.lake import sides_dir

log = at_logging.get("features")

SIDES_SCHEMA = pa.schema(
    [
        ("ts_ms", pa.int64()),
        ("seq", pa.int64()),
        ("inferred_side", pa.int8()),
        ("quote_bid_px", pa.float64()),
        ("quote_ask_px", pa.float64()),
        ("quote_staleness_ms", pa.int32()),
    ]
)


@dataclass
class _Day:
    day: dt.date
    ts_ms: np.ndarray
    seq: np.ndarray
    got: list[dict[str, np.ndarray]] = field(default_factory=list)
    n_got: int = 0


class TradeSidesWriter:
    """Collects the engine's per-trade output day by day and writes one sidecar per day."""

    def __init__(self, lake_root: Path) -> None:
        self.root = sides_dir(lake_root)
        self.stage = self.root.parent / f".trade_sides-staging-{os.getpid()}"  # tmpfiles.sweep
        self.to_remove: list[Path] = []
        self.pending: deque[_Day] = deque()
        self.written = 0
        self.skipped_days: list[dt.date] = []

    def add_day(self, day: dt.date, ts_ms: np.ndarray, seq: np.ndarray) -> None:
        """The trades of ``day`` just pushed into the engine, in push order."""
        self.pending.append(_Day(day, ts_ms, seq))

    def add_sides(self, sides: dict[str, np.ndarray]) -> None:
        """Output of ``FeatureEngine.take_trade_sides()``: the next trades, in push order."""
        n = len(sides["trade_sign"])
        at = 0
        while at < n:
            if not self.pending:
                raise RuntimeError("the engine returned more trade sides than trades pushed")
            d = self.pending[0]
            take = min(len(d.ts_ms) - d.n_got, n - at)
            d.got.append({k: v[at : at + take] for k, v in sides.items()})
            d.n_got += take
            at += take
            if d.n_got == len(d.ts_ms):
                self._write(self.pending.popleft())
        while self.pending and len(self.pending[0].ts_ms) == 0:
            self._write(self.pending.popleft())

    def finish(self) -> None:
        """After ``engine.finish()``: every pushed trade must have its side by now."""
        while self.pending and len(self.pending[0].ts_ms) == self.pending[0].n_got:
            self._write(self.pending.popleft())
        if self.pending:
            missing = sum(len(d.ts_ms) - d.n_got for d in self.pending)
            self.discard()
            raise RuntimeError(f"the engine left {missing} pushed trades without a side")

    def commit(self) -> None:
        """Move the staged sidecars into place (after the run's features are stored)."""
        for p in self.to_remove:
            p.unlink(missing_ok=True)
        if self.stage.exists():
            for f in sorted(self.stage.glob("date=*/sides.parquet")):
                dest = self.root / f.parent.name / f.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(f, dest)
            shutil.rmtree(self.stage, ignore_errors=True)

    def discard(self) -> None:
        """A failed run: drop what was staged; the stored sidecars stay as they were."""
        shutil.rmtree(self.stage, ignore_errors=True)
        self.pending.clear()

    def _write(self, d: _Day) -> None:
        final = self.root / f"date={d.day.isoformat()}" / "sides.parquet"
        out = self.stage / f"date={d.day.isoformat()}" / "sides.parquet"
        if len(d.ts_ms) == 0:
            self.to_remove.append(final)
            return
        order = np.lexsort((d.seq, d.ts_ms))
        ts, seq = d.ts_ms[order], d.seq[order]
        if bool(np.any((ts[1:] == ts[:-1]) & (seq[1:] == seq[:-1]))):
            self.skipped_days.append(d.day)
            self.to_remove.append(final)
            log.warning(
                "trade sides not stored: (ts_ms, seq) not unique on this day; raw_trades "
                "shows NULL inferred_side there",
                day=d.day.isoformat(),
            )
            return

        def cat(name: str) -> np.ndarray:
            return np.concatenate([g[name] for g in d.got])

        stale = cat("trade_staleness_ms")
        table = pa.table(
            {
                "ts_ms": pa.array(d.ts_ms, pa.int64()),
                "seq": pa.array(d.seq, pa.int64()),
                "inferred_side": pa.array(cat("trade_sign").astype(np.int8)),
                "quote_bid_px": pa.array(cat("trade_bid_px"), mask=np.isnan(cat("trade_bid_px"))),
                "quote_ask_px": pa.array(cat("trade_ask_px"), mask=np.isnan(cat("trade_ask_px"))),
                "quote_staleness_ms": pa.array(stale.astype(np.int32), mask=stale < 0),
            },
            schema=SIDES_SCHEMA,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".sides-{os.getpid()}.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, out)
        self.written += len(d.ts_ms)
