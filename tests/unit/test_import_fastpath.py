"""The Rust CSV fast path (at_core/ingest/fastcsv.py) stores exactly what the general
pyarrow path stores, and declines every file the general path would report something about.

Each case imports the same file twice, once with the fast path switched off, and compares
the lake (every column, bit for bit), the reports and the rejects. Golden values of the
formats themselves are in test_import_bybit.py / test_import_binance.py, which now run
through the fast path.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from at_core.ingest import fastcsv
from at_core.ingest.importer import ImportStopped, import_files
from at_core.storage.lake import KINDS, Lake

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
BIN_CSV = DATA / "binance_usdm_btcusdt" / "csv"

CASES = [
    ("bybit", "bybit_BTCUSDT2025-06-01.csv"),
    ("bybit", "bybit_BTCUSDT2020-03-25_newest_first.csv"),
    ("bybit", "bybit_bad.csv"),
    ("binance-trades", "binance_trades.csv"),
    ("binance-bookticker", "binance_bookticker.csv"),
    ("binance-bookticker", "binance_bookticker_bad.csv"),
]
BYBIT_HEADER = (
    "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,"
    "foreignNotional\n"
)


def _lake(db: Path) -> dict[str, pa.Table]:
    lake = Lake(db)
    out: dict[str, pa.Table] = {}
    for kind in KINDS:
        days = lake.days(kind)
        if days:
            out[kind] = pa.concat_tables([lake.read_day(kind, d) for d in days])
    return out


def _run(db: Path, fmt: str, path: Path, on_error: str, fast: bool) -> tuple[object, ...]:
    """Import with the fast path on or off; return everything observable."""
    saved = fastcsv.ENABLED
    fastcsv.ENABLED = fast
    try:
        try:
            (rep,) = import_files(db, fmt, [path], on_error=on_error, instrument_checks=False)
            error = None
        except ImportStopped as exc:
            rep, error = exc.report, str(exc)
    finally:
        fastcsv.ENABLED = saved
    rejects = sorted(str(r) for r in rep.rejects)
    raw = sorted((r.line, r.raw) for r in rep.rejects)
    summary = (rep.status, rep.rows_read, rep.imported, rep.rejected_rows, rep.days)
    meta = (rep.ts_unit, rep.notes, rep.blank_lines, rep.duplicates_dropped, rep.source_id)
    return summary, meta, rejects, raw, error


def _same_everywhere(tmp_path: Path, fmt: str, path: Path, on_error: str) -> tuple[object, ...]:
    slow = _run(tmp_path / "slow", fmt, path, on_error, fast=False)
    fast = _run(tmp_path / "fast", fmt, path, on_error, fast=True)
    assert fast == slow
    a, b = _lake(tmp_path / "slow"), _lake(tmp_path / "fast")
    assert a.keys() == b.keys()
    for kind in a:
        assert a[kind].schema == b[kind].schema
        assert a[kind].equals(b[kind]), kind
    return fast


@pytest.mark.parametrize("on_error", ["stop", "skip"])
@pytest.mark.parametrize(("fmt", "name"), CASES)
def test_fixtures_store_the_same_lake(tmp_path: Path, fmt: str, name: str, on_error: str) -> None:
    _same_everywhere(tmp_path, fmt, FIX / name, on_error)


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("bybit", "bybit_BTCUSDT2025-06-01.csv"),
        ("bybit", "bybit_BTCUSDT2020-03-25_newest_first.csv"),
        ("binance-trades", "binance_trades.csv"),
        ("binance-bookticker", "binance_bookticker.csv"),
    ],
)
def test_clean_fixtures_take_the_fast_path(fmt: str, name: str) -> None:
    if not hasattr(__import__("at_core._core", fromlist=["x"]), "parse_csv_fast"):
        pytest.skip("compiled core predates parse_csv_fast: rebuild with maturin develop")
    from at_core.ingest.formats import FORMATS, Options

    calls: list[object] = []
    orig = fastcsv.read

    def spy(*a: object, **k: object) -> object:
        out = orig(*a, **k)  # type: ignore[arg-type]
        calls.append(out)
        return out

    data = pa.py_buffer((FIX / name).read_bytes())
    fastcsv.read, saved = spy, fastcsv.read  # type: ignore[assignment]
    try:
        FORMATS[fmt](data, name, Options())
    finally:
        fastcsv.read = saved
    assert len(calls) == 1 and calls[0] is not None


@pytest.mark.parametrize(
    "line",
    [
        "1748736000.0283,BTCUSDT,Buy,0.5,104500.1,PlusTick,x1,1,1,1,extra",  # too many fields
        "1748736000.0283,BTCUSDT,Buy,0.5,104500.1,PlusTick,x1,1,1",  # too few
        "1748736000.0283,BTCUSDT,Buy,,104500.1,PlusTick,x1,1,1,1",  # empty size
        "1748736000.0283,BTCUSDT,Buy,0.5,1e5,PlusTick,x1,1,1,1",  # exponent
        "1748736000.0283,BTCUSDT,Buy,-0.5,104500.1,PlusTick,x1,1,1,1",  # negative size
        "1748736000.0283,BTCUSDT,Buy,0,104500.1,PlusTick,x1,1,1,1",  # zero size (validate)
        "1748736000.0283,BTCUSDT,Hold,0.5,104500.1,PlusTick,x1,1,1,1",  # unknown side
        "1748736000.0283,ETHUSDT,Buy,0.5,104500.1,PlusTick,x1,1,1,1",  # second symbol
        "17487360.0283,BTCUSDT,Buy,0.5,104500.1,PlusTick,x1,1,1,1",  # out of range
        "1748736000.0283123456,BTCUSDT,Buy,0.5,104500.1,PlusTick,x1,1,1,1",  # 10 decimals
        '1748736000.0283,BTCUSDT,Buy,0.5,104500.1,PlusTick,"x,1",1,1,1',  # quoted
        "1748736000.0283,BTCUSDT,Buy,0.5,104500.1,PlusTick,x1,1,1,1\r",  # CR
        "",  # blank line
        "1748736000.0283,BTCUSDT, Buy,0.5,104500.1,PlusTick,x1,1,1,1",  # padded side
        "1748736000.0283,BTCUSDT,Buy,0.5,nan,PlusTick,x1,1,1,1",  # not finite
        "1748736000.,BTCUSDT,Buy,0.5,104500.1,PlusTick,x1,1,1,1",  # bare point
    ],
)
@pytest.mark.parametrize("on_error", ["stop", "skip"])
def test_irregular_lines_give_the_general_paths_answer(
    tmp_path: Path, line: str, on_error: str
) -> None:
    good = [
        f"1748736001.{i:04d},BTCUSDT,{'Sell' if i % 2 else 'Buy'},0.{i + 1:03d},104500.{i},"
        f"ZeroPlusTick,id-{i},1,1,1"
        for i in range(5)
    ]
    src = tmp_path / "f.csv"
    src.write_text(BYBIT_HEADER + "\n".join([*good[:2], line, *good[2:]]) + "\n")
    try:
        _same_everywhere(tmp_path, "bybit", src, on_error)
    except Exception as exc:  # an InputError raised by both paths alike
        slow_err = _error_of(tmp_path / "slow2", src, on_error, fast=False)
        assert slow_err == _error_of(tmp_path / "fast2", src, on_error, fast=True)
        assert slow_err is not None, exc


def _error_of(db: Path, src: Path, on_error: str, fast: bool) -> str | None:
    saved = fastcsv.ENABLED
    fastcsv.ENABLED = fast
    try:
        import_files(db, "bybit", [src], on_error=on_error, instrument_checks=False)
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        fastcsv.ENABLED = saved


_decimal = st.builds(
    lambda i, f, nd: f"{i}.{f:0{nd}d}" if nd else str(i),
    st.integers(1, 10**7),
    st.integers(0, 10**8),
    st.integers(0, 8),
).filter(lambda s: len(s.split(".")[-1]) <= 8)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 86_399),
            st.integers(0, 10**9 - 1),
            st.integers(0, 9),
            st.booleans(),
            _decimal,
            _decimal,
        ),
        min_size=1,
        max_size=40,
    )
)
def test_random_clean_files_parse_identically(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[int, int, int, bool, str, str]]
) -> None:
    """Exact timestamps (any number of fraction digits up to 9) and correctly rounded
    prices/sizes, in any order, on both paths."""
    tmp = tmp_path_factory.mktemp("prop")
    lines = []
    for k, (sec, frac, nd, buy, size, price) in enumerate(rows):
        ts = f"{1748736000 + sec}" + (f".{str(frac).zfill(9)[:nd]}" if nd else "")
        lines.append(f"{ts},BTCUSDT,{'Buy' if buy else 'Sell'},{size},{price},PlusTick,t{k},1,1,1")
    src = tmp / "r.csv"
    src.write_text(BYBIT_HEADER + "\n".join(lines) + "\n")
    _same_everywhere(tmp, "bybit", src, "skip")
    t = _lake(tmp / "fast")["trades"]
    # golden: floor of the text timestamp, no float on the way
    want = sorted(
        (1748736000 + sec) * 1000
        + (int(str(frac).zfill(9)[: min(nd, 3)].ljust(3, "0")) if nd else 0)
        for sec, frac, nd, *_ in rows
    )
    assert t["ts_ms"].to_pylist() == want
    assert all(math.isfinite(x) for x in t["price"].to_pylist())


@pytest.mark.realdata
@pytest.mark.skipif(not BIN_CSV.is_dir(), reason=f"real data not available at {BIN_CSV}")
@pytest.mark.parametrize(
    ("fmt", "pattern"),
    [("binance-trades", "*_trades.csv"), ("binance-bookticker", "*_bookticker.csv")],
)
def test_real_binance_csvs_store_the_same_lake(tmp_path: Path, fmt: str, pattern: str) -> None:
    files = sorted(BIN_CSV.glob(pattern))
    assert files
    for i, f in enumerate(files):
        out = _same_everywhere(tmp_path / str(i), fmt, f, "stop")
        assert out[0][0] == "imported"  # type: ignore[index]


def test_fast_columns_match_arrow_parse_bit_for_bit() -> None:
    """Doubles from the fast path are the values Arrow's correctly rounding parser gives,
    including long mantissas that leave the exact-division shortcut."""
    values = [
        "0.1",
        "0.003",
        "104499.9",
        "63943.90",
        "1.7976931348623157",
        "123456789012.345678",
        "0.30000000000000004",
        "9007199254740993",
        "5",
    ]
    body = "".join(
        f"1748736000.5,BTCUSDT,Buy,{v},{v},PlusTick,t{i},1,1,1\n" for i, v in enumerate(values)
    )
    data = pa.py_buffer((BYBIT_HEADER + body).encode())
    got = fastcsv.read(data, "x", {"size": "f64", "price": "f64"})
    if got is None:
        pytest.skip("compiled core predates parse_csv_fast: rebuild with maturin develop")
    want = pa.array(values).cast(pa.float64()).to_numpy()
    assert np.array_equal(got.columns["size"].view(np.int64), want.view(np.int64))


def test_hash_overlapped_with_parse_keeps_skip_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Big files are hashed while they are parsed: same source id, same skip of an already
    imported file, and a parse error still reported for a file not imported yet."""
    import at_core.ingest.importer as imp

    src = FIX / "bybit_BTCUSDT2025-06-01.csv"
    (plain,) = import_files(tmp_path / "plain", "bybit", [src])
    monkeypatch.setattr(imp, "OVERLAP_HASH_BYTES", 0)
    (first,) = import_files(tmp_path / "db", "bybit", [src])
    assert first.status == "imported" and first.source_id == plain.source_id
    assert _lake(tmp_path / "db")["trades"].equals(_lake(tmp_path / "plain")["trades"])
    (again,) = import_files(tmp_path / "db", "bybit", [src])
    assert again.status == "skipped"
    bad = tmp_path / "nohdr.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(Exception, match="missing column"):
        import_files(tmp_path / "db", "bybit", [bad])
