"""The 48 h rolling retention of ``raw.duckdb`` (SPEC §2.3), without losing history.

The live collector appends ticks to ``raw.duckdb``; once a day the purge moves every row
older than the retention horizon into the Parquet lake (history) and only then deletes it
from ``raw.duckdb``. The archive part's source id is derived from the rows' time range, so a
purge interrupted after archiving and re-run rewrites the same part instead of duplicating
rows. The cut is on ``ts_ms < now - keep_hours``: a row exactly at the horizon is kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from at_core.storage.lake import Lake
from at_core.storage.stores import StorePaths, init_stores

HOUR_MS = 3_600_000


@dataclass
class PurgeReport:
    cutoff_ms: int
    archived: dict[str, int]
    deleted: dict[str, int]
    kept: dict[str, int]


def purge_raw(
    db_dir: str | Path, keep_hours: float = 48.0, now_ms: int | None = None, archive: bool = True
) -> PurgeReport:
    """Archive to the lake, then delete, every raw row older than ``keep_hours`` before ``now_ms``."""
    paths = StorePaths(Path(db_dir))
    init_stores(paths.root)
    now = int(time.time() * 1000) if now_ms is None else int(now_ms)
    cutoff = now - int(keep_hours * HOUR_MS)
    con = duckdb.connect(str(paths.raw))
    try:
        return purge_connection(con, paths.root, cutoff, archive)
    finally:
        con.close()


def purge_connection(
    con: duckdb.DuckDBPyConnection, db_dir: Path, cutoff: int, archive: bool = True
) -> PurgeReport:
    """The purge on an open ``raw.duckdb`` connection (the live collector owns the file and
    purges through its own connection; no second process may open it)."""
    lake = Lake(db_dir)
    archived: dict[str, int] = {}
    deleted: dict[str, int] = {}
    kept: dict[str, int] = {}
    for table, kind in (("raw_trades", "trades"), ("raw_quotes", "quotes")):
        old = con.sql(
            f"SELECT * FROM {table} WHERE ts_ms < ? ORDER BY ts_ms, seq", params=[cutoff]
        ).to_arrow_table()
        archived[kind] = 0
        if archive and old.num_rows:
            lo = old["ts_ms"][0].as_py()
            hi = old["ts_ms"][old.num_rows - 1].as_py()
            rep = lake.write(kind, old, f"live-{kind}-{lo}-{hi}")  # type: ignore[arg-type]
            archived[kind] = rep.rows + rep.duplicates_dropped
        n = con.execute(f"DELETE FROM {table} WHERE ts_ms < ?", [cutoff]).fetchall()
        deleted[kind] = int(n[0][0]) if n else 0
        row = con.execute(f"SELECT count(*) FROM {table}").fetchall()
        kept[kind] = int(row[0][0])
    return PurgeReport(cutoff_ms=cutoff, archived=archived, deleted=deleted, kept=kept)
