"""Temporaries of writers killed with kill -9 are removed by the next writing command
(issue 10 §7); a live writer's temporary is left alone; a failed `features` run leaves the
stored trade sidecars as they were."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from at_core import cli
from at_core.config import load_settings
from at_core.ingest.importer import import_files
from at_core.storage.lake import Lake

T0 = 1_721_260_800_000  # 2024-07-18


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _csv(path: Path, start: int, n: int, px: str = "63950.1") -> Path:
    lines = ["ts,price,size,trade_id"]
    lines += [f"{start + i * 1000},{px},0.01,{start // 1000 + i}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_next_import_removes_a_killed_writers_temporaries(tmp_path: Path) -> None:
    db = tmp_path / "db"
    import_files(db, "csv", [_csv(tmp_path / "a.csv", T0, 10)], ts_unit="ms")
    day = Lake(db).day_dir("trades", Lake(db).days("trades")[0])
    dead = day / f".part-pending-0123abcd.parquet.tmp-{_dead_pid()}"
    dead.write_bytes(b"half a parquet file")
    staging = Lake(db).root / f".trade_sides-staging-{_dead_pid()}"
    (staging / "date=2024-07-18").mkdir(parents=True)
    live = day / f".part-pending-feedbeef.parquet.tmp-{os.getpid()}"
    live.write_bytes(b"a writer still at work")
    import_files(db, "csv", [_csv(tmp_path / "b.csv", T0 + 86_400_000, 10)], ts_unit="ms")
    assert not dead.exists() and not staging.exists()
    assert live.exists(), "a live writer's temporary is left alone"


def test_a_failed_features_run_leaves_the_trade_sidecars_as_they_were(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db"
    fine = load_settings(overrides={"tick_size": 0.01})
    for k in (0, 1):
        a = _csv(tmp_path / f"{k}.csv", T0 + k * 86_400_000, 50)
        import_files(db, "csv", [a], ts_unit="ms", settings=fine)
    # the third day has prices on the 0.01 grid only
    b = _csv(tmp_path / "b.csv", T0 + 2 * 86_400_000, 50, px="63950.13")
    import_files(db, "csv", [b], ts_unit="ms", settings=fine)
    assert cli.main(["features", "--db-dir", str(db), "--set", "tick_size=0.01"]) == 0
    sides = Lake(db).root / "trade_sides"

    def snap() -> dict[str, tuple[str, int]]:
        # content and modification time: a rewrite with the same bytes is still a write
        return {
            str(p.relative_to(sides)): (
                hashlib.sha256(p.read_bytes()).hexdigest(),
                p.stat().st_mtime_ns,
            )
            for p in sorted(sides.rglob("*"))
            if p.is_file()
        }

    before = snap()
    assert len(before) == 3
    # the default 0.1 grid: days 1 and 2 compute (day 1's sidecar is complete), day 3 fails
    capsys.readouterr()
    assert cli.main(["features", "--db-dir", str(db)]) == 2
    err = capsys.readouterr().err
    assert "day 2024-07-20" in err and "tick_size 0.1" in err
    assert snap() == before
    assert not list(Lake(db).root.glob(".trade_sides-staging-*"))
