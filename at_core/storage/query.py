"""One read-only DuckDB view over every store, whatever the storage underneath.

``raw_trades`` / ``raw_quotes`` are the union of the Parquet lake (history) and the live
buffer in ``raw.duckdb``; ``bars_1m`` / ``features_1m`` come from ``features.duckdb``.

Read-only, and nothing beyond the data folder: the DuckDB files are attached
``READ_ONLY``; once the views exist, file access is limited to the lake
(``allowed_directories``, ``enable_external_access = false``: no ``ATTACH`` of another
store, no ``COPY ... TO``, no new file, no reading elsewhere), extensions are never
installed or loaded (DuckDB would otherwise try to download one from the internet for
``TYPE sqlite``), and the configuration is locked so a query cannot undo any of it.

Pitfall: a DuckDB file has one writing process; attaching it (even read-only) while a live
actor holds it for writing fails. The error says which file is locked.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from at_core.errors import StorageError
from at_core.storage.lake import Lake, sides_dir, sides_glob
from at_core.storage.schema import QUOTES_ARROW, TRADES_ARROW
from at_core.storage.stores import StorePaths

_TRADE_COLS = ", ".join(f.name for f in TRADES_ARROW)
_QUOTE_COLS = ", ".join(f.name for f in QUOTES_ARROW)

EXPOSED = (
    "raw_trades",
    "raw_quotes",
    "bars_1m",
    "features_1m",
    "minute_flags",
    "footprint_1m",
    "footprint_cover",
)


def _empty_select(schema_cols: str, ddl_types: dict[str, str]) -> str:
    return (
        "SELECT "
        + ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in ddl_types.items())
        + " WHERE false"
    )


_TRADE_TYPES = {
    "ts_ms": "BIGINT",
    "price": "DOUBLE",
    "size": "DOUBLE",
    "inferred_side": "TINYINT",
    "quote_bid_px": "DOUBLE",
    "quote_ask_px": "DOUBLE",
    "quote_staleness_ms": "INTEGER",
    "exchange_side": "TINYINT",
    "trade_id": "VARCHAR",
    "seq": "BIGINT",
}
_QUOTE_TYPES = {
    "ts_ms": "BIGINT",
    "bid_px": "DOUBLE",
    "bid_sz": "DOUBLE",
    "ask_px": "DOUBLE",
    "ask_sz": "DOUBLE",
    "seq": "BIGINT",
}


def _attach(con: duckdb.DuckDBPyConnection, path: Path, alias: str) -> bool:
    if not path.exists():
        return False
    try:
        con.execute(f"ATTACH '{path}' AS {alias} (READ_ONLY)")
    except duckdb.Error as exc:
        raise StorageError(
            f"cannot open {path} read-only (is a live process writing it?): {exc}"
        ) from exc
    return True


def _has_table(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?",
        [catalog, table],
    ).fetchone()
    return bool(row and row[0])


def _lake_select(lake: Lake, kind: str, cols: str) -> str:
    """The lake's rows of ``kind``; for trades with the last ``features`` run's per-trade
    results (inferred side, matched quote) joined on (ts_ms, seq) where they exist."""
    src = f"read_parquet('{lake.glob(kind)}')"  # type: ignore[arg-type]
    if kind != "trades" or not any(sides_dir(lake.root).glob("date=*/sides.parquet")):
        return f"SELECT {cols} FROM {src}"
    from_sides = {"inferred_side", "quote_bid_px", "quote_ask_px", "quote_staleness_ms"}
    select = ", ".join(
        f"s.{c} AS {c}" if c in from_sides else f"t.{c} AS {c}" for c in cols.split(", ")
    )
    return (
        f"SELECT {select} FROM {src} t LEFT JOIN read_parquet('{sides_glob(lake.root)}') s"
        " ON t.ts_ms = s.ts_ms AND t.seq = s.seq"
    )


def open_query_connection(
    db_dir: str | Path, memory_limit: str = "2GB", stores: bool = True
) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with views ``raw_trades``, ``raw_quotes``, ``bars_1m``, ``features_1m``,
    ``minute_flags`` (the live graph's feed-gap minutes; empty for batch stores) and the live
    graph's footprint cells ``footprint_1m`` / ``footprint_cover`` (empty for batch stores).

    ``stores=False``: the Parquet lake only, without ``raw.duckdb`` and ``features.duckdb``
    (a running live graph holds those for writing; its rows are read through its actors)."""
    paths = StorePaths(Path(db_dir))
    if not paths.root.exists():
        raise StorageError(f"DATABASE_DIR {paths.root} does not exist")
    con = duckdb.connect(
        config={
            "memory_limit": memory_limit,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
    )
    lake = Lake(paths.root)
    has_raw = stores and _attach(con, paths.raw, "rawdb")
    has_feat = stores and _attach(con, paths.features, "featdb")

    for view, kind, cols, types in (
        ("raw_trades", "trades", _TRADE_COLS, _TRADE_TYPES),
        ("raw_quotes", "quotes", _QUOTE_COLS, _QUOTE_TYPES),
    ):
        parts = []
        if lake.has_data(kind):  # type: ignore[arg-type]
            parts.append(_lake_select(lake, kind, cols))
        if has_raw and _has_table(con, "rawdb", view):
            parts.append(f"SELECT {cols} FROM rawdb.main.{view}")
        if not parts:
            parts.append(_empty_select(cols, types))
        con.execute(f"CREATE VIEW {view} AS " + " UNION ALL ".join(parts))

    from at_core.storage import footprint, schema

    ddls = {
        "bars_1m": schema.BARS_1M_DDL,
        "features_1m": schema.FEATURES_1M_DDL,
        "minute_flags": schema.MINUTE_FLAGS_DDL,
        "footprint_1m": footprint.FOOTPRINT_1M_DDL,
        "footprint_cover": footprint.FOOTPRINT_COVER_DDL,
    }
    for view, ddl in ddls.items():
        if has_feat and _has_table(con, "featdb", view):
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM featdb.main.{view}")
        else:
            con.execute(ddl.replace("CREATE TABLE IF NOT EXISTS", "CREATE TEMP TABLE"))
    _lock_down(con, lake.root)
    return con


def _lock_down(con: duckdb.DuckDBPyConnection, lake_root: Path) -> None:
    """From here on the connection reads the lake and the attached stores only."""
    root = str(lake_root.resolve()).rstrip("/") + "/"
    con.execute("SET allowed_directories = ?", [[root]])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def run_query(db_dir: str | Path, sql: str) -> tuple[list[str], list[tuple[object, ...]]]:
    """Run one query over the combined view; returns (column names, rows)."""
    con = open_query_connection(db_dir)
    try:
        try:
            cur = con.execute(sql)
        except duckdb.Error as exc:
            raise StorageError(f"query failed: {exc}") from exc
        if cur.description is None:
            return [], []
        cols = [d[0] for d in cur.description]
        return cols, cur.fetchall()
    finally:
        con.close()
