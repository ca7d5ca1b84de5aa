"""Bybit public trade archive import: exact timestamps, sides, order, bad rows, re-import."""

from __future__ import annotations

import datetime as dt
import gzip
import zipfile
from pathlib import Path

import pyarrow as pa
import pytest

from at_core.errors import InputError
from at_core.ingest.importer import ImportStopped, import_files
from at_core.storage.lake import Lake

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
NEW = FIX / "bybit_BTCUSDT2025-06-01.csv"
OLD = FIX / "bybit_BTCUSDT2020-03-25_newest_first.csv"
BAD = FIX / "bybit_bad.csv"


def _all(lake: Lake, kind: str = "trades") -> pa.Table:
    days = lake.days(kind)  # type: ignore[arg-type]
    if not days:
        return pa.table({})
    return pa.concat_tables([lake.read_day(kind, d) for d in days])  # type: ignore[arg-type]


def test_new_file_with_rpi_exact_timestamps_and_sides(tmp_path: Path) -> None:
    (rep,) = import_files(tmp_path, "bybit", [NEW])
    assert rep.imported == {"trades": 6} and rep.rejected_rows == 0
    t = _all(Lake(tmp_path)).to_pydict()
    # hand-computed floors of the text timestamps (no float on the way)
    assert t["ts_ms"] == [
        1748736000012,  # .0123
        1748736000012,  # .0125
        1748736000012,  # .0125
        1748736000999,  # .999999999 -> a float would round to ...001000
        1748736001500,  # .5
        1748736059999,  # .9999
    ]
    assert t["exchange_side"] == [1, -1, -1, 1, 1, -1]
    assert t["size"] == [0.010, 0.250, 0.003, 1.200, 0.001, 0.042]
    assert t["price"][0] == 104500.1
    # same-millisecond trades keep the file's order
    assert [i[-1] for i in t["trade_id"]] == ["1", "2", "3", "4", "5", "6"]
    assert rep.days == [dt.date(2025, 6, 1)]
    assert "epoch seconds" in (rep.ts_unit or "")


def test_newest_first_file_is_stored_in_event_order(tmp_path: Path) -> None:
    (rep,) = import_files(tmp_path, "bybit", [OLD])
    assert any("newest-first" in n for n in rep.notes)
    t = _all(Lake(tmp_path)).to_pydict()
    assert t["ts_ms"] == [1585180700002, 1585180700064, 1585180799812, 1585180799812, 1585180799812]
    # lines 4, 3, 2 share a millisecond; the event order is the reverse of the file order
    assert [i[-1] for i in t["trade_id"]] == ["1", "2", "3", "4", "5"]


def test_gz_and_zip_are_read_and_recognised_as_the_same_content(tmp_path: Path) -> None:
    gz = tmp_path / "BTCUSDT2025-06-01.csv.gz"
    gz.write_bytes(gzip.compress(NEW.read_bytes()))
    zp = tmp_path / "BTCUSDT2025-06-01.zip"
    with zipfile.ZipFile(zp, "w") as zf:
        zf.write(NEW, "BTCUSDT2025-06-01.csv")
    db = tmp_path / "db"
    (first,) = import_files(db, "bybit", [gz])
    assert first.imported == {"trades": 6}
    again = import_files(db, "bybit", [NEW, zp])
    assert [r.status for r in again] == ["skipped", "skipped"]
    assert _all(Lake(db)).num_rows == 6


def test_forced_reimport_replaces_and_does_not_duplicate(tmp_path: Path) -> None:
    import_files(tmp_path, "bybit", [NEW])
    (rep,) = import_files(tmp_path, "bybit", [NEW], force=True)
    assert rep.status == "imported"
    assert _all(Lake(tmp_path)).num_rows == 6


def test_same_trades_in_another_file_are_not_counted_twice(tmp_path: Path) -> None:
    import_files(tmp_path, "bybit", [NEW])
    copy = tmp_path / "copy.csv"
    copy.write_bytes(NEW.read_bytes() + b"\n")  # different bytes, same trades
    # the same trades from another file: refused (one source per stream and time) ...
    with pytest.raises(InputError, match=r"its trades .* overlap source"):
        import_files(tmp_path, "bybit", [copy])
    assert _all(Lake(tmp_path)).num_rows == 6
    # ... or, told so, they replace the first file's: still six trades, from the copy
    (rep,) = import_files(tmp_path, "bybit", [copy], force=True)
    assert rep.imported == {"trades": 6} and rep.duplicates_dropped == 0
    assert _all(Lake(tmp_path)).num_rows == 6
    assert [Path(s.path).name for s in Lake(tmp_path).sources.all()] == ["copy.csv"]


def test_bad_rows_stop_the_file_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(ImportStopped) as err:
        import_files(tmp_path, "bybit", [BAD])
    msg = str(err.value)
    for where in (":3:size:", ":4:size:", ":5:tickDirection:", ":7:side:", ":8:price:"):
        assert f"bybit_bad.csv{where}" in msg
    assert "unparsable number 'abc'" in msg
    assert "negative or zero size" in msg
    assert "not a finite number" in msg
    assert "5 bad row(s)" in msg
    lake = Lake(tmp_path)
    assert lake.days("trades") == [] and lake.imports() == []
    assert not list(tmp_path.rglob("*.parquet"))


def test_bad_rows_skip_imports_good_rows_and_writes_rejects(tmp_path: Path) -> None:
    rejects = tmp_path / "out" / "rej.csv"
    (rep,) = import_files(tmp_path, "bybit", [BAD], on_error="skip", rejects_path=rejects)
    assert rep.imported == {"trades": 2} and rep.rejected_rows == 5 and rep.blank_lines == 1
    rows = rejects.read_text().splitlines()
    assert rows[0] == "file,line,field,reason,raw"
    got = [(r.split(",")[1], r.split(",")[2]) for r in rows[1:]]
    assert got == [
        ("3", "size"),
        ("4", "size"),
        ("5", "tickDirection"),
        ("7", "side"),
        ("8", "price"),
    ]
    assert "Hold" in rows[4]  # the raw line is kept
    t = _all(Lake(tmp_path)).to_pydict()
    assert t["ts_ms"] == [1748736000012, 1748736000018]
    assert Lake(tmp_path).imported(rep.source_id)["rejected"] == 5  # type: ignore[index]


def test_out_of_order_rows_are_sorted(tmp_path: Path) -> None:
    lines = NEW.read_text().splitlines()
    shuffled = [lines[0], lines[1], lines[3], lines[2], lines[5], lines[4], lines[6]]
    f = tmp_path / "shuffled.csv"
    f.write_text("\n".join(shuffled) + "\n")
    (rep,) = import_files(tmp_path / "db", "bybit", [f])
    t = _all(Lake(tmp_path / "db")).to_pydict()
    assert t["ts_ms"] == sorted(t["ts_ms"])
    assert rep.imported == {"trades": 6}
    assert any("1 rows out of order" in n for n in rep.notes)
    # rows of one millisecond keep the order in which the file lists them
    assert [i[-1] for i in t["trade_id"]] == ["1", "3", "2", "4", "5", "6"]
