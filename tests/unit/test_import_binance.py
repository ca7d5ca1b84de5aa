"""Binance websocket capture and CSV imports: event time, aggressor flag, ids, duplicates."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest

from at_core.errors import InputError
from at_core.ingest.importer import ImportStopped, import_files
from at_core.storage.lake import Lake

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
DAY = dt.date(2024, 7, 18)


def test_ws_capture_trades_and_quotes(tmp_path: Path) -> None:
    src = tmp_path / "btcusdt_20240718.gz"
    src.write_bytes(gzip.compress((FIX / "binance_ws_capture.txt").read_bytes()))
    (rep,) = import_files(tmp_path / "db", "binance-ws", [src])
    # 4 trade messages, one of them replayed (same t): 3 trades
    assert rep.imported == {"trades": 3, "quotes": 2}
    assert rep.duplicates_dropped == 1
    assert any("depthUpdate" in n for n in rep.notes)
    lake = Lake(tmp_path / "db")
    t = lake.read_day("trades", DAY).to_pydict()
    assert t["ts_ms"] == [1721347022956, 1721347022956, 1721347023399]  # T, not receive time
    assert t["seq"] == [5182005737, 5182005738, 5182005739]
    assert t["trade_id"] == ["5182005737", "5182005738", "5182005739"]
    assert t["exchange_side"] == [-1, 1, 1]  # m=true: buyer was maker, aggressor sold
    assert t["price"] == [63943.9, 63944.0, 63944.0]
    q = lake.read_day("quotes", DAY).to_pydict()
    assert q["ts_ms"] == [1721347022507, 1721347022956]
    assert q["seq"] == [4984028370881, 4984028374571]
    assert q["bid_px"] == [63943.9, 63943.9] and q["ask_sz"] == [0.095, 0.078]


def test_ws_bad_lines_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ImportStopped) as err:
        import_files(tmp_path, "binance-ws", [FIX / "binance_ws_bad.txt"])
    msg = str(err.value)
    assert "binance_ws_bad.txt:3:b: crossed quote: bid 63944.1 > ask 63944.0" in msg
    assert "binance_ws_bad.txt:4:T: missing field" in msg
    assert "binance_ws_bad.txt:5:message: invalid JSON" in msg
    assert "binance_ws_bad.txt:6:q: negative or zero size" in msg
    assert not list(tmp_path.rglob("*.parquet"))
    (rep,) = import_files(tmp_path, "binance-ws", [FIX / "binance_ws_bad.txt"], on_error="skip")
    assert rep.imported == {"trades": 1, "quotes": 1} and rep.rejected_rows == 4


def test_trades_csv_and_capture_share_trade_ids(tmp_path: Path) -> None:
    (csv_rep,) = import_files(tmp_path, "binance-trades", [FIX / "binance_trades.csv"])
    assert csv_rep.imported == {"trades": 4}
    t = Lake(tmp_path).read_day("trades", DAY).to_pydict()
    # out-of-order row (id ...736 listed last) is sorted in
    assert t["seq"] == [5182005737, 5182005738, 5182005736, 5182005739]
    assert t["exchange_side"] == [-1, 1, -1, 1]
    # the capture holds the same trades (and ids): one market stored twice is refused ...
    with pytest.raises(InputError, match=r"its trades .* overlap source .*binance_trades.csv"):
        import_files(tmp_path, "binance-ws", [FIX / "binance_ws_capture.txt"])
    assert Lake(tmp_path).read_day("trades", DAY).num_rows == 4
    # ... unless told to replace it: the capture's three trades replace the CSV's four
    (ws_rep,) = import_files(tmp_path, "binance-ws", [FIX / "binance_ws_capture.txt"], force=True)
    assert ws_rep.imported["trades"] == 3
    t = Lake(tmp_path).read_day("trades", DAY).to_pydict()
    assert t["seq"] == [5182005737, 5182005738, 5182005739]
    assert [s.format for s in Lake(tmp_path).sources.all()] == ["binance-ws"]


def test_bookticker_csv(tmp_path: Path) -> None:
    (rep,) = import_files(tmp_path, "binance-bookticker", [FIX / "binance_bookticker.csv"])
    q = Lake(tmp_path).read_day("quotes", DAY).to_pydict()
    assert rep.imported == {"quotes": 3}
    assert q["ts_ms"] == [1721347022507, 1721347022956, 1721347022956]
    assert q["seq"] == [4984028370881, 4984028374571, 4984028374580]
    assert q["bid_sz"] == [46.371, 46.368, 46.3]


def test_bookticker_crossed_and_missing(tmp_path: Path) -> None:
    with pytest.raises(ImportStopped) as err:
        import_files(tmp_path, "binance-bookticker", [FIX / "binance_bookticker_bad.csv"])
    msg = str(err.value)
    assert "binance_bookticker_bad.csv:3:bid_price: crossed quote: bid 63944.5 > ask 63944.0" in msg
    assert "binance_bookticker_bad.csv:4:bid_qty: missing value" in msg
    assert Lake(tmp_path).days("quotes") == []
