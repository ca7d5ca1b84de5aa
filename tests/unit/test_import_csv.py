"""Generic CSV import: --map, sides, quotes, bad input reported by file:line:field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from at_core.errors import InputError
from at_core.ingest.importer import ImportStopped, import_files, parse_mapping
from at_core.storage.lake import Lake

DAY = dt.date(2025, 6, 1)


def test_trades_with_mapping_sides_and_ids(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text(
        "when,px,amount,taker,tid\n"
        "2025-06-01T00:00:01Z,100.5,0.1,BUY,7\n"
        "2025-06-01T00:00:00.5Z,100.4,0.2,s,6\n"
        "2025-06-01T00:00:01Z,100.6,0.3,,8\n"
    )
    m = parse_mapping("ts=when,price=px,size=amount,side=taker,trade_id=tid")
    (rep,) = import_files(tmp_path / "db", "csv", [f], mapping=m)
    t = Lake(tmp_path / "db").read_day("trades", DAY).to_pydict()
    assert t["ts_ms"] == [1748736000500, 1748736001000, 1748736001000]
    assert t["exchange_side"] == [-1, 1, None]
    assert t["seq"] == [6, 7, 8] and t["trade_id"] == ["6", "7", "8"]
    assert rep.imported == {"trades": 3}


def test_quotes_with_default_names(tmp_path: Path) -> None:
    f = tmp_path / "q.csv"
    f.write_text(
        "ts_ms,bid_px,bid_sz,ask_px,ask_sz\n"
        "1748736000000,100.0,1,100.1,2\n"
        "1748736000000,100.0,1.5,100.0,2\n"  # locked (bid == ask) is kept
    )
    (rep,) = import_files(tmp_path / "db", "csv", [f], kind="quotes")
    q = Lake(tmp_path / "db").read_day("quotes", DAY).to_pydict()
    assert rep.imported == {"quotes": 2}
    assert q["seq"] == [2, 3] and q["bid_sz"] == [1.0, 1.5]


def test_every_bad_field_is_listed(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(
        "ts,price,size\n"
        "1748736000000,100,1\n"
        "1748736000001,0,1\n"  # non-positive price
        "1748736000002,100,0\n"  # zero size
        "1748736000003,x,-1\n"  # two bad fields on one line
        "1748736000004,100\n"  # missing field
        "1748736000005,inf,1\n"
        ",100,1\n"  # missing timestamp
    )
    with pytest.raises(ImportStopped) as err:
        import_files(tmp_path / "db", "csv", [f], ts_unit="ms")
    msg = str(err.value)
    for where in (":3:price:", ":4:size:", ":5:price:", ":6:size:", ":7:price:", ":8:ts:"):
        assert f"bad.csv{where}" in msg, where
    assert "6 bad row(s)" in msg
    (rep,) = import_files(tmp_path / "db", "csv", [f], ts_unit="ms", on_error="skip")
    assert rep.imported == {"trades": 1} and rep.rejected_rows == 6
    assert any(r.line == 5 and r.field == "size" for r in rep.rejects)  # -1 on the bad line too


def test_mapping_errors_are_clear(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("a,b,c\n1748736000000,1,1\n")
    with pytest.raises(InputError, match=r"t.csv:1: no column for 'ts'; pass --map ts="):
        import_files(tmp_path / "db", "csv", [f])
    with pytest.raises(InputError, match="names no column"):
        import_files(tmp_path / "db", "csv", [f], mapping={"ts": "zz", "price": "b", "size": "c"})
    with pytest.raises(InputError, match="unknown field"):
        import_files(tmp_path / "db", "csv", [f], mapping={"tss": "a"})
    with pytest.raises(InputError, match="FIELD=COLUMN"):
        parse_mapping("ts")
    with pytest.raises(InputError, match="--map only applies"):
        import_files(tmp_path / "db", "bybit", [f], mapping={"ts": "a"})


def test_forced_reimport_with_another_unit_leaves_no_stale_rows(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("ts,price,size\n1748736000000000,1,1\n")  # µs: 2025-06-01
    db = tmp_path / "db"
    import_files(db, "csv", [f], ts_unit="ns", on_error="skip")  # wrong unit: 1970 -> rejected
    (rep,) = import_files(db, "csv", [f], ts_unit="us", force=True)
    assert rep.imported == {"trades": 1}
    assert Lake(db).days("trades") == [DAY]
    g = tmp_path / "g.csv"
    g.write_text("ts,price,size\n1748739600000,1,1\n1748826000000,1,1\n")  # two days, after t
    import_files(db, "csv", [g], ts_unit="ms")
    (rep2,) = import_files(db, "csv", [g], ts_unit="s", force=True, on_error="skip")
    assert rep2.imported == {"trades": 0} and rep2.rejected_rows == 2
    lake = Lake(db)
    assert [p.name for d in lake.days("trades") for p in lake.parts("trades", d)] == [
        f"part-{rep.source_id}.parquet"
    ]
