"""Timestamp unit detection (SPEC §3.2) and exact conversion, directly and through `csv`."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from at_core.errors import InputError
from at_core.ingest import timestamps as ts
from at_core.ingest.importer import import_files
from at_core.storage.lake import Lake

# 2025-06-01 00:00:00.999 UTC, hand-computed: 1748736000 s since the epoch
BASE_S = 1748736000


@pytest.mark.parametrize(
    ("values", "unit"),
    [
        (["1748736000.5", "1748736001", "1748736002.25"], "s"),
        (["1748736000500", "1748736001000"], "ms"),
        (["1748736000500000", "1748736001000000"], "us"),
        (["1748736000500000000", "1748736001000000000"], "ns"),
        (["2025-06-01T00:00:00.500Z", "2025-06-01 00:00:01"], "iso"),
        (["946684800"], "s"),  # 2000-01-01: 9 digits
    ],
)
def test_detects_each_unit(values: list[str], unit: str) -> None:
    assert ts.detect_unit(pa.array(values)).unit == unit


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        (["1748736000", "1748736000500"], "ambiguous"),  # seconds and ms mixed
        (["12345", "12346"], "ambiguous"),  # ms since midnight? seconds of 1970? refuse
        (["1748736000", "2025-06-01T00:00:00Z"], "mixes epoch numbers"),
        (["yesterday"], "neither epoch numbers nor ISO"),
        (["17487360001"], "ambiguous"),  # 11 digits: no unit gives a 1990-2100 date
    ],
)
def test_refuses_ambiguous_columns(values: list[str], needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        ts.detect_unit(pa.array(values))


@pytest.mark.parametrize(
    ("text", "unit", "ms"),
    [
        ("1748736000.999999999", "s", 1748736000999),  # float64 would give ...001000
        ("1748736000.9999999999999", "s", 1748736000999),  # more digits than the scale
        ("1748736000.0125", "s", 1748736000012),
        ("1748736000", "s", 1748736000000),
        ("1748736000999.9", "ms", 1748736000999),
        ("1748736000999999", "us", 1748736000999),
        ("1748736000999999999", "ns", 1748736000999),
        ("2025-06-01T00:00:00.999Z", "iso", 1748736000999),
        ("2025-06-01T02:00:00.5+02:00", "iso", 1748736000500),
        ("2025-06-01 00:00:00.123456789", "iso", 1748736000123),  # naive = UTC
        ("2025-06-01", "iso", 1748736000000),
    ],
)
def test_exact_conversion(text: str, unit: str, ms: int) -> None:
    conv = ts.strings_to_ms(pa.array([text]), unit)
    assert not conv.bad[0], conv.reasons
    assert int(conv.ts_ms[0]) == ms


def test_bad_values_are_flagged_per_row() -> None:
    conv = ts.strings_to_ms(pa.array(["1748736000.5", "", "12x", "5"]), "s")
    assert conv.bad.tolist() == [False, True, True, True]
    assert conv.reasons[1] == "missing timestamp"
    assert "unparsable" in conv.reasons[2]
    assert "out of range" in conv.reasons[3]


def _csv(path: Path, stamps: list[str]) -> Path:
    rows = [f"{s},{100 + i}.5,0.{i + 1}" for i, s in enumerate(stamps)]
    path.write_text("time,px,qty\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("stamps", "unit"),
    [
        ([f"{BASE_S}.0015", f"{BASE_S}.25"], "epoch seconds"),
        ([f"{BASE_S}001", f"{BASE_S}250"], "epoch milliseconds"),
        ([f"{BASE_S}001500", f"{BASE_S}250000"], "epoch microseconds"),
        ([f"{BASE_S}001500000", f"{BASE_S}250000000"], "epoch nanoseconds"),
        (["2025-06-01T00:00:00.001Z", "2025-06-01T00:00:00.250Z"], "ISO 8601"),
    ],
)
def test_generic_csv_detects_and_reports_unit(tmp_path: Path, stamps: list[str], unit: str) -> None:
    f = _csv(tmp_path / "t.csv", stamps)
    (rep,) = import_files(
        tmp_path / "db", "csv", [f], mapping={"ts": "time", "price": "px", "size": "qty"}
    )
    assert rep.ts_unit is not None and rep.ts_unit.startswith(f"{unit} (detected)")
    t = Lake(tmp_path / "db").read_day("trades", rep.days[0]).to_pydict()
    assert t["ts_ms"] == [1748736000001, 1748736000250]


def test_generic_csv_ambiguous_is_refused_and_ts_unit_resolves(tmp_path: Path) -> None:
    f = _csv(tmp_path / "t.csv", ["12000", "13000"])
    mapping = {"ts": "time", "price": "px", "size": "qty"}
    with pytest.raises(InputError, match=r"ambiguous.*--ts-unit"):
        import_files(tmp_path / "db", "csv", [f], mapping=mapping)
    assert not (tmp_path / "db" / "lake" / "trades").exists()
    g = _csv(tmp_path / "g.csv", [f"{BASE_S}", f"{BASE_S}500"])
    with pytest.raises(InputError, match="mix units"):
        import_files(tmp_path / "db", "csv", [g], mapping=mapping)
    # told the unit, rows outside 1990-2100 are reported by line, not guessed
    (rep,) = import_files(
        tmp_path / "db", "csv", [g], mapping=mapping, ts_unit="ms", on_error="skip"
    )
    assert rep.rejected_rows == 1 and rep.imported == {"trades": 1}
    assert rep.rejects[0].line == 2 and rep.rejects[0].field == "time"


def test_a_unit_that_cannot_be_detected_names_the_file(tmp_path: Path) -> None:
    """Issue 10 §7: the detection error named the column but not the file."""
    f = tmp_path / "tiny.csv"
    f.write_text("ts,price,size\n5,1,1\n7,1,1\n")
    with pytest.raises(InputError, match=rf"^{re.escape(str(f))}: column 'ts': cannot tell"):
        import_files(tmp_path / "db", "csv", [f])
