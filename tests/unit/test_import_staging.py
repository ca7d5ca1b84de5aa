"""Big files are hashed while their lake parts are staged under temporary names
(at_core/ingest/importer.py, Lake.stage): the lake, the reports and the rejects must be
exactly those of the hash-first path, and no temporary file may be left behind.

``OVERLAP_HASH_BYTES = 0`` sends the small fixtures down the big-file path; each case is
compared with the same import on the hash-first path.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

import at_core.ingest.importer as imp
from at_core.errors import InputError
from at_core.ingest.importer import ImportStopped, import_files
from at_core.storage.lake import KINDS, Lake

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
BYBIT = FIX / "bybit_BTCUSDT2025-06-01.csv"
HEADER = (
    "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,"
    "foreignNotional\n"
)


def _lake(db: Path) -> dict[str, pa.Table]:
    lake = Lake(db)
    return {
        kind: pa.concat_tables([lake.read_day(kind, d) for d in lake.days(kind)])
        for kind in KINDS
        if lake.days(kind)
    }


def _files(db: Path) -> list[str]:
    """Every file under the lake's day directories (temporary ones included)."""
    root = Lake(db).root
    return sorted(str(p.relative_to(root)) for p in root.glob("*/date=*/*") if p.is_file())


def _no_temporaries(db: Path) -> None:
    assert [f for f in _files(db) if Path(f).name.startswith(".")] == []


def _summary(rep: imp.ImportReport) -> tuple[object, ...]:
    return (
        rep.status,
        rep.rows_read,
        rep.imported,
        rep.rejected_rows,
        rep.duplicates_dropped,
        rep.days,
        rep.source_id,
        rep.notes,
        sorted(str(r) for r in rep.rejects),
    )


def _both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: list[tuple[Path, dict[str, object]]]
) -> list[tuple[object, ...]]:
    """Run the same import steps on both paths; return the summaries of the big path."""
    out: dict[str, list[tuple[object, ...]]] = {}
    for name, limit in (("first", imp.OVERLAP_HASH_BYTES), ("overlap", 0)):
        monkeypatch.setattr(imp, "OVERLAP_HASH_BYTES", limit)
        db = tmp_path / name
        out[name] = []
        for src, kw in steps:
            try:
                (rep,) = import_files(db, "bybit", [src], **kw)  # type: ignore[arg-type]
            except ImportStopped as exc:
                rep = exc.report
            except InputError as exc:  # refused before anything was staged
                out[name].append(("refused", str(exc)))
                _no_temporaries(db)
                continue
            out[name].append(_summary(rep))
            _no_temporaries(db)
    assert out["overlap"] == out["first"]
    a, b = _lake(tmp_path / "first"), _lake(tmp_path / "overlap")
    assert a.keys() == b.keys()
    for kind in a:
        assert a[kind].equals(b[kind]), kind
    assert _files(tmp_path / "first") == _files(tmp_path / "overlap")
    return out["overlap"]


@pytest.fixture(params=[False, True], ids=["days-checked", "always-staged"])
def always_staged(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Also run with the check for stored days switched off, so that parts are staged
    before the hash is known even when the day holds parts (this file's own included)."""
    if request.param:
        monkeypatch.setattr(imp, "_touches_stored_days", lambda _lake, _tables: False)
    return bool(request.param)


def test_reimport_is_skipped_and_forced_reimport_replaces_its_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, always_staged: bool
) -> None:
    steps: list[tuple[Path, dict[str, object]]] = [
        (BYBIT, {}),
        (BYBIT, {}),
        (BYBIT, {"force": True}),
    ]
    first, again, forced = _both(tmp_path, monkeypatch, steps)
    assert first[0] == "imported" and again[0] == "skipped" and forced[0] == "imported"
    assert forced[2] == first[2] and forced[4] == 0  # no duplicates against its own part


def test_trades_of_another_source_are_refused_or_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, always_staged: bool
) -> None:
    lines = BYBIT.read_text().splitlines()
    other = tmp_path / "other.csv"  # two of the same trades plus one of its own
    other.write_text(
        lines[0]
        + "\n"
        + "\n".join(lines[2:4])
        + "\n1748736030.5,BTCUSDT,Buy,0.5,104500.0,PlusTick,own-1,1,1,1,0\n"
    )
    _, refused, forced = _both(
        tmp_path, monkeypatch, [(other, {}), (BYBIT, {}), (BYBIT, {"force": True})]
    )
    # the same trades from another source: refused (one source per stream and time) ...
    assert refused[0] == "refused" and "overlap source" in str(refused[1])
    # ... or replaced: the other source's trades go, none of this file's count as known
    assert forced[0] == "imported" and forced[4] == 0 and forced[2] == {"trades": 6}
    assert any("replaced source" in n for n in forced[7])  # type: ignore[union-attr]


def test_rejects_and_skip_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, always_staged: bool
) -> None:
    bad = FIX / "bybit_bad.csv"
    stop, skip, again = _both(
        tmp_path,
        monkeypatch,
        [(bad, {}), (bad, {"on_error": "skip"}), (bad, {"on_error": "skip"})],
    )
    assert stop[0] == "failed" and skip[0] == "imported" and again[0] == "skipped"
    assert skip[3] > 0 and skip[8] == stop[8]


def test_recorded_import_without_parts_is_still_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest says imported but the parts are gone (e.g. deleted by hand): the
    staged parts of the big-file path are discarded, as the hash-first path never
    writes them."""
    monkeypatch.setattr(imp, "OVERLAP_HASH_BYTES", 0)
    db = tmp_path / "db"
    (rep,) = import_files(db, "bybit", [BYBIT])
    for part in Lake(db).root.glob("*/date=*/*.parquet"):
        part.unlink()
    (again,) = import_files(db, "bybit", [BYBIT])
    assert again.status == "skipped" and again.source_id == rep.source_id
    assert _files(db) == []


def test_a_failing_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imp, "OVERLAP_HASH_BYTES", 0)
    src = tmp_path / "two_days.csv"
    src.write_text(
        HEADER
        + "1748736000.5,BTCUSDT,Buy,0.5,104500.0,PlusTick,t1,1,1,1\n"
        + "1748822400.5,BTCUSDT,Buy,0.5,104500.0,PlusTick,t2,1,1,1\n"
    )
    import pyarrow.parquet as pq

    real = pq.write_table
    calls: list[object] = []

    def fail_second(*a: object, **k: object) -> None:
        calls.append(a[1])
        if len(calls) == 2:
            raise OSError("disk full")
        real(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(pq, "write_table", fail_second)
    with pytest.raises(OSError, match="disk full"):
        import_files(tmp_path / "db", "bybit", [src])
    assert len(calls) == 2 and _files(tmp_path / "db") == []
    assert Lake(tmp_path / "db").imports() == []


def test_long_files_check_the_stored_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, always_staged: bool
) -> None:
    """A file spanning more than a month, re-imported and overlapping another source."""
    day = 86_400
    rows = [
        f"{1748736000 + k * day}.5,BTCUSDT,Buy,0.5,104500.0,PlusTick,t{k},1,1,1" for k in range(40)
    ]
    long = tmp_path / "long.csv"
    long.write_text(HEADER + "\n".join(rows) + "\n")
    other = tmp_path / "other.csv"
    other.write_text(HEADER + rows[20] + "\n")
    out = _both(
        tmp_path, monkeypatch, [(other, {}), (long, {}), (long, {"force": True}), (long, {})]
    )
    assert [o[0] for o in out] == ["imported", "refused", "imported", "skipped"]
    assert out[2][4] == 0 and out[2][2] == {"trades": 40}  # the other source's trade replaced
