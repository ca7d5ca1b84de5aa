"""The tick history: Parquet files partitioned by UTC day, queried with DuckDB.

Layout: ``<db_dir>/lake/{trades,quotes}/date=YYYY-MM-DD/part-<source_id>.parquet``.

Why not ``raw.duckdb``: SPEC §2.3 gives ``raw.duckdb`` a 48 h rolling retention for the
live collector, which would destroy a multi-day history imported for backtests. History
lives here instead, one immutable file per (day, source), and ``raw.duckdb`` is only the
live buffer that the retention purge archives into this lake before deleting.

Idempotence: ``source_id`` is derived from the source's content (a hash of the imported
file, or the generator's seed), so importing the same file twice rewrites the same part
files instead of adding rows. Rows that carry an exchange trade id are also checked
against the other parts of the same day, so two different files holding the same trades
(e.g. a raw capture and its CSV export) do not double-count.

Atomicity: every part is written to a temporary name and renamed into place only after
all parts of the import have been written; readers only glob ``*.parquet``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import secrets
from collections.abc import Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from at_core.errors import StorageError
from at_core.storage.schema import ARROW_SCHEMAS
from at_core.storage.sources import Sources

Kind = Literal["trades", "quotes"]
DAY_MS = 86_400_000
KINDS: tuple[Kind, ...] = ("trades", "quotes")


def day_of_ms(ts_ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ts_ms // 1000, tz=dt.UTC).date()


def day_start_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


def _check_source_id(source_id: str) -> None:
    if not source_id or "/" in source_id or source_id.startswith("."):
        raise StorageError(f"invalid lake source id {source_id!r}")


@dataclass
class WriteReport:
    """What one ``Lake.write`` stored: rows per day and rows dropped as duplicates."""

    kind: Kind
    source_id: str
    rows_by_day: dict[dt.date, int] = field(default_factory=dict)
    duplicates_dropped: int = 0

    @property
    def rows(self) -> int:
        return sum(self.rows_by_day.values())


@dataclass
class StagedWrite:
    """Parts written under temporary names by ``Lake.stage``, not yet visible."""

    report: WriteReport
    parts: list[tuple[Path, Path]] = field(default_factory=list)  # (temporary file, day dir)
    consulted: set[str] = field(default_factory=set)  # other parts read to drop known ids

    def commit(self, source_id: str) -> WriteReport:
        """Rename the parts into place as ``part-<source_id>.parquet``."""
        _check_source_id(source_id)
        for tmp, ddir in self.parts:
            os.replace(tmp, ddir / f"part-{source_id}.parquet")
        self.parts = []
        self.report.source_id = source_id
        return self.report

    def discard(self) -> None:
        for tmp, _ in self.parts:
            tmp.unlink(missing_ok=True)
        self.parts = []


class Lake:
    """Day-partitioned Parquet history of trades and quotes under ``<db_dir>/lake``."""

    def __init__(self, db_dir: str | Path) -> None:
        self.db_dir = Path(db_dir)
        self.root = self.db_dir / "lake"

    # ---- paths -------------------------------------------------------------------
    def kind_dir(self, kind: Kind) -> Path:
        return self.root / kind

    def day_dir(self, kind: Kind, day: dt.date) -> Path:
        return self.kind_dir(kind) / f"date={day.isoformat()}"

    def glob(self, kind: Kind) -> str:
        return str(self.kind_dir(kind) / "date=*" / "*.parquet")

    def has_data(self, kind: Kind) -> bool:
        return any(self.kind_dir(kind).glob("date=*/*.parquet"))

    def days(self, kind: Kind) -> list[dt.date]:
        out = []
        for d in sorted(self.kind_dir(kind).glob("date=*")):
            if any(d.glob("*.parquet")):
                out.append(dt.date.fromisoformat(d.name.split("=", 1)[1]))
        return out

    def parts(self, kind: Kind, day: dt.date) -> list[Path]:
        return sorted(self.day_dir(kind, day).glob("*.parquet"))

    # ---- writing -----------------------------------------------------------------
    def write(self, kind: Kind, table: pa.Table, source_id: str) -> WriteReport:
        """Store ``table`` (columns of ``ARROW_SCHEMAS[kind]``) split by UTC day.

        Rows are sorted by (ts_ms, seq) inside each day. Returns what was stored. Nothing
        becomes visible to readers until every day's part has been written.
        """
        _check_source_id(source_id)
        return self.stage(kind, table, source_id).commit(source_id)

    def stage(
        self,
        kind: Kind,
        table: pa.Table,
        source_id: str | None = None,
        replacing: frozenset[str] = frozenset(),
    ) -> StagedWrite:
        """Write the day parts of ``table`` under temporary names, invisible to readers;
        ``commit(source_id)`` renames them into place, ``discard()`` removes them.

        ``source_id`` may be left unknown (``None``) while the caller still computes it
        (the importer hashes a big file while its parts are written): the de-duplication
        of trade ids then consults every part of the day, and ``StagedWrite.consulted``
        names the parts it read, so that the caller can tell whether one of them was this
        source's own old part (a forced re-import) and stage again with the id.
        ``replacing``: sources whose rows this write replaces (removed after the commit):
        their trade ids are not "known" (a corrected file must not lose its rows as
        duplicates of the very rows it replaces).
        """
        if source_id is not None:
            _check_source_id(source_id)
        schema = ARROW_SCHEMAS[kind]
        table = conform(table, schema)
        staged = StagedWrite(WriteReport(kind=kind, source_id=source_id or ""))
        if table.num_rows == 0:
            return staged
        # Sort once (skipped when the input is already in (ts_ms, seq) order, as importers
        # and generators deliver it; reversed when it is in strictly the opposite order, as
        # newest-first archives are, which gives the very table a sort would), then cut the
        # sorted table at day boundaries.
        ts = table["ts_ms"].to_numpy()
        seq = table["seq"].to_numpy()
        t1, t0, s1, s0 = ts[1:], ts[:-1], seq[1:], seq[:-1]
        if not bool(np.all((t1 > t0) | ((t1 == t0) & (s1 >= s0)))):
            if bool(np.all((t1 < t0) | ((t1 == t0) & (s1 < s0)))):
                table = table.take(pa.array(np.arange(len(ts) - 1, -1, -1)))
            else:
                table = table.sort_by([("ts_ms", "ascending"), ("seq", "ascending")])
            ts = table["ts_ms"].to_numpy()
        # day boundaries by binary search in the sorted times (no per-row temporaries)
        first_day, last_day = int(ts[0]) // DAY_MS, int(ts[-1]) // DAY_MS
        edges = np.arange(first_day + 1, last_day + 1, dtype=np.int64) * DAY_MS
        cuts = [0, *np.searchsorted(ts, edges, side="left").tolist(), len(ts)]
        tag = source_id or f"pending-{secrets.token_hex(8)}"
        try:
            for i, (start, end) in enumerate(itertools.pairwise(cuts)):
                if start == end:
                    continue
                day = dt.date(1970, 1, 1) + dt.timedelta(days=first_day + i)
                part = table.slice(start, end - start)
                if kind == "trades":
                    before = part.num_rows
                    part = self._drop_known_trade_ids(
                        day, part, source_id, staged.consulted, replacing
                    )
                    staged.report.duplicates_dropped += before - part.num_rows
                if part.num_rows == 0:
                    continue
                ddir = self.day_dir(kind, day)
                ddir.mkdir(parents=True, exist_ok=True)
                tmp = ddir / f".part-{tag}.parquet.tmp-{os.getpid()}"
                pq.write_table(part, tmp, **_parquet_options(part.column_names))
                staged.parts.append((tmp, ddir))
                staged.report.rows_by_day[day] = part.num_rows
        except BaseException:
            staged.discard()
            raise
        return staged

    def _drop_known_trade_ids(
        self,
        day: dt.date,
        part: pa.Table,
        source_id: str | None,
        consulted: set[str],
        replacing: frozenset[str] = frozenset(),
    ) -> pa.Table:
        ids = part["trade_id"]
        if ids.null_count == len(ids):
            return part
        skip = {f"part-{s}.parquet" for s in (*replacing, source_id) if s}
        others = [p for p in self.parts("trades", day) if p.name not in skip]
        if not others:
            return part
        consulted.update(p.name for p in others)
        with closing(duckdb.connect()) as con:
            known = con.sql(
                "SELECT DISTINCT trade_id FROM read_parquet(?) WHERE trade_id IS NOT NULL",
                params=[[str(p) for p in others]],
            ).to_arrow_table()
        if known.num_rows == 0:
            return part
        dup = pc.fill_null(pc.is_in(ids, value_set=known.column(0).combine_chunks()), False)
        return part.filter(pc.invert(dup))

    def delete_source(self, source_id: str) -> int:
        """Remove every part written by ``source_id``; returns the number of files removed."""
        n = 0
        for kind in KINDS:
            for p in self.kind_dir(kind).glob(f"date=*/part-{source_id}.parquet"):
                p.unlink()
                n += 1
        return n

    # ---- reading -----------------------------------------------------------------
    def read_day(self, kind: Kind, day: dt.date) -> pa.Table:
        parts = self.parts(kind, day)
        if not parts:
            return ARROW_SCHEMAS[kind].empty_table()
        table = pa.concat_tables([pq.read_table(p) for p in parts])
        if _in_ts_seq_order(table):
            # the usual case (one part per day, written in order): a sort would copy the
            # whole day once more, which costs more time and memory than the decode itself
            return table
        return table.sort_by([("ts_ms", "ascending"), ("seq", "ascending")])

    def iter_days(self, kind: Kind) -> Iterator[tuple[dt.date, pa.Table]]:
        for day in self.days(kind):
            yield day, self.read_day(kind, day)

    # ---- import manifest (at_core.storage.sources) ----------------------------------
    @property
    def sources(self) -> Sources:
        return Sources(self)

    def imported(self, source_id: str) -> dict[str, object] | None:
        if not (self.root / "_imports.sqlite").exists():
            return None
        src = self.sources.get(source_id)
        return asdict(src) if src else None

    def imports(self) -> list[dict[str, object]]:
        return [asdict(s) for s in self.sources.all()]


# (ts_ms, seq) are sorted within a part: delta encoding stores them in a few bits per row
_DELTA_COLUMNS = ("ts_ms", "seq")
# trade ids are (almost) all distinct: a dictionary page would only be discarded
_PLAIN_COLUMNS = ("trade_id",)


def _parquet_options(columns: list[str]) -> dict[str, object]:
    """Parquet settings of a lake part, chosen by measurement (3 M Bybit trades, see
    benches/bench_import.py): zstd level 1 with delta-encoded ts_ms/seq and dictionaries
    for prices, sizes and sides writes ~30 % faster than the default zstd level with
    dictionaries everywhere, makes the file ~35 % smaller and reads back faster (pyarrow and
    DuckDB both read these standard encodings). Values and types read back are identical;
    trade_id has no statistics (DuckDB's ``trade_id IS NOT NULL`` scan does not need them).
    """
    delta = [c for c in columns if c in _DELTA_COLUMNS]
    return {
        "compression": "zstd",
        "compression_level": 1,
        "row_group_size": 1 << 20,
        "use_dictionary": [c for c in columns if c not in _DELTA_COLUMNS + _PLAIN_COLUMNS],
        "column_encoding": dict.fromkeys(delta, "DELTA_BINARY_PACKED"),
        # min/max of random trade-id strings prune nothing and cost ~10 % of the write
        "write_statistics": [c for c in columns if c not in _PLAIN_COLUMNS],
    }


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Select and cast ``table`` to ``schema``; absent nullable columns become nulls."""
    cols = []
    for f in schema:
        if f.name in table.column_names:
            col = table[f.name]
            if col.type != f.type:
                col = col.cast(f.type)
            if not f.nullable and col.null_count:
                raise StorageError(
                    f"column {f.name} has {col.null_count} nulls but may not be null"
                )
            cols.append(col)
        elif f.nullable:
            cols.append(pa.nulls(table.num_rows, f.type))
        else:
            raise StorageError(f"missing required column {f.name}")
    return pa.Table.from_arrays(cols, schema=schema)


def _in_ts_seq_order(table: pa.Table, block: int = 1 << 20) -> bool:
    """True when rows are already in (ts_ms, seq) order; checked in blocks (bounded memory)."""
    n = table.num_rows
    if n < 2:
        return True
    ts = table.column("ts_ms")
    seq = table.column("seq")
    if ts.null_count or seq.null_count:
        return False
    for lo in range(0, n - 1, block):
        hi = min(n, lo + block + 1)  # overlap one row with the next block
        t = ts.slice(lo, hi - lo).to_numpy()
        q = seq.slice(lo, hi - lo).to_numpy()
        dt_ = np.diff(t)
        if (dt_ < 0).any() or ((dt_ == 0) & (np.diff(q) < 0)).any():
            return False
    return True


def sides_dir(lake_root: Path) -> Path:
    """Per-trade results of the last ``features`` run (``at_core.features.trade_sides``)."""
    return lake_root / "trade_sides"


def sides_glob(lake_root: Path) -> str:
    return str(sides_dir(lake_root) / "date=*" / "sides.parquet")
