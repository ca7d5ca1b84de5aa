"""Tardis.dev CSV imports (trades, quotes, book snapshots): µs exchange time, not local."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from at_core.config import Settings, load_settings
from at_core.ingest.importer import ImportStopped, import_files
from at_core.storage.lake import Lake

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"


def market(instrument: str, tick: float) -> Settings:
    """The store settings for a Tardis sample's market (the importer checks the symbol and
    the tick grid against them)."""
    return load_settings(overrides={"instrument": instrument, "tick_size": tick})


BINANCE_FUTURES = market("BTCUSDT", 0.01)
HUOBI = market("BTC-USD", 0.1)


def test_trades_numeric_ids(tmp_path: Path) -> None:
    (rep,) = import_files(
        tmp_path,
        "tardis-trades",
        [FIX / "tardis_binance-futures_trades_BTCUSDT.csv"],
        settings=BINANCE_FUTURES,
    )
    t = Lake(tmp_path).read_day("trades", dt.date(2020, 9, 1)).to_pydict()
    assert rep.imported == {"trades": 4}
    # `timestamp` µs floored to ms; `local_timestamp` ignored
    assert t["ts_ms"] == [1598918401073, 1598918401073, 1598918401251, 1598918402000]
    assert t["seq"] == [253289045, 253289046, 253289047, 253289048]
    assert t["exchange_side"] == [1, 1, -1, None]  # "unknown" side stays unknown
    assert t["size"] == [0.001, 0.232, 0.05, 0.01]


def test_trades_string_ids_use_line_order(tmp_path: Path) -> None:
    (rep,) = import_files(
        tmp_path,
        "tardis-trades",
        [FIX / "tardis_bitmex_trades_XBTUSD.csv"],
        settings=market("XBTUSD", 0.5),
    )
    t = Lake(tmp_path).read_day("trades", dt.date(2020, 3, 1)).to_pydict()
    assert t["seq"] == [2, 3, 4]
    assert t["trade_id"][1] == "b46c84da-6942-b404-ab94-18a9ad497fdd"
    assert rep.imported == {"trades": 3}


def test_book_snapshot_level0_as_quotes(tmp_path: Path) -> None:
    (rep,) = import_files(
        tmp_path,
        "tardis-quotes",
        [FIX / "tardis_book_snapshot_5_BTCUSDT.csv"],
        settings=BINANCE_FUTURES,
    )
    q = Lake(tmp_path).read_day("quotes", dt.date(2020, 9, 1)).to_pydict()
    assert rep.imported == {"quotes": 2}
    assert q["ts_ms"] == [1598918403696, 1598918403888]
    assert q["bid_px"] == [11657.07, 11657.07] and q["ask_px"] == [11657.08, 11657.08]
    assert q["ask_sz"] == [1.714, 1.476] and q["bid_sz"] == [10.896, 10.896]


def test_quotes_crossed_row(tmp_path: Path) -> None:
    f = FIX / "tardis_huobi-dm-swap_quotes_BTC-USD.csv"
    with pytest.raises(ImportStopped, match=r"quotes_BTC-USD.csv:4:bid_price: crossed quote"):
        import_files(tmp_path, "tardis-quotes", [f], settings=HUOBI)
    (rep,) = import_files(tmp_path, "tardis-quotes", [f], on_error="skip", settings=HUOBI)
    assert rep.imported == {"quotes": 2}
    q = Lake(tmp_path).read_day("quotes", dt.date(2020, 5, 1)).to_pydict()
    assert q["ask_sz"] == [5494.0, 5493.0] and q["bid_px"] == [8629.2, 8629.2]
