"""Stores: idempotent versioned creation, the lake, the read-only SQL view and the purge."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from at_core.cli import main as cli_main
from at_core.errors import StorageError
from at_core.storage.lake import Lake, day_start_ms
from at_core.storage.query import run_query
from at_core.storage.retention import HOUR_MS, purge_raw
from at_core.storage.stores import StorePaths, init_stores

DAY = dt.date(2024, 1, 1)
T0 = day_start_ms(DAY)


def trades(ts: list[int], ids: list[str | None] | None = None) -> pa.Table:
    n = len(ts)
    return pa.table(
        {
            "ts_ms": pa.array(ts, pa.int64()),
            "price": [42000.0 + i / 10 for i in range(n)],
            "size": [0.01] * n,
            "exchange_side": pa.array([1] * n, pa.int8()),
            "trade_id": pa.array(ids if ids is not None else [None] * n, pa.string()),
            "seq": pa.array(range(n), pa.int64()),
        }
    )


def test_init_is_idempotent_and_versioned(db_dir: Path) -> None:
    p = init_stores(db_dir)
    init_stores(db_dir)
    con = duckdb.connect(str(p.raw))
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    cols = [r[0] for r in con.execute("DESCRIBE raw_trades").fetchall()]
    con.close()
    assert {"raw_trades", "raw_quotes", "_schema"} <= tables
    # spec columns, in spec order, come first
    assert cols[:7] == [
        "ts_ms",
        "price",
        "size",
        "inferred_side",
        "quote_bid_px",
        "quote_ask_px",
        "quote_staleness_ms",
    ]
    con2 = sqlite3.connect(p.execution)
    names = {r[0] for r in con2.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con2.close()
    assert {"positions", "state_snapshots", "grid_search_results"} <= names
    con3 = sqlite3.connect(p.signals)
    assert con3.execute("PRAGMA user_version").fetchone()[0] == 1
    con3.close()


def test_newer_schema_refused(db_dir: Path) -> None:
    p = init_stores(db_dir)
    con = sqlite3.connect(p.signals)
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    with pytest.raises(StorageError, match="newer"):
        init_stores(db_dir)


def test_lake_splits_days_sorts_and_is_idempotent(db_dir: Path) -> None:
    lake = Lake(db_dir)
    ts = [T0 + 86_400_000 + 5, T0 + 10, T0 + 3, T0 + 86_400_000 - 1]
    rep = lake.write("trades", trades(ts), "src1")
    assert rep.rows_by_day == {DAY: 3, DAY + dt.timedelta(days=1): 1}
    lake.write("trades", trades(ts), "src1")
    assert [d for d in lake.days("trades")] == [DAY, DAY + dt.timedelta(days=1)]
    day1 = lake.read_day("trades", DAY)
    assert day1["ts_ms"].to_pylist() == [T0 + 3, T0 + 10, T0 + 86_400_000 - 1]
    assert not list((lake.day_dir("trades", DAY)).glob(".*tmp*"))


def test_lake_drops_trade_ids_already_stored_by_another_source(db_dir: Path) -> None:
    lake = Lake(db_dir)
    lake.write("trades", trades([T0 + 1, T0 + 2], ["a", "b"]), "raw-capture")
    rep = lake.write("trades", trades([T0 + 2, T0 + 3], ["b", "c"]), "csv-export")
    assert rep.duplicates_dropped == 1 and rep.rows == 1
    _, rows = run_query(db_dir, "SELECT count(*), count(DISTINCT trade_id) FROM raw_trades")
    assert rows == [(3, 3)]


def test_sql_view_unions_lake_and_live_buffer_and_is_read_only(db_dir: Path) -> None:
    paths = init_stores(db_dir)
    Lake(db_dir).write("trades", trades([T0 + 1, T0 + 2]), "hist")
    con = duckdb.connect(str(paths.raw))
    con.execute(
        "INSERT INTO raw_trades (ts_ms, price, size, seq) VALUES (?, 42000.0, 0.5, 0)", [T0 + 50]
    )
    con.close()
    cols, rows = run_query(db_dir, "SELECT count(*) AS n, max(ts_ms) AS last FROM raw_trades")
    assert cols == ["n", "last"] and rows == [(3, T0 + 50)]
    with pytest.raises(StorageError):
        run_query(db_dir, "DELETE FROM rawdb.main.raw_trades")
    _, rows = run_query(db_dir, "SELECT count(*) FROM rawdb.main.raw_trades")
    assert rows == [(1,)]


def test_sql_command_prints_csv_and_json(db_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Lake(db_dir).write("trades", trades([T0 + 1, T0 + 2]), "hist")
    assert (
        cli_main(
            ["sql", "--db-dir", str(db_dir), "SELECT ts_ms, size FROM raw_trades ORDER BY ts_ms"]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines() == [
        "ts_ms,size",
        f"{T0 + 1},0.01",
        f"{T0 + 2},0.01",
    ]
    assert (
        cli_main(["sql", "--db-dir", str(db_dir), "SELECT count(*) AS n FROM raw_trades", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out) == [{"n": 2}]
    assert cli_main(["sql", "--db-dir", str(db_dir), "SELEC 1"]) == 2
    assert "query failed" in capsys.readouterr().err


def test_purge_archives_then_deletes_exactly_the_old_rows(db_dir: Path) -> None:
    paths = init_stores(db_dir)
    now = T0 + 72 * HOUR_MS
    cutoff = now - 48 * HOUR_MS
    stamps = [cutoff - 2, cutoff - 1, cutoff, cutoff + 1, now]
    con = duckdb.connect(str(paths.raw))
    for i, ts in enumerate(stamps):
        con.execute(
            "INSERT INTO raw_trades (ts_ms, price, size, seq) VALUES (?, 42000.0, 1.0, ?)", [ts, i]
        )
        con.execute("INSERT INTO raw_quotes VALUES (?, 41999.9, 1.0, 42000.0, 2.0, ?)", [ts, i])
    con.close()
    rep = purge_raw(db_dir, keep_hours=48, now_ms=now)
    assert rep.deleted == {"trades": 2, "quotes": 2} and rep.kept == {"trades": 3, "quotes": 3}
    assert rep.archived == {"trades": 2, "quotes": 2}
    con = duckdb.connect(str(paths.raw), read_only=True)
    left = [r[0] for r in con.execute("SELECT ts_ms FROM raw_trades ORDER BY ts_ms").fetchall()]
    con.close()
    assert left == [cutoff, cutoff + 1, now]
    # nothing lost: the combined view still has every row exactly once
    _, rows = run_query(db_dir, "SELECT count(*), count(DISTINCT ts_ms) FROM raw_trades")
    assert rows == [(5, 5)]
    # a second purge is a no-op
    rep2 = purge_raw(db_dir, keep_hours=48, now_ms=now)
    assert rep2.deleted == {"trades": 0, "quotes": 0}
    _, rows = run_query(db_dir, "SELECT count(*) FROM raw_quotes")
    assert rows == [(5,)]


def test_status_command(db_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Lake(db_dir).write("trades", trades([T0 + 1]), "hist")
    init_stores(db_dir)
    assert cli_main(["status", "--db-dir", str(db_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tables"]["raw_trades"]["rows"] == 1
    assert StorePaths(db_dir).raw.exists()


def test_added_columns_are_created_on_older_stores(db_dir: Path) -> None:
    p = init_stores(db_dir)
    con = sqlite3.connect(p.execution)
    con.execute("DROP TABLE grid_trials")
    con.execute(
        "CREATE TABLE grid_trials (run_id TEXT NOT NULL, trial_key TEXT NOT NULL, n_rows INTEGER NOT NULL,"
        " best_json TEXT, node TEXT, finished_at INTEGER NOT NULL, PRIMARY KEY (run_id, trial_key))"
    )
    con.execute("INSERT INTO grid_trials VALUES ('r', 'k', 1, NULL, NULL, 0)")
    con.commit()
    con.close()
    init_stores(db_dir)
    con = sqlite3.connect(p.execution)
    cols = [r[1] for r in con.execute("PRAGMA table_info(grid_trials)")]
    rows = con.execute("SELECT run_id, kernel_s FROM grid_trials").fetchall()
    con.close()
    assert "kernel_s" in cols and rows == [("r", None)]
