"""The lake's sources: what each import (or generator run) stored, and on which market.

A *source* is one imported file (or one generator run), identified by the hash of its
content. The manifest (``<db_dir>/lake/_imports.sqlite``, table ``imports``) records per
source its path and format, the **instrument** it holds (venue, symbol, contract unit) and
the **time range of each stream** (trades, quotes) it stored. That is what lets the
importer refuse what would corrupt the store silently:

* another market (Bitmex XBTUSD sized in USD contracts, Huobi BTC-USD, a synthetic market
  beside real days) — one store keeps one venue's instrument;
* the same stream twice (the same quotes from a raw capture and from its CSV export:
  quotes carry no id to de-duplicate on) — a source whose range of a stream overlaps
  another source's range of that stream is refused unless the import is told to
  *replace* the other (``--force``), which removes the other source's rows of that stream.

``auction-trader sources list`` shows the manifest, ``sources remove ID`` deletes a
source's rows. Manifests written before these columns existed are migrated in place
(columns added; a stream range unknown for an old source is read from its parts once).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from at_core.errors import InputError

if TYPE_CHECKING:
    from at_core.storage.lake import Kind, Lake

STREAMS: tuple[Kind, ...] = ("trades", "quotes")

_COLUMNS = (
    ("venue", "TEXT"),
    ("symbol", "TEXT"),
    ("unit", "TEXT"),
    ("trades_first", "INTEGER"),
    ("trades_last", "INTEGER"),
    ("quotes_first", "INTEGER"),
    ("quotes_last", "INTEGER"),
)


def short_id(source_id: str) -> str:
    """What `sources list` shows: 12 hex digits of a content hash (a unique prefix in
    practice), a readable id (a generator run's) in full."""
    if len(source_id) > 12 and all(c in "0123456789abcdef" for c in source_id):
        return source_id[:12]
    return source_id


def normalize_symbol(symbol: str) -> str:
    """``BTC-USDT``, ``btcusdt``, ``BTC/USDT`` → ``BTCUSDT`` (venues spell one pair apart)."""
    return "".join(ch for ch in symbol.upper() if ch.isalnum())


def contract_unit(symbol: str) -> str:
    """What a size counts: the base coin for USDT/USDC-quoted linear contracts and spot
    pairs (``BTC``), contracts of the quote currency otherwise (inverse and quanto
    contracts such as XBTUSD or BTC-USD: not comparable with a BTC size)."""
    s = normalize_symbol(symbol)
    for quote in ("USDT", "USDC", "BUSD", "FDUSD"):
        if s.endswith(quote) and len(s) > len(quote):
            return s[: -len(quote)]
    return "contracts"


@dataclass
class Source:
    """One row of the manifest."""

    source_id: str
    path: str
    format: str
    trades: int
    quotes: int
    rejected: int
    imported_at: int
    venue: str | None = None
    symbol: str | None = None
    unit: str | None = None
    ranges: dict[str, tuple[int, int] | None] = field(default_factory=dict)

    def rows(self, stream: str) -> int:
        return self.trades if stream == "trades" else self.quotes

    def instrument(self) -> str:
        v = self.venue or "unknown venue"
        s = self.symbol or "unknown symbol"
        return f"{v} {s}"

    def describe(self) -> str:
        return f"source {short_id(self.source_id)} ({Path(self.path).name}, {self.format}, {self.instrument()})"


class Sources:
    """The manifest of one lake."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.path = lake.root / "_imports.sqlite"

    def _connect(self) -> sqlite3.Connection:
        self.lake.root.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path)
        have = {r[1] for r in con.execute("PRAGMA table_info(imports)")}
        try:
            if not have:
                con.execute(
                    """CREATE TABLE IF NOT EXISTS imports (
                        source_id TEXT PRIMARY KEY, path TEXT NOT NULL, format TEXT NOT NULL,
                        trades INTEGER NOT NULL, quotes INTEGER NOT NULL,
                        rejected INTEGER NOT NULL, imported_at INTEGER NOT NULL)"""
                )
            for name, typ in _COLUMNS:
                if (
                    have and name not in have
                ) or not have:  # additive migration of an older manifest
                    con.execute(f"ALTER TABLE imports ADD COLUMN {name} {typ}")
        except sqlite3.OperationalError:
            if not have:
                raise
            # a read-only folder: read what is there (missing columns read as unknown)
        con.row_factory = sqlite3.Row
        return con

    # ---- reading -------------------------------------------------------------------
    def all(self) -> list[Source]:
        """Every source, oldest first, with the stream ranges (read from the parts once
        for sources recorded before ranges were)."""
        if not self.path.exists():
            return []
        with closing(self._connect()) as con:
            rows = [dict(r) for r in con.execute("SELECT * FROM imports ORDER BY imported_at")]
        out = [self._source(r) for r in rows]
        for s in out:
            for stream in STREAMS:
                if s.ranges.get(stream) is None and s.rows(stream) > 0:
                    s.ranges[stream] = self._range_from_parts(s.source_id, stream)
                    if s.ranges[stream] is not None:
                        self._save_range(s.source_id, stream, s.ranges[stream])
        return out

    def get(self, source_id: str) -> Source | None:
        return next((s for s in self.all() if s.source_id == source_id), None)

    def find(self, prefix: str) -> Source:
        """The source whose id starts with ``prefix`` (as ``sources list`` shows them)."""
        hits = [s for s in self.all() if s.source_id.startswith(prefix)]
        if not hits:
            raise InputError(
                f"no source id starts with {prefix!r} (see `auction-trader sources list`)"
            )
        if len(hits) > 1:
            ids = ", ".join(s.source_id[:16] for s in hits)
            raise InputError(
                f"{prefix!r} matches {len(hits)} sources ({ids}): give more characters"
            )
        return hits[0]

    def instrument(self) -> Source | None:
        """The first source that says which market it holds (the store's instrument)."""
        return next((s for s in self.all() if s.venue and s.symbol), None)

    def overlapping(self, stream: str, first: int, last: int, exclude: str) -> list[Source]:
        """Sources other than ``exclude`` whose range of ``stream`` meets [first, last]."""
        out = []
        for s in self.all():
            r = s.ranges.get(stream)
            if s.source_id != exclude and r is not None and r[0] <= last and first <= r[1]:
                out.append(s)
        return out

    def fingerprint(self) -> list[list[object]]:
        """What the stored features were computed from (stale when it changes)."""
        return [[s.source_id, s.trades, s.quotes] for s in self.all()]

    # ---- writing -------------------------------------------------------------------
    def record(
        self,
        source_id: str,
        path: str,
        fmt: str,
        trades: int,
        quotes: int,
        rejected: int,
        *,
        venue: str | None = None,
        symbol: str | None = None,
        ranges: dict[str, tuple[int, int] | None] | None = None,
    ) -> None:
        r = ranges or {}
        tr, qr = r.get("trades"), r.get("quotes")
        with closing(self._connect()) as con, con:
            con.execute(
                "INSERT OR REPLACE INTO imports (source_id, path, format, trades, quotes, "
                "rejected, imported_at, venue, symbol, unit, trades_first, trades_last, "
                "quotes_first, quotes_last) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    source_id, path, fmt, trades, quotes, rejected, int(time.time() * 1000),
                    venue, symbol, contract_unit(symbol) if symbol else None,
                    tr[0] if tr else None, tr[1] if tr else None,
                    qr[0] if qr else None, qr[1] if qr else None,
                ],
            )  # fmt: skip

    def remove(self, source_id: str, streams: Iterable[str] = STREAMS) -> dict[str, int]:
        """Delete the source's rows of ``streams`` (all: the source itself). Returns the
        rows removed per stream. The manifest is updated after the files are gone, so an
        interruption leaves a source listed with fewer rows than it says, never rows that
        no source owns."""
        src = self.get(source_id)
        if src is None:
            raise InputError(f"no source {source_id!r}")
        streams = list(streams)
        removed: dict[str, int] = {}
        for stream in streams:
            for p in self.lake.kind_dir(stream).glob(f"date=*/part-{source_id}.parquet"):  # type: ignore[arg-type]
                p.unlink()
            removed[stream] = src.rows(stream)
        left = [s for s in STREAMS if s not in streams and src.rows(s) > 0]
        with closing(self._connect()) as con, con:
            if not left:
                con.execute("DELETE FROM imports WHERE source_id = ?", [source_id])
            else:
                for stream in streams:
                    con.execute(
                        f"UPDATE imports SET {stream} = 0, {stream}_first = NULL, "
                        f"{stream}_last = NULL WHERE source_id = ?",
                        [source_id],
                    )
        return removed

    # ---- helpers -------------------------------------------------------------------
    @staticmethod
    def _source(r: dict[str, object]) -> Source:
        def rng(stream: str) -> tuple[int, int] | None:
            a, b = r.get(f"{stream}_first"), r.get(f"{stream}_last")
            return (int(a), int(b)) if a is not None and b is not None else None  # type: ignore[call-overload]

        return Source(
            source_id=str(r["source_id"]),
            path=str(r["path"]),
            format=str(r["format"]),
            trades=int(r["trades"]),  # type: ignore[call-overload]
            quotes=int(r["quotes"]),  # type: ignore[call-overload]
            rejected=int(r["rejected"]),  # type: ignore[call-overload]
            imported_at=int(r["imported_at"]),  # type: ignore[call-overload]
            venue=r.get("venue"),  # type: ignore[arg-type]
            symbol=r.get("symbol"),  # type: ignore[arg-type]
            unit=r.get("unit"),  # type: ignore[arg-type]
            ranges={s: rng(s) for s in STREAMS},
        )

    def _range_from_parts(self, source_id: str, stream: str) -> tuple[int, int] | None:
        parts = sorted(self.lake.kind_dir(stream).glob(f"date=*/part-{source_id}.parquet"))  # type: ignore[arg-type]
        if not parts:
            return None
        with closing(duckdb.connect()) as con:
            row = con.execute(
                "SELECT min(ts_ms), max(ts_ms) FROM read_parquet(?)", [[str(p) for p in parts]]
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return int(row[0]), int(row[1])

    def _save_range(self, source_id: str, stream: str, r: tuple[int, int] | None) -> None:
        if r is None:
            return
        try:
            with closing(self._connect()) as con, con:
                con.execute(
                    f"UPDATE imports SET {stream}_first = ?, {stream}_last = ? WHERE source_id = ?",
                    [r[0], r[1], source_id],
                )
        except sqlite3.OperationalError:
            pass  # a read-only folder: the range is read from the parts again next time
