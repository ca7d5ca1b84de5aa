"""Opening, creating and versioning the four databases of SPEC §2.3 in ``DATABASE_DIR``.

``raw.duckdb`` and ``features.duckdb`` are DuckDB files (one writing process per file);
``signals.db`` and ``execution.db`` are SQLite in WAL mode (many concurrent readers).
Creation is idempotent: ``init_stores`` on an existing directory only adds what is missing,
and refuses a store whose recorded schema version is newer than this code knows.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import duckdb

from at_core.errors import StorageError
from at_core.storage.schema import (
    DUCKDB_META_DDL,
    EXECUTION_DDL,
    FEATURES_DDL,
    RAW_DDL,
    SCHEMA_VERSION,
    SIGNALS_DDL,
    SQLITE_ADDED_COLUMNS,
)

RAW_DB = "raw.duckdb"
FEATURES_DB = "features.duckdb"
SIGNALS_DB = "signals.db"
EXECUTION_DB = "execution.db"


@dataclass(frozen=True)
class StorePaths:
    """Paths of every store under one ``DATABASE_DIR``."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / RAW_DB

    @property
    def features(self) -> Path:
        return self.root / FEATURES_DB

    @property
    def signals(self) -> Path:
        return self.root / SIGNALS_DB

    @property
    def execution(self) -> Path:
        return self.root / EXECUTION_DB

    @property
    def lake(self) -> Path:
        return self.root / "lake"


def _init_duckdb(path: Path, store: str, ddl: list[str]) -> None:
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        raise StorageError(f"cannot open {path}: {exc}") from exc
    try:
        con.execute(DUCKDB_META_DDL)
        row = con.execute("SELECT version FROM _schema WHERE store = ?", [store]).fetchone()
        if row is not None and row[0] > SCHEMA_VERSION:
            raise StorageError(
                f"{path}: schema version {row[0]} is newer than this code ({SCHEMA_VERSION}); upgrade auction-trader"
            )
        for stmt in ddl:
            con.execute(stmt)
        con.execute("INSERT OR REPLACE INTO _schema VALUES (?, ?)", [store, SCHEMA_VERSION])
    finally:
        con.close()


def connect_sqlite(path: Path) -> sqlite3.Connection:
    """SQLite connection in WAL mode with a busy timeout (readers never block the writer)."""
    con = sqlite3.connect(str(path), timeout=30.0)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    return con


def _init_sqlite(path: Path, ddl: list[str]) -> None:
    con = connect_sqlite(path)
    try:
        (version,) = con.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"{path}: schema version {version} is newer than this code ({SCHEMA_VERSION}); upgrade auction-trader"
            )
        with con:
            for stmt in ddl:
                con.execute(stmt)
            tables = {
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            for table, column, sqltype in SQLITE_ADDED_COLUMNS:
                if table in tables:
                    have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
                    if column not in have:
                        con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sqltype}")
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    finally:
        con.close()


def init_execution_db(path: Path) -> None:
    """Create or upgrade only ``execution.db`` (cheap; used by the grid result store)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _init_sqlite(path, EXECUTION_DDL)


def init_store(db_dir: str | Path, which: str) -> StorePaths:
    """Create or upgrade one store (``raw``, ``features``, ``signals`` or ``execution``):
    the live actors each own one file, and DuckDB refuses a second process on a file the
    owner holds, so an actor must never touch another's store."""
    paths = StorePaths(Path(db_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    if which == "raw":
        _init_duckdb(paths.raw, "raw", RAW_DDL)
    elif which == "features":
        _init_duckdb(paths.features, "features", FEATURES_DDL)
    elif which == "signals":
        _init_sqlite(paths.signals, SIGNALS_DDL)
    elif which == "execution":
        _init_sqlite(paths.execution, EXECUTION_DDL)
    else:
        raise ValueError(f"unknown store `{which}`")
    return paths


def init_stores(db_dir: str | Path) -> StorePaths:
    """Create (or upgrade) every store under ``db_dir``; safe to call any number of times."""
    paths = StorePaths(Path(db_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.lake.mkdir(exist_ok=True)
    _init_duckdb(paths.raw, "raw", RAW_DDL)
    _init_duckdb(paths.features, "features", FEATURES_DDL)
    _init_sqlite(paths.signals, SIGNALS_DDL)
    _init_sqlite(paths.execution, EXECUTION_DDL)
    return paths
