"""Data gaps on the real Binance USD-M windows (issue 10 §1), as a user runs them.

Before: importing both windows (17 minutes of data, 15 months apart) and running
``features`` wrote 678,248 minutes, carried the 2023 quote for 15 months, kept the value
area valid for 4 hours on zero volume and changed the 2024 window's features; the backtest
reported a 471-day run. Now no minute is invented across the hole, each window's features
are the ones it has alone, and the backtest reports the gap and the days covered. Checked
against the ticks themselves (independent of the engine's own counters).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import duckdb
import pytest

from at_core import cli

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
CSV = DATA / "binance_usdm_btcusdt" / "csv"
M = 60_000
MAX_GAP = 5  # the default max_gap_minutes

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not CSV.is_dir(), reason=f"real data not available at {CSV}"),
]


def _import(db: Path, *days: str) -> None:
    trades = [str(CSV / f"usdm_btcusdt_{d}_trades.csv") for d in days]
    quotes = [str(CSV / f"usdm_btcusdt_{d}_bookticker.csv") for d in days]
    assert cli.main(["import", "--db-dir", str(db), "-f", "binance-trades", *trades]) == 0
    assert cli.main(["import", "--db-dir", str(db), "-f", "binance-bookticker", *quotes]) == 0
    assert cli.main(["features", "--db-dir", str(db)]) == 0


def _rows(db: Path, table: str, since: int = 0) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db / "features.duckdb"), read_only=True)
    try:
        return con.execute(
            f"SELECT * FROM {table} WHERE ts_min >= ? ORDER BY ts_min", [since]
        ).fetchall()
    finally:
        con.close()


def _same(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    def norm(v: Any) -> Any:
        return "nan" if isinstance(v, float) and math.isnan(v) else v

    return [tuple(map(norm, r)) for r in a] == [tuple(map(norm, r)) for r in b]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    both = tmp_path_factory.mktemp("both")
    alone = tmp_path_factory.mktemp("alone")
    _import(both, "20230404", "20230405", "20240718", "20240719")
    _import(alone, "20240718", "20240719")
    return both, alone


def test_no_minute_is_invented_over_the_15_month_hole(stores: tuple[Path, Path]) -> None:
    both, _ = stores
    # the minutes that hold a tick, straight from the CSV files
    con = duckdb.connect()
    files = [str(p) for p in sorted(CSV.glob("usdm_btcusdt_*.csv"))]
    tick_minutes = sorted(
        r[0]
        for r in con.execute(
            "SELECT DISTINCT ts - ts % 60000 FROM ("
            "SELECT trade_time_ms AS ts FROM read_csv(?, union_by_name = true) "
            "WHERE trade_time_ms IS NOT NULL UNION ALL "
            "SELECT transaction_time_ms FROM read_csv(?, union_by_name = true) "
            "WHERE transaction_time_ms IS NOT NULL)",
            [
                [f for f in files if f.endswith("_trades.csv")],
                [f for f in files if "bookticker" in f],
            ],
        ).fetchall()
    )
    bars = [r[0] for r in _rows(both, "bars_1m")]
    assert len(bars) < 60, f"{len(bars)} minutes written for 17 minutes of data"
    # every written minute holds a tick or lies at most MAX_GAP minutes after one
    for m in bars:
        before = [t for t in tick_minutes if t <= m]
        assert before and m - before[-1] <= MAX_GAP * M, m
    # every minute with a tick is written
    assert set(tick_minutes) <= set(bars)


def test_the_later_window_has_the_features_it_has_alone(stores: tuple[Path, Path]) -> None:
    both, alone = stores
    start = _rows(alone, "bars_1m")[0][0]
    for table in ("bars_1m", "features_1m", "features_1m_ext"):
        a, b = _rows(both, table, start), _rows(alone, table, start)
        assert a and _same(a, b), table


def test_the_backtest_reports_the_gap_and_the_days_covered(
    stores: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    both, _ = stores
    capsys.readouterr()
    assert cli.main(["backtest", "--db-dir", str(both), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    m = res["metrics"]
    assert m["n_gaps"] == 1
    assert m["n_days"] == 4  # 2023-04-04/05 and 2024-07-18/19 (each window spans midnight)
    assert m["gap_minutes"] > 470 * 1440
    assert m["n_minutes"] == res["n_minutes"] < 60
    assert cli.main(["backtest", "--db-dir", str(both)]) == 0
    text = capsys.readouterr().out
    assert "on 4 UTC day(s)" in text and "1 data gap(s)" in text
