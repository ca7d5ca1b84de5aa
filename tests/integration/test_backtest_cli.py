"""``auction-trader backtest`` end to end on one generated day (generator → features →
backtest), through ``at_core.cli.main`` like a user."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from at_core import cli
from at_core.config import load_settings
from at_core.ingest.synthetic import generate_market

MODULE = "at_core.backtest.cli"
DAY0 = 1_704_067_200_000  # 2024-01-01, the generator's default start
M = 60_000


@pytest.fixture(autouse=True)
def backtest_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until the command list names the module, register it for these tests."""
    if MODULE not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, MODULE])


@pytest.fixture(scope="module")
def lake_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bt_lake")
    generate_market(d, days=1, seed=7, progress=False)
    return d


@pytest.fixture(scope="module")
def db(lake_only: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bt_db") / "db"
    shutil.copytree(lake_only, d)
    assert cli.main(["features", "--db-dir", str(d)]) == 0
    return d


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert cli.main(["backtest", *args, "--json"]) == 0
    out = capsys.readouterr().out
    return json.loads(out)


def test_json_report_store_and_causality(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = run_json(capsys, "--db-dir", str(db))
    metrics, trades = res["metrics"], res["trades"]
    assert res["n_minutes"] == 1440
    assert metrics["n_minutes"] == 1440
    # the default parameters trade on this day (17 round trips measured; at least a few)
    assert len(trades) >= 3
    assert metrics["n_trades"] == len(trades)
    assert metrics["lookahead_violations"] == 0
    for t in trades:
        for k in ("decision_ts_ms", "fill_ts_ms", "side", "qty", "entry_price", "exit_price",
                  "fees", "funding", "entry_reason", "exit_reason", "net_pnl"):  # fmt: skip
            assert k in t, k
        assert t["side"] in ("LONG", "SHORT")
        assert t["fill_ts_ms"] > t["decision_ts_ms"], "fill at or before its decision"
        assert (t["decision_ts_ms"] + 1) % M == 0, "decisions are taken at minute closes"
        assert t["exit_ts_ms"] >= t["fill_ts_ms"]
        assert t["qty"] > 0 and t["fees"] != 0
        assert t["net_pnl"] == pytest.approx(t["gross_pnl"] - t["fees"] + t["funding"], abs=1e-6)
    assert sum(t["net_pnl"] for t in trades) == pytest.approx(metrics["net_pnl"], abs=1e-6)

    rep = Path(res["report_dir"])
    assert rep == db / "reports" / f"backtest-{res['run_id']}"
    with open(rep / "trades.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(trades)
    assert [int(r["fill_ts_ms"]) for r in rows] == [t["fill_ts_ms"] for t in trades]
    assert json.loads((rep / "metrics.json").read_text())["metrics"] == metrics
    png = (rep / "equity.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000

    con = sqlite3.connect(db / "execution.db")
    try:
        (n,) = con.execute(
            "SELECT count(*) FROM backtest_trades WHERE run_id = ?", [res["run_id"]]
        ).fetchone()
        (mj,) = con.execute(
            "SELECT metrics_json FROM backtest_runs WHERE run_id = ?", [res["run_id"]]
        ).fetchone()
        (live,) = con.execute("SELECT count(*) FROM positions").fetchone()
    finally:
        con.close()
    assert n == len(trades)
    assert json.loads(mj) == metrics
    assert live == 0, "a backtest never writes the live positions table"


def test_two_runs_are_identical(
    db: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a = run_json(capsys, "--db-dir", str(db), "--report-dir", str(tmp_path / "a"))
    b = run_json(capsys, "--db-dir", str(db), "--report-dir", str(tmp_path / "b"))
    assert a["run_id"] != b["run_id"]
    assert a["metrics"] == b["metrics"]
    assert a["trades"] == b["trades"]
    assert (tmp_path / "a" / "trades.csv").read_bytes() == (
        tmp_path / "b" / "trades.csv"
    ).read_bytes()


def test_range_and_settings(db: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    frm, to = "2024-01-01T06:00Z", "2024-01-01T11:59Z"
    res = run_json(capsys, "--db-dir", str(db), "--from", frm, "--to", to,
                   "--report-dir", str(tmp_path / "r"))  # fmt: skip
    lo, hi = DAY0 + 6 * 60 * M, DAY0 + (12 * 60 - 1) * M
    assert (res["from_ts_min"], res["to_ts_min"], res["n_minutes"]) == (lo, hi, 360)
    for t in res["trades"]:
        assert lo <= t["decision_ts_ms"] <= hi + M - 1
    # two ticks of slippage never beat one on the same day (SPEC §21.3 comparison)
    one = run_json(capsys, "--db-dir", str(db), "--report-dir", str(tmp_path / "s1"))
    two = run_json(capsys, "--db-dir", str(db), "--set", "slippage_ticks_entry=2",
                   "--set", "slippage_ticks_exit=2", "--report-dir", str(tmp_path / "s2"))  # fmt: skip
    if [t["decision_ts_ms"] for t in one["trades"]] == [t["decision_ts_ms"] for t in two["trades"]]:
        assert two["metrics"]["net_pnl"] <= one["metrics"]["net_pnl"]


def test_tick_path_mode_runs(db: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    res = run_json(capsys, "--db-dir", str(db), "--set", "stop_fill_mode=tick_path",
                   "--report-dir", str(tmp_path / "tp"))  # fmt: skip
    assert res["metrics"]["lookahead_violations"] == 0
    for t in res["trades"]:
        assert t["fill_ts_ms"] > t["decision_ts_ms"]


def test_fill_references_never_look_ahead(db: Path) -> None:
    from at_core.backtest.cli import load_arrays
    from at_core.backtest.table import minute_table

    t = minute_table(load_arrays(db, load_settings()))
    fin = np.isfinite(t["next_bid"])
    assert fin[:-1].all(), "every minute but the last has a later quote on a generated day"
    assert (t["next_quote_ts"][fin] > t["ts_min"][fin] + 59_999).all()
    has = t["high_ts"] >= 0
    assert (
        (t["high_ts"][has] >= t["ts_min"][has]) & (t["high_ts"][has] < t["ts_min"][has] + M)
    ).all()
    assert (
        (t["low_ts"][has] >= t["ts_min"][has]) & (t["low_ts"][has] < t["ts_min"][has] + M)
    ).all()


def test_features_are_computed_when_missing(
    lake_only: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    d = tmp_path / "fresh"
    shutil.copytree(lake_only, d)
    assert not (d / "stage1").exists()
    res = run_json(capsys, "--db-dir", str(d))
    assert (d / "stage1" / "meta.json").exists()
    assert res["n_minutes"] == 1440 and res["trades"]


def test_bad_range_is_a_user_error(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    rc = cli.main(["backtest", "--db-dir", str(db), "--from", "2024-01-02", "--to", "2024-01-01"])
    assert rc == 2
    assert "--from" in capsys.readouterr().err
    rc = cli.main(["backtest", "--db-dir", str(db), "--from", "2025-01-01", "--to", "2025-01-02"])
    assert rc == 2
    assert "no feature minute in the requested range" in capsys.readouterr().err


def test_funding_history(db: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``funding_source: history`` charges the stored rates at the stored instants only."""
    from at_core.ingest.download import funding_path, store_funding

    fixed = run_json(capsys, "--db-dir", str(db), "--report-dir", str(tmp_path / "fx"))
    path = funding_path(db)
    assert not path.exists()
    capsys.readouterr()
    rc = cli.main(["backtest", "--db-dir", str(db), "--set", "funding_source=history"])
    assert rc == 2 and "no funding history" in capsys.readouterr().err
    # instants inside open positions of the fixed run (its trades happen not to span
    # 08:00 / 16:00 on this day), plus 16:00
    spans = [t for t in fixed["trades"] if t["exit_ts_ms"] - t["fill_ts_ms"] > 3 * M]
    assert spans, "some position is held for more than 3 minutes"
    instants = sorted({(t["fill_ts_ms"] // M + 2) * M for t in spans[:3]} | {DAY0 + 16 * 3_600_000})
    rate = 0.001  # 10 bp, paid by longs
    store_funding(db, "BTCUSDT", [(t, rate) for t in instants])
    try:
        hist = run_json(capsys, "--db-dir", str(db), "--set", "funding_source=history",
                        "--report-dir", str(tmp_path / "h"))  # fmt: skip
    finally:
        path.unlink()
    # funding moves equity (and so sizing and the kill switch): trades may differ only
    # from the first charged instant on
    before = lambda r: [t["fill_ts_ms"] for t in r["trades"] if t["fill_ts_ms"] < instants[0]]  # noqa: E731
    assert before(hist) == before(fixed)
    charged = 0
    for t in hist["trades"]:
        n = sum(1 for f in instants if t["fill_ts_ms"] < f <= t["exit_ts_ms"])
        if n == 0:
            assert t["funding"] == 0
            continue
        charged += 1
        sign = 1 if t["side"] == "LONG" else -1
        assert -sign * t["funding"] > 0, "longs pay a positive rate, shorts receive it"
        cap = n * t["qty"] * max(t["entry_price"], t["exit_price"]) * 1.05 * rate
        assert abs(t["funding"]) <= cap
    assert charged >= 1
    assert hist["metrics"]["funding"] == pytest.approx(sum(t["funding"] for t in hist["trades"]))
    assert hist["metrics"]["funding"] != fixed["metrics"]["funding"]


def test_no_annualised_sharpe_from_one_day(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 10 §6: a Sharpe from a handful of daily returns is noise that reads like a
    result; it is reported n/a below the stated minimum, in JSON and in text."""
    from at_core.backtest import SHARPE_MIN_DAYS

    res = run_json(capsys, "--db-dir", str(db))
    assert res["metrics"]["n_days"] == 1 < SHARPE_MIN_DAYS
    assert res["metrics"]["sharpe"] is None
    capsys.readouterr()
    assert cli.main(["backtest", "--db-dir", str(db)]) == 0
    text = capsys.readouterr().out
    assert f"n/a (needs >= {SHARPE_MIN_DAYS} daily returns)" in text
