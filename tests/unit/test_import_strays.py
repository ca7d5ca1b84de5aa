"""A stray timestamp (one row years away from the rest of its file) is refused at import,
named by file:line:field, instead of stretching the stored range (issue 10 §1)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from at_core import cli
from at_core.ingest.importer import ImportStopped, import_files
from at_core.ingest.validate import STRAY_GAP_MS, stray_rows
from at_core.storage.lake import Lake

T0 = 1_721_260_800_000  # 2024-07-18 00:00 UTC
STRAY = 1_580_515_200_000  # 2020-02-01


def _csv(path: Path, n: int, stray_at: int | None) -> Path:
    lines = ["ts,price,size,trade_id"]
    for i in range(n):
        ts = STRAY if i == stray_at else T0 + i * 250
        lines.append(f"{ts},{64000 + (i % 7) * 0.1:.1f},0.01,{i + 1}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_stray_row_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _csv(tmp_path / "t.csv", 500, stray_at=200)
    db = tmp_path / "db"
    with pytest.raises(ImportStopped) as err:
        import_files(db, "csv", [f], ts_unit="ms")
    msg = str(err.value)
    # header is line 1: row 200 is on line 202
    assert f"{f}:202:ts_ms: stray timestamp 2020-02-01T00:00:00.000Z" in msg
    assert "days before the file's other 499 rows" in msg
    assert not Lake(db).days("trades"), "nothing stored"
    # the CLI: one line per problem, exit 2
    assert cli.main(["import", "--db-dir", str(db), "-f", "csv", "--ts-unit", "ms", str(f)]) == 2
    assert "t.csv:202:ts_ms: stray timestamp" in capsys.readouterr().err
    # told to skip bad rows: the good rows are stored, the stray one goes to the rejects
    rej = tmp_path / "rej.csv"
    (rep,) = import_files(db, "csv", [f], ts_unit="ms", on_error="skip", rejects_path=rej)
    assert rep.imported == {"trades": 499}
    assert Lake(db).days("trades") == [dt.date(2024, 7, 18)]
    assert "202" in rej.read_text() and "stray" in rej.read_text()


def test_two_real_windows_in_one_file_are_kept(tmp_path: Path) -> None:
    f = tmp_path / "two.csv"
    lines = ["ts,price,size,trade_id"]
    for k, start in enumerate((T0, T0 + 400 * 86_400_000)):
        for i in range(100):
            lines.append(f"{start + i * 1000},64000.0,0.01,{k * 100 + i + 1}")
    f.write_text("\n".join(lines) + "\n")
    (rep,) = import_files(tmp_path / "db", "csv", [f], ts_unit="ms")
    assert rep.imported == {"trades": 200}


@settings(max_examples=100, deadline=None)
@given(
    bulk=st.integers(100, 3000),
    far=st.integers(1, 30),
    days_away=st.integers(1, 2000),
    before=st.booleans(),
)
def test_strays_are_exactly_the_small_far_cluster(
    bulk: int, far: int, days_away: int, before: bool
) -> None:
    ts = T0 + np.arange(bulk, dtype=np.int64) * 1000
    off = days_away * 86_400_000 + STRAY_GAP_MS
    extra = (T0 - off if before else ts[-1] + off) + np.arange(far, dtype=np.int64)
    both = np.r_[ts, extra]
    mask, (lo, hi, n) = stray_rows(both, np.ones(len(both), dtype=bool))
    small = far <= max(1, int(0.01 * len(both)))
    assert mask[bulk:].all() == small and not mask[:bulk].any()
    assert (lo, hi, n) == (int(ts[0]), int(ts[-1]), bulk)
