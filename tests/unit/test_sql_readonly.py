"""``auction-trader sql`` is read-only (issue 10, section 3): only SELECT-style queries over
the project's views work. Each attempt below changed something, or reached outside the data
folder, before the fix; now each is refused with a clear error and nothing changes."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from at_core import cli
from at_core.storage.stores import init_stores


@pytest.fixture
def two_folders(tmp_path: Path) -> tuple[Path, Path]:
    """The folder queried, and another one whose store must stay untouched."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        init_stores(d)
    con = duckdb.connect(str(b / "features.duckdb"))
    con.execute("INSERT INTO bars_1m (ts_min) VALUES (1704067200000)")
    part = b / "lake" / "trades" / "date=2024-01-01"
    part.mkdir(parents=True)
    con.execute(f"COPY (SELECT 1704067200000 AS ts_ms) TO '{part}/part-x.parquet'")
    con.close()
    return a, b


def _sql(db: Path, q: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = cli.main(["sql", "--db-dir", str(db), q])
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_select_over_the_views_still_works(
    two_folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    a, _ = two_folders
    rc, out = _sql(a, "SELECT count(*) AS n FROM bars_1m", capsys)
    assert rc == 0 and "n\n0" in out


@pytest.mark.parametrize(
    "attempt",
    [
        "ATTACH '{b}/features.duckdb' AS v; DELETE FROM v.bars_1m",
        "ATTACH '{b}/features.duckdb' AS v",
        "COPY (SELECT 1) TO '{tmp}/out.csv'",
        "ATTACH '{tmp}/new.duckdb' AS n",
        "ATTACH '{tmp}/x.db' AS s (TYPE sqlite)",
        "INSTALL sqlite",
        "LOAD httpfs",
        "SELECT * FROM read_csv('/etc/hostname')",
        "SELECT * FROM read_parquet('{b}/lake/trades/*/*.parquet')",
        "DELETE FROM featdb.main.bars_1m",
        "SET enable_external_access = true",
    ],
)
def test_writes_and_outside_access_are_refused(
    attempt: str,
    two_folders: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b = two_folders
    before = sorted(os.listdir(tmp_path))
    rc, out = _sql(a, attempt.format(b=b, tmp=tmp_path), capsys)
    assert rc != 0, out
    assert "query failed" in out and "Traceback" not in out, out
    # the other folder's table is intact, and no file appeared
    con = duckdb.connect(str(b / "features.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM bars_1m").fetchone() == (1,)
    con.close()
    assert sorted(os.listdir(tmp_path)) == before
