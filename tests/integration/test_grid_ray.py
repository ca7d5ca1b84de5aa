"""The distributed grid end to end: local Ray, resume after a kill, a real 2-node cluster and
``ray job submit`` against a real job server. Data: one generated day, features computed once.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from ray_cluster import RAY, two_node_cluster

from at_core.config import load_settings
from at_core.grid.results import ResultStore

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated day with features (stage 1 stored), shared by the module's tests."""
    from at_core.features.pipeline import run_features
    from at_core.ingest.synthetic import generate_market

    db = tmp_path_factory.mktemp("grid") / "db"
    generate_market(db, days=1, seed=7, progress=False)
    run_features(db, load_settings(), progress=False)
    return db


def _grid_file(tmp: Path, params: dict[str, object], name: str = "t") -> Path:
    import yaml

    p = tmp / f"{name}.yaml"
    p.write_text(yaml.safe_dump({"name": name, "metric": "net_pnl", "params": params}))
    return p


def _grid_cmd(grid: Path, db: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(REPO / "tune" / "grid.py"),
        "--config",
        str(grid),
        "--db-dir",
        str(db),
        "--json",
        *extra,
    ]


def _env(**kw: str) -> dict[str, str]:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", **kw}
    env.pop("RAY_ADDRESS", None)
    return env


