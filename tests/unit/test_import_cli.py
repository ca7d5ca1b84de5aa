"""`auction-trader import` from the command line: summaries and exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from at_core.cli import main

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


def test_cli_imports_and_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "import",
            "--db-dir",
            str(tmp_path),
            "--format",
            "bybit",
            str(FIX / "bybit_BTCUSDT2025-06-01.csv"),
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "trades 6" in out and "rejected 0" in out and "epoch seconds" in out
    rc = main(
        [
            "import",
            "--db-dir",
            str(tmp_path),
            "-f",
            "bybit",
            str(FIX / "bybit_BTCUSDT2025-06-01.csv"),
        ]
    )
    assert rc == 0 and "already imported" in capsys.readouterr().out


def test_cli_stops_with_exit_2_and_lists_first_20(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "many.csv"
    rows = [f"17487360000{i:02d},{-1 if i % 2 else 1},1" for i in range(50)]
    f.write_text("ts,price,size\n" + "\n".join(rows) + "\n")
    rc = main(["import", "--db-dir", str(tmp_path / "db"), "-f", "csv", "--ts-unit", "ms", str(f)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "many.csv:3:price: non-positive price (-1.0)" in err
    assert err.count("non-positive price") == 20
    assert "... and 5 more" in err and "25 bad row(s)" in err
    rc = main(
        [
            "import",
            "--db-dir",
            str(tmp_path / "db"),
            "-f",
            "csv",
            "--ts-unit",
            "ms",
            "--on-error",
            "skip",
            "--rejects",
            str(tmp_path / "r.csv"),
            str(f),
        ]
    )
    assert rc == 0
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 26
