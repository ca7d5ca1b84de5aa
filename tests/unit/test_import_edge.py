"""Odd inputs: empty files, BOM + CRLF, invalid UTF-8, several symbols, missing columns."""

from __future__ import annotations

from pathlib import Path

import pytest

from at_core.errors import InputError
from at_core.ingest.importer import ImportStopped, import_files

HEADER = "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional"
ROW = "1748736000.0123,{sym},Buy,0.010,104500.1,PlusTick,{tid},1,1,1"


def test_header_only_and_blank_lines(tmp_path: Path) -> None:
    f = tmp_path / "h.csv"
    f.write_text(HEADER + "\n\n\n")
    (rep,) = import_files(tmp_path / "db", "bybit", [f])
    assert rep.imported == {"trades": 0} and rep.rows_read == 0 and rep.blank_lines == 2


def test_empty_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "e.csv"
    f.write_bytes(b"")
    with pytest.raises(InputError, match=r"e.csv:1: empty file"):
        import_files(tmp_path / "db", "bybit", [f])


def test_bom_and_crlf(tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_bytes(
        ("\ufeff" + HEADER + "\r\n" + ROW.format(sym="BTCUSDT", tid="a") + "\r\n").encode()
    )
    (rep,) = import_files(tmp_path / "db", "bybit", [f])
    assert rep.imported == {"trades": 1}


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "u.csv"
    f.write_bytes(
        (HEADER + "\n").encode() + ROW.format(sym="BTCUSDT", tid="a\xff").encode("latin-1") + b"\n"
    )
    with pytest.raises(InputError, match=r"u.csv:2: invalid UTF-8"):
        import_files(tmp_path / "db", "bybit", [f])


def test_several_symbols_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "s.csv"
    rows = [ROW.format(sym="BTCUSDT", tid="a"), ROW.format(sym="ETHUSDT", tid="b")]
    f.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match="2 symbols"):
        import_files(tmp_path / "db", "bybit", [f])


def test_missing_column_names_it(tmp_path: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_text("timestamp,symbol,side,size\n1748736000.0123,BTCUSDT,Buy,0.01\n")
    with pytest.raises(
        InputError, match=r"m.csv:1:price: missing column\(s\) 'price', 'trdMatchID'"
    ):
        import_files(tmp_path / "db", "bybit", [f])


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown format"):
        import_files(tmp_path, "nope", [tmp_path / "x.csv"])
    with pytest.raises(InputError, match="no such file"):
        import_files(tmp_path, "bybit", [tmp_path / "x.csv"])


def test_a_carriage_return_inside_a_row_is_refused_with_its_line(tmp_path: Path) -> None:
    """Issue 10 §7: a stray \\r split the row in the CSV reader and shifted every later
    reject's line number; Windows line ends stay fine."""
    from at_core.ingest.importer import check_line_ends

    f = tmp_path / "cr.csv"
    f.write_bytes(b"ts,price,size\n1721260800000,1,1\n1721260801000,x\r,1\n1721260803000,0,1\n")
    with pytest.raises(InputError, match=rf"{f.name}:3: a carriage return inside a line"):
        import_files(tmp_path / "db", "csv", [f])
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(b"ts,price,size\r\n1721260800000,1,1\r\n1721260803000,0,1\r\n")
    with pytest.raises(ImportStopped, match=r"crlf.csv:3:price: non-positive price"):
        import_files(tmp_path / "db", "csv", [crlf])
    # chunk boundaries: a \r\n split across two chunks is a line end, a bare \r is not
    import pyarrow as pa

    check_line_ends(pa.py_buffer(b"ab\r\ncd\r\n"), "x", chunk=3)
    with pytest.raises(InputError, match=r"^x:2:"):
        check_line_ends(pa.py_buffer(b"ab\r\ncd\rxy\n"), "x", chunk=3)