def _run_grid(grid: Path, db: Path, run_id: str) -> dict[str, Any]:
    """Run ``tune/grid.py`` to completion; its JSON summary."""
    out = subprocess.run(
        _grid_cmd(grid, db, "--run-id", run_id),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return cast(dict[str, Any], json.loads(out.stdout.strip().splitlines()[-1]))


def _mlflow_runs(db: Path, run_id: str) -> tuple[Any, list[Any], list[Any]]:
    """(client, parent runs, child runs) of one sweep in the db's MLflow store."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db / 'mlflow.db'}")
    exp = client.get_experiment_by_name("auction-trader-grid")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.sweep_run_id = '{run_id}'")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


def test_local_grid_all_rows_mlflow_and_export(market: Path, tmp_path: Path) -> None:
    grid = _grid_file(
        tmp_path,
        {"alpha_bin": [0.25, 0.4], "accept_outside_k": [2, 3, 4], "risk_pct": [0.01, 0.02]},
    )
    summary = _run_grid(grid, market, "local1")
    assert summary["combinations"] == 12 and summary["trials"] == 2
    store = ResultStore(market)
    rows = store.results("local1")
    assert len(rows) == 12
    params = {(p["alpha_bin"], p["accept_outside_k"], p["risk_pct"]) for p, _ in rows}
    assert len(params) == 12
    # full effective parameters, not only the swept ones
    assert all(len(p) >= 60 and p["va_fraction"] == 0.7 for p, _ in rows)
    assert all("net_pnl" in m and "n_trades" in m for _, m in rows)
    # MLflow: one parent, one child per trial, the result table as an artifact
    client, parents, children = _mlflow_runs(market, "local1")
    assert len(parents) == 1 and len(children) == 2
    arts = [a.path for a in client.list_artifacts(parents[0].info.run_id)]
    assert "local1-results.csv" in arts and "grid.json" in arts
    assert {c.data.params["feature.alpha_bin"] for c in children} == {"0.25", "0.4"}


def test_resume_after_kill_loses_nothing_and_redoes_nothing(market: Path, tmp_path: Path) -> None:
    grid = _grid_file(
        tmp_path,
        {
            "alpha_bin": [0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55],
            "accept_outside_k": list(range(1, 21)),
            "risk_pct": [0.01, 0.02, 0.03],
        },
        "resume",
    )
    cmd = _grid_cmd(grid, market, "--run-id", "resume1", "--no-mlflow")
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    db = market / "execution.db"
    done_at_kill = 0
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if db.exists():
                con = sqlite3.connect(db)
                try:
                    done_at_kill = con.execute(
                        "SELECT count(*) FROM grid_trials WHERE run_id='resume1'"
                    ).fetchone()[0]
                finally:
                    con.close()
                if done_at_kill >= 1:
                    break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert 1 <= done_at_kill < 8, f"kill did not land mid-run ({done_at_kill} trials done)"
    store = ResultStore(market)
    before = len(store.results("resume1"))
    assert before == 60 * len(store.finished_trials("resume1"))  # whole trials only
    out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["skipped_trials"] >= done_at_kill
    rows = store.results("resume1")
    assert len(rows) == 480
    assert len({json.dumps(p, sort_keys=True) for p, _ in rows}) == 480


def test_single_feature_point_runs_as_one_ray_task(market: Path, tmp_path: Path) -> None:
    """One pending trial skips Tune (nothing to schedule); same rows, node and MLflow child."""
    grid = _grid_file(tmp_path, {"risk_pct": [0.01, 0.02], "accept_outside_k": [2, 3]}, "one")
    summary = _run_grid(grid, market, "one1")
    assert summary["combinations"] == 4 and summary["trials"] == 1
    store = ResultStore(market)
    assert len(store.results("one1")) == 4
    (trial,) = store.trials("one1")
    assert trial["node"] and trial["kernel_s"] > 0
    assert not (market / "ray_results" / "one1").exists()  # Tune was not involved
    _, parents, children = _mlflow_runs(market, "one1")
    assert len(parents) == 1 and len(children) == 1


def test_random_and_optuna_search_over_the_feature_grid(market: Path, tmp_path: Path) -> None:
    import yaml

    from at_core.grid.spec import load_grid

    params = {"alpha_bin": [0.2, 0.3, 0.4], "va_fraction": [0.6, 0.7], "risk_pct": [0.01, 0.02]}
    store = ResultStore(market)
    for algo, n in (("random", 3), ("optuna", 5)):
        grid = tmp_path / f"{algo}.yaml"
        doc = {"name": algo, "params": params, "search": {"algorithm": algo, "num_samples": n}}
        grid.write_text(yaml.safe_dump(doc))
        _run_grid(grid, market, f"s-{algo}")
        trials = store.trials(f"s-{algo}")
        keys = [t["trial_key"] for t in trials]
        assert len(keys) == len(set(keys))  # a point is never computed twice
        rows = store.results(f"s-{algo}")
        assert len(rows) == 2 * len(trials)  # the whole strategy grid inside each trial
        points = [json.loads(k) for k in keys]
        assert all(p["alpha_bin"] in params["alpha_bin"] for p in points)
        if algo == "random":  # exactly the seeded draw, reproducible from the grid file
            planned = load_grid(grid, load_settings()).planned_points()
            assert sorted(keys) == sorted(
                json.dumps(p, sort_keys=True, separators=(",", ":")) for p in planned
            )
        else:  # Optuna may repeat a suggestion; repeats are answered from the store
            assert 1 <= len(trials) <= n
        _, (parent,), children = _mlflow_runs(market, f"s-{algo}")
        assert len(children) == len(trials) and parent.data.params["search"] == algo


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
    with two_node_cluster() as c:
        yield c


def test_two_node_cluster_runs_trials_on_both_nodes(
    market: Path, tmp_path: Path, cluster: object
) -> None:
    grid = _grid_file(
        tmp_path,
        {
            "alpha_bin": [0.2, 0.25, 0.3, 0.35, 0.4, 0.45],
            "accept_outside_k": list(range(1, 41)),
            "risk_pct": [0.01, 0.02, 0.03, 0.04, 0.05],
        },
        "cluster",
    )
    env = {**cluster.env, "RAY_ADDRESS": cluster.gcs_address}  # type: ignore[attr-defined]
    # Trials of one day of data take milliseconds: with actor reuse Tune may run them all on
    # the actor that started first (seen in CI). A fresh actor per trial places the first
    # two trials concurrently, one on each 1-CPU node.
    out = subprocess.run(
        _grid_cmd(grid, market, "--run-id", "cl1", "--no-mlflow", "--no-reuse-actors"),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(summary["nodes"]) == 2, summary["nodes"]
    assert len(ResultStore(market).results("cl1")) == 6 * 40 * 5


def test_ray_job_submit(market: Path, tmp_path: Path, cluster: object) -> None:
    """`ray job submit -- python tune/grid.py ...` as the README says. Submitted with
    `--no-wait` and polled with `ray job status`: following the logs holds a WebSocket
    open for the whole job, which a loaded machine has dropped (close code 1006) while the
    job itself ran fine."""
    env = dict(cluster.env)  # type: ignore[attr-defined]
    url = cluster.dashboard_url  # type: ignore[attr-defined]
    sid = f"job1-{uuid.uuid4().hex[:8]}"
    cmd = [
        RAY,
        "job",
        "submit",
        "--address",
        url,
        "--submission-id",
        sid,
        "--no-wait",
        "--working-dir",
        str(REPO),
        "--",
        "python",
        "tune/grid.py",
        "--config",
        "configs/grid/smoke.yaml",
        "--db-dir",
        str(market),
        "--run-id",
        "job1",
        "--no-mlflow",
        "--json",
    ]
    deadline = time.time() + 120
    while True:  # the head's job agent registers a few seconds after `ray start` returns
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
        if out.returncode == 0 or "No available agent" not in out.stderr or time.time() > deadline:
            break
        time.sleep(3)
    assert out.returncode == 0, (
        f"rc={out.returncode}\nSTDOUT:\n{out.stdout[-4000:]}\nSTDERR:\n{out.stderr[-4000:]}"
    )
    status = ""
    deadline = time.time() + 900
    while time.time() < deadline:  # bounded: the job either ends or the test fails
        st = subprocess.run(
            [RAY, "job", "status", "--address", url, sid],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )
        status = (st.stdout + st.stderr).lower()
        # "Job '<id>' succeeded" / "... failed" / "... was stopped" once it has ended
        if any(f"' {w}" in status for w in ("succeeded", "failed", "was stopped")):
            break
        time.sleep(2)
    logs = subprocess.run(
        [RAY, "job", "logs", "--address", url, sid],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert "' succeeded" in status, f"{status[-2000:]}\nLOGS:\n{logs.stdout[-4000:]}"
    assert len(ResultStore(market).results("job1")) == 8


def test_a_failed_sweep_is_marked_failed_and_reported_in_one_line(tmp_path: Path) -> None:
    """Issue 10 sections 4-5: `tune/grid.py` on a folder without data printed an InputError
    traceback and left the run "running" forever in `grid list`."""
    empty = tmp_path / "empty"
    empty.mkdir()
    grid = _grid_file(tmp_path, {"alpha_bin": [0.25], "risk_pct": [0.01, 0.02]}, name="nodata")
    out = subprocess.run(
        _grid_cmd(grid, empty, "--run-id", "nodata1", "--no-mlflow"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [x for x in out.stderr.splitlines() if x.startswith("tune/grid.py: error:")]
    assert len(errors) == 1 and "no" in errors[0].lower(), out.stderr[-3000:]
    info = ResultStore(empty).run_info("nodata1")
    assert info is not None and info["status"] == "failed", info
