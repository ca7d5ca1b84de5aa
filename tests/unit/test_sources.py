"""What is stored must be usable and removable (issue 10 §2): prices on the instrument's
tick grid, one market per store, one source per stream and time, `--force` replacing a
wrong import, `sources list` / `sources remove`, features recomputed after a removal."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from at_core import cli
from at_core.config import load_settings
from at_core.errors import InputError, StorageError
from at_core.ingest.importer import ImportStopped, import_files
from at_core.ingest.synthetic import generate_market
from at_core.storage.lake import Lake

T0 = 1_721_260_800_000  # 2024-07-18 00:00 UTC


def trades_csv(path: Path, start: int, n: int, *, bad_line: int | None = None) -> Path:
    """Binance USD-M trades CSV (the recorder's format) with ``n`` trades 1 s apart."""
    lines = ["local_ts,trade_time_ms,event_time_ms,symbol,trade_id,price,qty,is_buyer_maker,type"]
    for i in range(n):
        ts = start + i * 1000
        px = "63957.33" if bad_line == i + 2 else f"{63950 + (i % 9) * 0.1:.1f}"
        lines.append(f"{ts}000000,{ts},{ts},BTCUSDT,{1000 + i},{px},0.010,{i % 2 == 0},MARKET")
    path.write_text("\n".join(lines) + "\n")
    return path


def quotes_csv(path: Path, start: int, n: int) -> Path:
    lines = [
        "local_ts,transaction_time_ms,event_time_ms,symbol,update_id,bid_price,bid_qty,ask_price,ask_qty"
    ]
    for i in range(n):
        ts = start + i * 500
        lines.append(f"{ts}000000,{ts},{ts},BTCUSDT,{5000 + i},63950.0,1.5,63950.1,2.0")
    path.write_text("\n".join(lines) + "\n")
    return path


def tardis_csv(path: Path, exchange: str, symbol: str) -> Path:
    lines = ["exchange,symbol,timestamp,local_timestamp,id,side,price,amount"]
    for i in range(20):
        ts = (T0 + i * 1000) * 1000
        lines.append(f"{exchange},{symbol},{ts},{ts + 5},{i + 1},buy,8531.5,{100 + i}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_an_off_grid_price_is_refused_with_file_line_field(tmp_path: Path) -> None:
    f = trades_csv(tmp_path / "t.csv", T0, 50, bad_line=7)
    with pytest.raises(ImportStopped) as err:
        import_files(tmp_path / "db", "binance-trades", [f])
    assert f"{f}:7:price: price 63957.33 is not on the 0.1 tick grid" in str(err.value)
    assert not Lake(tmp_path / "db").days("trades")
    # a store configured for a finer-ticked instrument takes it
    s = load_settings(overrides={"tick_size": 0.01})
    (rep,) = import_files(tmp_path / "db2", "binance-trades", [f], settings=s)
    assert rep.imported == {"trades": 50}


def test_another_market_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "db"
    for exchange, symbol, unit in (
        ("bitmex", "XBTUSD", "contracts"),
        ("huobi-dm-swap", "BTC-USD", "contracts"),
    ):
        f = tardis_csv(tmp_path / f"{exchange}.csv", exchange, symbol)
        rc, _out, err = _run(capsys, "import", "--db-dir", str(db), "-f", "tardis-trades", str(f))
        assert rc == 2
        assert f"holds {exchange} {symbol} (sizes in {unit}), but this store is for BTCUSDT" in err
        assert err.count("\n") == 1, "one line"
    assert not Lake(db).days("trades")
    # told what the store is for, it is that market's store
    s = load_settings(overrides={"instrument": "XBTUSD", "tick_size": 0.5})
    (rep,) = import_files(db, "tardis-trades", [tmp_path / "bitmex.csv"], settings=s)
    assert rep.imported == {"trades": 20}
    assert Lake(db).sources.all()[0].instrument() == "bitmex XBTUSD"


def test_a_synthetic_market_and_a_real_venue_do_not_mix(tmp_path: Path) -> None:
    db = tmp_path / "db"
    generate_market(db, days=1, seed=3, progress=False)
    f = trades_csv(tmp_path / "t.csv", T0, 20)
    with pytest.raises(
        InputError, match=r"holds binance BTCUSDT .* this store holds synthetic BTCUSDT"
    ):
        import_files(db, "binance-trades", [f])
    real = tmp_path / "real"
    import_files(real, "binance-trades", [f])
    with pytest.raises(StorageError, match="holds binance BTCUSDT data"):
        generate_market(real, days=1, seed=3, progress=False)


def test_the_same_stream_twice_is_refused_and_force_replaces_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db"
    # a wrong file: one bad price is skipped into the rejects, 99 trades stored
    wrong = trades_csv(tmp_path / "wrong.csv", T0, 100)
    text = wrong.read_text().replace(",63950.4,", ",63950.4,", 1)
    wrong.write_text(text.replace("1004,63950.4,0.010", "1004,63950.4,0.020"))  # a wrong size
    q = quotes_csv(tmp_path / "q.csv", T0, 50)
    import_files(db, "binance-trades", [wrong])
    import_files(db, "binance-bookticker", [q])
    # the corrected file covers the same trades: refused, naming the source it overlaps
    fixed = trades_csv(tmp_path / "fixed.csv", T0, 100)
    rc, _o, err = _run(capsys, "import", "--db-dir", str(db), "-f", "binance-trades", str(fixed))
    assert rc == 2 and "overlap source" in err and "wrong.csv" in err and "--force" in err
    # --force replaces the wrong source's trades; its rows are gone, none dropped as duplicates
    rc, out, _e = _run(
        capsys, "import", "--db-dir", str(db), "-f", "binance-trades", "--force", str(fixed)
    )
    assert rc == 0 and "duplicates dropped 0" in out and "replaced source" in out
    lake = Lake(db)
    day = lake.days("trades")[0]
    t = lake.read_day("trades", day).to_pydict()
    assert len(t["ts_ms"]) == 100 and set(t["size"]) == {0.01}
    names = {Path(s.path).name for s in lake.sources.all()}
    assert names == {"fixed.csv", "q.csv"}
    # quotes have no id: the same quotes from another file are refused too
    q2 = quotes_csv(tmp_path / "q2.csv", T0 + 10_000, 10)
    with pytest.raises(InputError, match=r"its quotes .* overlap source"):
        import_files(db, "binance-bookticker", [q2])


def test_sources_list_and_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "db"
    import_files(db, "binance-trades", [trades_csv(tmp_path / "t.csv", T0, 30)])
    import_files(db, "binance-bookticker", [quotes_csv(tmp_path / "q.csv", T0, 30)])
    rc, out, _ = _run(capsys, "sources", "list", "--db-dir", str(db))
    assert rc == 0
    assert "binance BTCUSDT" in out and "trades 30 (2024-07-18 00:00 .. 2024-07-18 00:00)" in out
    rc, out, _ = _run(capsys, "sources", "list", "--db-dir", str(db), "--json")
    listed = json.loads(out)
    assert [s["format"] for s in listed] == ["binance-trades", "binance-bookticker"]
    assert listed[0]["ranges"]["trades"] == [T0, T0 + 29_000]
    sid = listed[0]["source_id"]
    rc, out, _ = _run(capsys, "sources", "remove", "--db-dir", str(db), sid[:8])
    assert rc == 0 and "30 trades" in out
    lake = Lake(db)
    assert lake.days("trades") == [] and lake.days("quotes") != []
    assert [s.format for s in lake.sources.all()] == ["binance-bookticker"]
    rc, _o, err = _run(capsys, "sources", "remove", "--db-dir", str(db), "zzz")
    assert rc == 2 and "no source id starts with 'zzz'" in err


def test_removing_a_source_makes_the_stored_features_stale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db"
    generate_market(db, days=1, seed=3, progress=False)
    generate_market(
        db, days=1, seed=4, start=__import__("datetime").date(2024, 1, 3), progress=False
    )
    assert cli.main(["features", "--db-dir", str(db)]) == 0
    meta = json.loads((db / "stage1" / "meta.json").read_text())
    assert len(meta["sources"]) == 2
    sid = Lake(db).sources.all()[1].source_id
    assert cli.main(["sources", "remove", "--db-dir", str(db), sid]) == 0
    rc, out, err = _run(capsys, "backtest", "--db-dir", str(db), "--json")
    assert rc == 0 and "sources changed" in err
    assert json.loads(out)["metrics"]["n_days"] == 1


def test_a_header_only_file_reports_that_nothing_was_imported(tmp_path: Path) -> None:
    f = trades_csv(tmp_path / "empty.csv", T0, 0)
    (rep,) = import_files(tmp_path / "db", "binance-trades", [f])
    assert rep.status == "empty" and "nothing imported" in rep.summary()


def test_an_old_manifest_is_migrated_and_its_ranges_read_from_the_parts(tmp_path: Path) -> None:
    db = tmp_path / "db"
    (rep,) = import_files(db, "binance-trades", [trades_csv(tmp_path / "t.csv", T0, 10)])
    man = db / "lake" / "_imports.sqlite"
    con = sqlite3.connect(man)
    con.execute("DROP TABLE imports")
    con.execute(
        "CREATE TABLE imports (source_id TEXT PRIMARY KEY, path TEXT NOT NULL, format TEXT NOT NULL,"
        " trades INTEGER NOT NULL, quotes INTEGER NOT NULL, rejected INTEGER NOT NULL,"
        " imported_at INTEGER NOT NULL)"
    )
    con.execute(
        "INSERT INTO imports VALUES (?,?,?,?,?,?,?)",
        [rep.source_id, "t.csv", "binance-trades", 10, 0, 0, 1],
    )
    con.commit()
    con.close()
    (s,) = Lake(db).sources.all()
    assert s.ranges["trades"] == (T0, T0 + 9_000) and s.venue is None
    part = next((db / "lake" / "trades").glob("date=*/*.parquet"))
    assert pq.ParquetFile(part).metadata.num_rows == 10
    # the overlap rule sees the old source too
    with pytest.raises(InputError, match="overlap source"):
        import_files(db, "binance-trades", [trades_csv(tmp_path / "u.csv", T0 + 5_000, 10)])
