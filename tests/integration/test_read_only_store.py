"""A data folder the user cannot write (issue 10 §4), for real: the commands run as the
unprivileged user `nobody` (root ignores file permissions) through `setpriv`. Reading
commands work; writing ones answer with one line naming the folder, exit 2, no traceback,
and nothing in the folder changes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from at_core.ingest.synthetic import generate_market

SETPRIV = shutil.which("setpriv")
NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"]


def _as_nobody(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert SETPRIV
    env = {**os.environ, "HOME": str(cwd), "MPLCONFIGDIR": str(cwd / "mpl")}
    env.pop("DATABASE_DIR", None)
    return subprocess.run(
        [SETPRIV, *NOBODY, sys.executable, "-m", "at_core.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _snapshot(d: Path) -> dict[str, str]:
    return {
        str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def ro_store() -> Iterator[tuple[Path, Path]]:
    if SETPRIV is None or os.geteuid() != 0:
        pytest.skip("needs setpriv and root to run commands as `nobody`")
    base = Path(tempfile.mkdtemp(prefix="at-ro-"))
    base.chmod(0o755)
    (base / "mpl").mkdir()
    (base / "mpl").chmod(0o777)
    db = base / "db"
    generate_market(db, days=1, seed=5, progress=False)
    for p in [db, *db.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    probe = subprocess.run([SETPRIV, *NOBODY, sys.executable, "-c", "import at_core"], cwd=base)
    if probe.returncode != 0:
        shutil.rmtree(base)
        pytest.skip("`nobody` cannot run this checkout's Python (private folder above it)")
    yield base, db
    shutil.rmtree(base)


@pytest.mark.parametrize(
    "cmd",
    [["features"], ["backtest"], ["init"], ["generate", "--days", "1", "--seed", "5"]],
    ids=["features", "backtest", "init", "generate"],
)
def test_writing_commands_answer_with_one_line(ro_store: tuple[Path, Path], cmd: list[str]) -> None:
    base, db = ro_store
    before = _snapshot(db)
    r = _as_nobody(*cmd, "--db-dir", str(db), cwd=base)
    lines = [x for x in r.stderr.splitlines() if x.strip() and not x.startswith("backtest:")]
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    assert str(db) in lines[0] or "Permission denied" in lines[0], lines[0]
    assert _snapshot(db) == before


@pytest.mark.parametrize(
    "cmd",
    [["status"], ["sources", "list"], ["grid", "list"], ["sql", "SELECT count(*) FROM raw_trades"]],
    ids=["status", "sources", "grid-list", "sql"],
)
def test_reading_commands_work(ro_store: tuple[Path, Path], cmd: list[str]) -> None:
    base, db = ro_store
    before = _snapshot(db)
    r = _as_nobody(*cmd, "--db-dir", str(db), cwd=base)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert r.stdout.strip(), "says something"
    assert _snapshot(db) == before
