"""A sweep's research statistics end to end, as a trader runs them: a generated market of
9 days, `auction-trader grid run`, then `grid validate`, `grid show` and `grid export`.
The stored daily returns are checked against independent evidence: a single backtest's
equity curve of the same combination, closed day by day."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from at_core.grid.results import ResultStore
from tests.market_fixtures import market, sweep

pytestmark = pytest.mark.slow
DAY_MS = 86_400_000


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "at_core.cli", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    db = tmp_path_factory.mktemp("validation") / "db"
    market(db, days=9, seed=3)
    grid = {
        "name": "val",
        "metric": "net_pnl",
        "params": {
            "alpha_bin": [0.25, 0.35],
            "accept_outside_k": [1, 2, 3],
            "max_hold_minutes": [15, 60],
            "qimb_entry_min": [0.0, 0.1],
        },
        "validation": {"walk_forward": {"train_days": 3, "test_days": 1}},
    }
    out = sweep(db, grid)
    assert out["validation"] is not None, out
    return db, out["run_id"]


def _daily_from_equity(
    ts_min: np.ndarray, equity: np.ndarray, initial: float, final: float
) -> np.ndarray:
    days = ts_min // DAY_MS
    last = np.flatnonzero(np.r_[days[1:] != days[:-1], True])
    ends = equity[last].astype(float)
    ends[-1] = final  # the last day closes at the final equity (END_OF_DATA exits)
    prev = np.r_[initial, ends[:-1]]
    return ends / prev - 1.0


def test_stored_daily_returns_are_the_days_of_a_single_backtest(swept: tuple[Path, str]) -> None:
    from at_core.backtest import run_backtest
    from at_core.backtest.table import minute_table
    from at_core.config import Settings
    from at_core.features.engine import stage2
    from at_core.grid.evaluate import stage1_for

    db, run_id = swept
    sr = ResultStore(db).daily_returns(run_id)
    assert sr.returns.shape == (24, 9)
    assert np.all(np.diff(sr.days) == 1)
    checked = 0
    for i in (0, 7, 23):  # both feature points
        s = Settings.model_validate(sr.params[i])
        s1 = stage1_for(db, s)
        table = minute_table({**s1, **stage2(s1, s)}, use_bvc=s.use_bvc_fallback)
        run = run_backtest(table, s)
        want = _daily_from_equity(
            np.asarray(table["ts_min"]), np.asarray(run.equity), s.initial_equity,
            run.metrics["final_equity"],
        )  # fmt: skip
        np.testing.assert_allclose(sr.returns[i], want, rtol=1e-12, atol=1e-15)
        assert run.metrics["net_pnl"] == pytest.approx(sr.metrics[i]["net_pnl"])
        checked += int(run.metrics["n_trades"] > 0)
    assert checked >= 1, "no checked combination traded"


def test_validate_reports_and_records_the_statistics(swept: tuple[Path, str]) -> None:
    import mlflow

    db, run_id = swept
    r = _cli("grid", "validate", run_id, "--db-dir", str(db), "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    v: dict[str, Any] = json.loads(r.stdout)
    assert v["n_combinations"] == 24 and v["n_days"] == 9
    assert 1 <= v["n_eff"] <= 24
    # 9 days, a purge of 1 day (the 240-minute memory): 16 blocks do not fit, 4 do
    assert v["purge_days"] == 1 and v["embargo_minutes"] == 240
    assert v["pbo_blocks"] == 4 and v["pbo_splits"] == 6 and "used 4" in v["pbo_note"]
    assert 0.0 <= v["pbo"] <= 1.0
    assert v["winner_flagged"] == (not v["winner"]["dsr"] >= 0.95)
    assert ResultStore(db).validation(run_id)["n_eff"] == v["n_eff"]
    # the grid file's walk-forward: 3 training days, the embargo day, 1 test day, step 1
    wf = v["walk_forward"]
    assert [(w["train_from"], w["test_from"]) for w in wf["windows"]] == [
        (f"2024-01-0{d}", f"2024-01-0{d + 4}") for d in range(1, 6)
    ]
    assert wf["oos_days"] == 5 and wf["select_by"] == "return"
    sr = ResultStore(db).daily_returns(run_id)
    growth = {i: float(np.prod(1 + sr.returns[k, 0:3])) for k, i in enumerate(sr.ids)}
    assert wf["windows"][0]["result_id"] == max(growth, key=lambda i: (growth[i], -i))
    # the sweep's MLflow run carries the numbers and the plots; the experiment opens on runs
    info = ResultStore(db).run_info(run_id)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db.resolve() / 'mlflow.db'}")
    run = client.get_run(info["mlflow_run_id"])
    assert run.data.metrics["validation.n_eff"] == pytest.approx(v["n_eff"])
    assert run.data.metrics["validation.pbo"] == pytest.approx(v["pbo"])
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "validation")}
    assert {f"validation/{run_id}-{k}.png" for k in ("pbo", "dsr", "walk_forward")} <= arts
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    # the text report names the flag and writes the plots
    t = _cli("grid", "validate", run_id, "--db-dir", str(db), "--no-mlflow")
    assert t.returncode == 0, t.stderr[-2000:]
    assert ("FLAGGED" in t.stdout) == v["winner_flagged"]
    pngs = [Path(x.split("plot: ")[1]) for x in t.stdout.splitlines() if x.startswith("plot: ")]
    assert {p.name for p in pngs} == {
        f"{run_id}-{k}.png" for k in ("pbo", "walk_forward", "stability", "dsr")
    }
    assert all(p.stat().st_size > 5_000 for p in pngs)
    # the top combinations' neighbourhoods: 4 swept keys, so up to 8 neighbours each
    assert len(v["stability"]) == 5 and all(0 < n["n_neighbours"] <= 8 for n in v["stability"])
    assert "parameter stability" in t.stdout
    h = _cli("grid", "validate", run_id, "--db-dir", str(db), "--no-mlflow",
             "--heat-map", "alpha_bin,nope")  # fmt: skip
    assert h.returncode != 0 and "'nope' is not a swept key" in h.stderr


def test_validate_takes_other_windows_from_the_command_line(swept: tuple[Path, str]) -> None:
    db, run_id = swept
    r = _cli("grid", "validate", run_id, "--db-dir", str(db), "--json", "--no-mlflow",
             "--walk-forward", "4:2", "--holdout-split", "2024-01-06")  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    v = json.loads(r.stdout)
    assert [w["test_from"] for w in v["walk_forward"]["windows"]] == ["2024-01-06", "2024-01-08"]
    (h,) = v["holdout"]["windows"]
    assert (h["train_to"], h["test_from"], h["test_to"]) == (
        "2024-01-05",
        "2024-01-07",
        "2024-01-09",
    )
    bad = _cli("grid", "validate", run_id, "--db-dir", str(db), "--walk-forward", "4")
    assert bad.returncode != 0 and "TRAIN:TEST" in bad.stderr


def test_show_and_export_carry_the_statistics(swept: tuple[Path, str], tmp_path: Path) -> None:
    db, run_id = swept
    _cli("grid", "validate", run_id, "--db-dir", str(db), "--no-mlflow")
    s = _cli("grid", "show", run_id, "--db-dir", str(db))
    assert s.returncode == 0 and "validation: winner DSR" in s.stdout, s.stdout + s.stderr
    out = tmp_path / "x.csv"
    e = _cli("grid", "export", run_id, "--db-dir", str(db), "--csv", str(out))
    assert e.returncode == 0, e.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 24
    dsr = [float(r["stat.dsr"]) for r in rows if r["stat.dsr"]]
    assert len(dsr) == 24 and all(0.0 <= x <= 1.0 for x in dsr)
    # the daily returns, one column per result_id of the CSV, as stored
    import pyarrow.parquet as pq

    rp = tmp_path / "r.parquet"
    x = _cli("grid", "export", run_id, "--db-dir", str(db), "--returns", str(rp))
    assert x.returncode == 0, x.stderr
    t = pq.read_table(rp)
    assert t.column_names == ["day"] + [r["result_id"] for r in rows]
    sr = ResultStore(db).daily_returns(run_id)
    assert t.column("day").to_pylist()[0] == "2024-01-01" and t.num_rows == 9
    for j, rid in enumerate(sr.ids):
        np.testing.assert_array_equal(t.column(str(rid)).to_numpy(), sr.returns[j])
    none = _cli("grid", "export", run_id, "--db-dir", str(db))
    assert none.returncode != 0 and "--returns" in none.stderr


def test_an_embargo_shorter_than_the_memory_is_refused(swept: tuple[Path, str]) -> None:
    db, run_id = swept
    r = _cli("grid", "validate", run_id, "--db-dir", str(db), "--embargo-minutes", "60")
    assert r.returncode != 0
    assert "shorter than the sweep's memory (240 minutes" in r.stderr
