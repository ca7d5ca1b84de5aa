"""The command line: every command has --help; user errors are one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from at_core.cli import build_parser, main


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)  # type: ignore[arg-type]


def test_expected_commands_exist() -> None:
    assert {"init", "status", "sql", "purge", "demo"} <= set(_commands())


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ei:
        main([command, "--help"])
    assert ei.value.code == 0
    assert "usage: auction-trader" in capsys.readouterr().out


def test_installed_script_runs() -> None:
    exe = Path(sys.executable).parent / "auction-trader"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "COMMAND" in out.stdout


def test_bad_override_is_one_line_error(db_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["demo", "--db-dir", str(db_dir), "--set", "va_fraction=7", "--days", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "va_fraction" in err and "Traceback" not in err
