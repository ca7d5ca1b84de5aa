"""Import the real Binance USD-M captures in ../shared/data (skipped when absent).

Row counts come from shared/data/README.md; the aggressor side and event times are
checked against the raw messages read here with the standard library.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest

from at_core.config import load_settings
from at_core.errors import InputError
from at_core.ingest.importer import import_files
from at_core.storage.lake import Lake

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
BIN = DATA / "binance_usdm_btcusdt"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not BIN.is_dir(), reason=f"real data not available at {BIN}"),
]

RAW_2024 = [BIN / "raw" / "btcusdt_20240718.gz", BIN / "raw" / "btcusdt_20240719.gz"]
CSV_2024_TRADES = [
    BIN / "csv" / "usdm_btcusdt_20240718_trades.csv",
    BIN / "csv" / "usdm_btcusdt_20240719_trades.csv",
]
CSV_2024_QUOTES = [
    BIN / "csv" / "usdm_btcusdt_20240718_bookticker.csv",
    BIN / "csv" / "usdm_btcusdt_20240719_bookticker.csv",
]


def _trades(db: Path) -> dict[str, list]:
    lake = Lake(db)
    out: dict[str, list] = {"ts_ms": [], "trade_id": [], "exchange_side": [], "seq": []}
    for day in lake.days("trades"):
        t = lake.read_day("trades", day).to_pydict()
        for k in out:
            out[k].extend(t[k])
    return out


def test_raw_capture_2024_counts_time_and_side(tmp_path: Path) -> None:
    reports = import_files(tmp_path, "binance-ws", RAW_2024)
    assert sum(r.imported["trades"] for r in reports) == 10_701
    assert sum(r.imported["quotes"] for r in reports) == 52_260
    assert all(r.rejected_rows == 0 for r in reports)
    assert reports[0].days == [dt.date(2024, 7, 18), dt.date(2024, 7, 19)]
    # ground truth straight from the messages: T and m of each trade id
    truth: dict[str, tuple[int, int]] = {}
    for path in RAW_2024:
        with gzip.open(path, "rt") as fh:
            for line in fh:
                msg = json.loads(line.split(" ", 1)[1])
                d = msg.get("data", {})
                if d.get("e") == "trade":
                    truth[str(d["t"])] = (d["T"], -1 if d["m"] else 1)
    t = _trades(tmp_path)
    got = {
        tid: (ts, side)
        for tid, ts, side in zip(t["trade_id"], t["ts_ms"], t["exchange_side"], strict=True)
    }
    assert got == truth
    # stored in (ts, trade id) order: same-millisecond trades keep the exchange's order
    pairs = list(zip(t["ts_ms"], t["seq"], strict=True))
    assert pairs == sorted(pairs)


def test_csv_2024_counts_and_no_duplicates_with_raw(tmp_path: Path) -> None:
    rep_t = import_files(tmp_path, "binance-trades", CSV_2024_TRADES)
    rep_q = import_files(tmp_path, "binance-bookticker", CSV_2024_QUOTES)
    assert sum(r.imported["trades"] for r in rep_t) == 10_701
    assert sum(r.imported["quotes"] for r in rep_q) == 52_260
    before = _trades(tmp_path)
    # the raw capture holds the same trades and quotes: refused, naming both CSV sources
    with pytest.raises(InputError, match=r"(?s)its trades .* overlap .*its quotes .* overlap"):
        import_files(tmp_path, "binance-ws", RAW_2024)
    assert _trades(tmp_path) == before
    # told to replace them, the capture's rows stand in for the CSVs': the same trades
    rep_raw = import_files(tmp_path, "binance-ws", RAW_2024, force=True)
    assert sum(r.imported["trades"] for r in rep_raw) == 10_701
    after = _trades(tmp_path)
    assert len(after["trade_id"]) == len(set(after["trade_id"])) == 10_701
    assert sorted(zip(after["trade_id"], after["ts_ms"], strict=True)) == sorted(
        zip(before["trade_id"], before["ts_ms"], strict=True)
    )
    lake = Lake(tmp_path)
    assert {s.format for s in lake.sources.all()} == {"binance-ws"}
    assert sum(lake.read_day("quotes", d).num_rows for d in lake.days("quotes")) == 52_260


def test_csv_2023_counts(tmp_path: Path) -> None:
    trades = sorted((BIN / "csv").glob("usdm_btcusdt_2023040*_trades.csv"))
    quotes = sorted((BIN / "csv").glob("usdm_btcusdt_2023040*_bookticker.csv"))
    rt = import_files(tmp_path, "binance-trades", trades)
    rq = import_files(tmp_path, "binance-bookticker", quotes)
    assert sum(r.imported["trades"] for r in rt) == 12_935
    assert sum(r.imported["quotes"] for r in rq) == 44_205
    lake = Lake(tmp_path)
    assert lake.days("trades") == [dt.date(2023, 4, 4), dt.date(2023, 4, 5)]


def test_reimport_of_real_file_is_skipped(tmp_path: Path) -> None:
    import_files(tmp_path, "binance-trades", CSV_2024_TRADES[:1])
    (again,) = import_files(tmp_path, "binance-trades", CSV_2024_TRADES[:1])
    assert again.status == "skipped"
    (forced,) = import_files(tmp_path, "binance-trades", CSV_2024_TRADES[:1], force=True)
    assert forced.imported == {"trades": 974} and forced.duplicates_dropped == 0
    assert len(_trades(tmp_path)["trade_id"]) == 974


def test_raw_capture_2023_counts(tmp_path: Path) -> None:
    raw = [BIN / "raw" / "btcusdt_20230404.dat.gz", BIN / "raw" / "btcusdt_20230405.dat.gz"]
    reports = import_files(tmp_path, "binance-ws", raw)
    assert sum(r.imported["trades"] for r in reports) == 12_935
    assert sum(r.imported["quotes"] for r in reports) == 44_205
    assert all(r.rejected_rows == 0 for r in reports)


TARDIS = DATA / "tardis_samples"


@pytest.mark.skipif(not TARDIS.is_dir(), reason=f"tardis samples not available at {TARDIS}")
def test_tardis_samples(tmp_path: Path) -> None:
    """Three venues' samples: each is its own market, stored in its own store (the
    importer refuses a store of mixed instruments)."""
    bitmex = load_settings(overrides={"instrument": "XBTUSD", "tick_size": 0.5})
    (tr,) = import_files(
        tmp_path / "bitmex", "tardis-trades", [TARDIS / "bitmex_trades_XBTUSD.csv"], settings=bitmex
    )
    assert tr.imported == {"trades": 10}
    t = Lake(tmp_path / "bitmex").read_day("trades", dt.date(2020, 3, 1)).to_pydict()
    assert t["ts_ms"][0] == 1583020803145  # `timestamp` (µs) floored, not local_timestamp
    assert t["exchange_side"][0] == -1 and t["size"][0] == 2152.0
    huobi = TARDIS / "huobi-dm-swap_quotes_BTC-USD.csv"
    with pytest.raises(InputError, match=r"holds huobi-dm-swap BTC-USD .* store is for XBTUSD"):
        import_files(tmp_path / "bitmex", "tardis-quotes", [huobi], settings=bitmex)
    with pytest.raises(InputError, match=r"holds bitmex XBTUSD .* store is for BTCUSDT"):
        import_files(tmp_path / "default", "tardis-trades", [TARDIS / "bitmex_trades_XBTUSD.csv"])
    (hq,) = import_files(
        tmp_path / "huobi",
        "tardis-quotes",
        [huobi],
        settings=load_settings(overrides={"instrument": "BTC-USD", "tick_size": 0.1}),
    )
    futures = load_settings(overrides={"tick_size": 0.01})
    (fq,) = import_files(
        tmp_path / "futures",
        "tardis-quotes",
        [TARDIS / "binance-futures_book_snapshot_5_BTCUSDT.csv"],
        settings=futures,
    )
    assert [hq.imported, fq.imported] == [{"quotes": 10}, {"quotes": 10}]
    q = Lake(tmp_path / "futures").read_day("quotes", dt.date(2020, 9, 1)).to_pydict()
    assert (q["ts_ms"][0], q["bid_px"][0], q["ask_px"][0]) == (1598918403696, 11657.07, 11657.08)
    with pytest.raises(InputError, match="incremental_book_L2"):
        import_files(
            tmp_path, "tardis-quotes", [TARDIS / "deribit_incremental_book_L2_BTC-PERPETUAL.csv"]
        )
