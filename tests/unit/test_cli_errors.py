"""Every command answers a bad data folder with one line naming the path and the problem,
and a non-zero exit (issue 10 section 4): before, a ``--db-dir`` that is a file gave
FileExistsError / NotADirectoryError tracebacks, and ``status`` printed 0 rows, exit 0."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from at_core import cli

COMMANDS = [
    ["init"],
    ["status"],
    ["status", "--json"],
    ["sql", "SELECT 1"],
    ["generate", "--days", "1"],
    ["features"],
    ["backtest"],
    ["grid", "list"],
    ["purge"],
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_a_db_dir_that_is_a_file(
    cmd: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "not-a-folder"
    f.write_text("x")
    rc = cli.main([*cmd, "--db-dir", str(f)])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and str(f) in lines[0] and "not a directory" in lines[0], err
    assert f.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
@pytest.mark.parametrize("cmd", [["init"], ["generate", "--days", "1"]], ids=["init", "generate"])
def test_a_read_only_db_dir(
    cmd: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o555)
    try:
        rc = cli.main([*cmd, "--db-dir", str(d)])
    finally:
        d.chmod(0o755)
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and str(d) in err, err
