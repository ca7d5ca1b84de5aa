"""The dashboard's profile histogram across a data hole.

Stage 2 starts from scratch at the first minute after a hole (a minute that does not follow
the stored one before it): its profile holds no volume from before the hole. The histogram
the dashboard draws for a minute must be that profile, so its window starts after the hole
too. Before the fix it summed the 4 hours before the minute, hole or not, and disagreed with
the stored ``total_volume_4h``. Checked against the imported ticks themselves.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pytest

from at_core import cli
from at_core.config import load_settings
from at_core.dashboard import market
from at_core.ingest.synthetic import generate_range
from at_core.storage.lake import day_start_ms

M = 60_000
T0 = day_start_ms(dt.date(2024, 3, 1))
HOLE = (T0 + 300 * M, T0 + 330 * M)  # 30 minutes without a tick (max_gap_minutes is 5)
END = T0 + 420 * M


def _write(path: Path, header: list[str], cols: list[np.ndarray], keep: np.ndarray) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(zip(*[c[keep].tolist() for c in cols], strict=True))


@pytest.fixture(scope="module")
def holed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    tmp = tmp_path_factory.mktemp("hole")
    db = tmp / "db"
    b = generate_range(7, T0, END)
    tk = (b["trade_ts_ms"] < HOLE[0]) | (b["trade_ts_ms"] >= HOLE[1])
    qk = (b["quote_ts_ms"] < HOLE[0]) | (b["quote_ts_ms"] >= HOLE[1])
    side = np.where(b["trade_side"] > 0, "Buy", "Sell")
    _write(tmp / "t.csv", ["ts", "seq", "price", "size", "side"],
           [b["trade_ts_ms"], b["trade_seq"], b["trade_price"], b["trade_size"], side], tk)  # fmt: skip
    _write(tmp / "q.csv", ["ts", "seq", "bid_px", "bid_sz", "ask_px", "ask_sz"],
           [b["quote_ts_ms"], b["quote_seq"], b["bid_px"], b["bid_sz"], b["ask_px"],
            b["ask_sz"]], qk)  # fmt: skip
    common = ["--db-dir", str(db), "-f", "csv", "--ts-unit", "ms", "--venue", "bybit",
              "--symbol", "BTCUSDT"]  # fmt: skip
    assert cli.main(["import", *common, "--kind", "trades", str(tmp / "t.csv")]) == 0
    assert cli.main(["import", *common, "--kind", "quotes", str(tmp / "q.csv")]) == 0
    assert cli.main(["features", "--db-dir", str(db)]) == 0
    ticks = {"ts": b["trade_ts_ms"][tk], "size": b["trade_size"][tk]}
    return db, ticks


def _stored(db: Path, ts: int) -> tuple[float, ...]:
    con = duckdb.connect(str(db / "features.duckdb"), read_only=True)
    try:
        row = con.execute(
            "SELECT total_volume_4h, poc, vah, val FROM features_1m WHERE ts_min = ?", [ts]
        ).fetchone()
    finally:
        con.close()
    assert row is not None, ts
    return tuple(float(x) for x in row)


@pytest.mark.parametrize("after", [5, 60, 89])
def test_the_histogram_after_a_hole_holds_only_volume_after_it(
    holed: tuple[Path, dict[str, np.ndarray]], after: int
) -> None:
    db, ticks = holed
    settings = load_settings()
    ts = HOLE[1] + after * M
    p = market.profile(db, settings, ts)
    in_window = (ticks["ts"] >= HOLE[1]) & (ticks["ts"] < ts + M)
    assert p["window_start"] == HOLE[1]
    assert p["total_volume"] == pytest.approx(float(ticks["size"][in_window].sum()), rel=1e-9)
    total, poc, vah, val = _stored(db, ts)
    assert p["total_volume"] == pytest.approx(total, rel=1e-9)
    for got, want in ((p["poc"], poc), (p["vah"], vah), (p["val"], val)):
        assert (got is None and want != want) or got == want


def test_before_the_hole_the_window_is_the_full_four_hours(
    holed: tuple[Path, dict[str, np.ndarray]],
) -> None:
    db, ticks = holed
    settings = load_settings()
    ts = HOLE[0] - 10 * M
    p = market.profile(db, settings, ts)
    lo = ts - (settings.rolling_window_minutes - 1) * M
    assert p["window_start"] == lo
    keep = (ticks["ts"] >= lo) & (ticks["ts"] < ts + M)
    assert p["total_volume"] == pytest.approx(float(ticks["size"][keep].sum()), rel=1e-9)
    assert p["total_volume"] == pytest.approx(_stored(db, ts)[0], rel=1e-9)
