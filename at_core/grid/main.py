"""The grid-search entry point shared by ``tune/grid.py`` and ``auction-trader grid run``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from at_core.config import Settings, load_settings, resolve_db_dir
from at_core.errors import AuctionTraderError, InputError
from at_core.grid.precheck import inert_alone
from at_core.grid.results import ResultStore, inert_keys
from at_core.grid.spec import load_grid
from at_core.grid.tracking import default_tracking_uri


def add_run_arguments(p: argparse.ArgumentParser, config_alias: bool = True) -> None:
    names = ["--grid", "--config"] if config_alias else ["--grid"]
    p.add_argument(
        *names, dest="grid", required=True, help="grid file, e.g. configs/grid/demo.yaml"
    )
    p.add_argument("--run-id", default=None, help="resume this run (default: a new id)")
    p.add_argument(
        "--smoke-test", action="store_true", help="first 2 values of each swept key only"
    )
    p.add_argument(
        "--ray-address", default=None, help="existing cluster (default: RAY_ADDRESS or a local Ray)"
    )
    p.add_argument(
        "--mlflow-uri", default=None, help="tracking URI (default: sqlite in DATABASE_DIR)"
    )
    p.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    p.add_argument(
        "--no-reuse-actors",
        action="store_true",
        help="a fresh Tune trial actor per trial (Tune's default; ~1-2 s more per trial). With "
        "actor reuse, short trials tend to stay on the nodes whose actors started first; "
        "without it, trials spread over every node with free CPUs",
    )
    p.add_argument("--top", type=int, default=5, help="print the best N combinations")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from at_core.grid.evaluate import evaluate_point, stage1_for
    from at_core.grid.runner import run_sweep

    db_dir = resolve_db_dir(getattr(args, "db_dir", None)).resolve()
    base_path = getattr(args, "base_config", None) or getattr(args, "config", None)
    base = load_settings(base_path, getattr(args, "set", []) or [])
    spec = load_grid(args.grid, base)
    if args.smoke_test:
        spec.params = {k: v[:2] for k, v in spec.params.items()}
    mlflow_uri = (
        None
        if args.no_mlflow
        else (args.mlflow_uri or base.mlflow_tracking_uri or default_tracking_uri(db_dir))
    )
    search = spec.search
    trials = (
        f"{spec.n_feature_points} feature points"
        if search.algorithm == "grid"
        else f"{spec.n_planned_trials} {search.algorithm}-search trials over {spec.n_feature_points} feature points"
    )
    from at_core.grid.runner import sweep_workers

    workers = sweep_workers(spec.base, args.ray_address)
    print(
        f"grid {spec.name}: {spec.n_combinations:,} combinations = {trials} "
        f"({', '.join(spec.feature_keys) or '-'}) x {spec.n_strategy_points} strategy points "
        f"({', '.join(spec.strategy_keys) or '-'}); "
        + (
            f"{workers} worker(s) (backtest_workers={spec.base.backtest_workers})"
            if workers
            else "workers: the cluster's CPUs"
        ),
        flush=True,
    )

    # Everything the driver reads from the working directory is loaded now. Under
    # `ray job submit` that directory is the job's unpacked package, which Ray can delete
    # while the job still runs (seen with several nodes on one machine sharing the session
    # folder), after which Tune fails on os.getcwd(). Work from DATABASE_DIR from here on.
    db_dir.mkdir(parents=True, exist_ok=True)
    os.chdir(db_dir)

    stage1_cache: dict[str, Any] = {}

    def stage1_fn(s: Any) -> Any:
        """Stage 1 per distinct stage-1 setting, computed once (the pre-check and the sweep
        share it)."""
        key = json.dumps(
            {k: getattr(s, k) for k in Settings.keys_of_stage("stage1")}, sort_keys=True
        )
        if key not in stage1_cache:
            stage1_cache[key] = stage1_for(db_dir, s)
        return stage1_cache[key]

    try:
        inert = inert_alone(spec, stage1_fn(spec.base))
    except InputError:
        inert = []  # no data: the sweep itself reports it (and records the run as failed)
    if inert:
        print(
            f"warning: alone (every other key at its base value), these swept keys change no "
            f"result on this data: {', '.join(inert)}; they may still matter in combination "
            "(the summary says which changed nothing in the whole sweep)",
            flush=True,
        )

    summary = run_sweep(
        spec,
        db_dir,
        stage1_fn,
        evaluate_point,
        run_id=args.run_id,
        ray_address=args.ray_address,
        progress=sys.stderr.isatty() or bool(os.environ.get("AT_PROGRESS")),
        mlflow_uri=mlflow_uri,
        reuse_actors=not args.no_reuse_actors,
    )
    store = ResultStore(db_dir)
    top = store.top(summary.run_id, args.top, spec.metric, spec.mode)
    args.run_id = summary.run_id
    if mlflow_uri and summary.mlflow_run_id and top:
        _log_top_equity(
            db_dir,
            mlflow_uri,
            summary.mlflow_run_id,
            summary.run_id,
            top[:5],
            list(spec.params),
            spec.metric,
        )
    inert = inert_keys(store.results(summary.run_id), list(spec.params))
    validation = _validate(db_dir, summary.run_id, base, mlflow_uri, summary.mlflow_run_id)
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": summary.run_id,
                    "inert_keys": inert,
                    "combinations": summary.n_combinations,
                    "trials": summary.n_trials,
                    "skipped_trials": summary.n_trials_skipped,
                    "wall_s": round(summary.wall_s, 2),
                    "nodes": summary.nodes,
                    "mlflow_run_id": summary.mlflow_run_id,
                    "validation": None if validation is None else validation.summary(),
                    "top": [
                        {"params": {k: p[k] for k in spec.params}, "metrics": m} for p, m in top
                    ],
                }
            )
        )
        return 0
    print(
        f"run {summary.run_id}: {summary.n_combinations:,} combinations in {summary.wall_s:.1f} s "
        f"({summary.n_trials_skipped} of {summary.n_trials} trials resumed), trials per node {list(summary.nodes.values())}"
    )
    if inert:
        print(f"swept keys that changed no result (they only widened the grid): {', '.join(inert)}")
    print(f"top {len(top)} by {spec.metric} ({ResultStore.TIE_BREAK}):")
    for i, (p, m) in enumerate(top, 1):
        ps = ", ".join(f"{k}={p[k]}" for k in spec.params)
        ms = ", ".join(
            f"{k}={m[k]:.4g}"
            if isinstance(m.get(k), float)
            else f"{k}={'n/a' if m.get(k) is None else m.get(k)}"
            for k in (spec.metric, "n_trades", "win_rate", "max_drawdown", "sharpe")
            if k in m
        )
        print(f"  {i}. {ps}\n     {ms}")
    if validation is not None:
        from at_core.grid.validation_report import render

        print(render(validation))
    if mlflow_uri:
        print(
            f"MLflow: `mlflow ui --backend-store-uri {mlflow_uri}` (or `make mlflow-ui DB_DIR={Path(db_dir)}`)"
        )
        if summary.mlflow_run_id:
            from at_core.grid.tracking import parent_run_url

            print(f"  this sweep's run: {parent_run_url(mlflow_uri, summary.mlflow_run_id)}")
    print(
        f"all rows: `auction-trader grid export {summary.run_id} --csv results.csv --db-dir {db_dir}`"
    )
    return 0


def _validate(
    db_dir: Path, run_id: str, base: Settings, uri: str | None, parent: str | None
) -> Any:
    """The sweep's statistics, recorded beside its results and on its MLflow run; None
    (with the reason printed) when they cannot be computed, e.g. a history of 2 days. A
    failure here never fails the sweep: its results are stored already."""
    from at_core.grid.validation import validate
    from at_core.grid.validation_report import record

    try:
        v = validate(db_dir, run_id, settings=base)
        record(v, ResultStore(db_dir), uri, parent)
        return v
    except InputError as exc:
        print(f"validation: n/a ({exc})", flush=True)
        return None


def _log_top_equity(
    db_dir: Path, uri: str, parent: str, run_id: str, top: list[Any], swept: list[str], metric: str
) -> None:
    """Equity curves of the top sets, re-run on the driver, as an artifact of the sweep's run."""
    import tempfile

    import mlflow

    from at_core.grid.report import top_equity_plot

    with tempfile.TemporaryDirectory() as tmp:
        path = top_equity_plot(
            db_dir, top, swept, Path(tmp) / f"{run_id}-top{len(top)}-equity.png", metric
        )
        mlflow.MlflowClient(tracking_uri=uri).log_artifact(parent, str(path))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="tune/grid.py", description="Grid search over a grid file (local Ray or a cluster)."
    )
    add_run_arguments(p)
    p.add_argument("--db-dir", default=None)
    p.add_argument(
        "--base-config", default=None, help="base config YAML (default configs/default.yaml)"
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    try:
        return run(args)
    except AuctionTraderError as exc:
        # one line naming the problem (the run, if it started, is marked failed)
        print(f"tune/grid.py: error: {exc}", file=sys.stderr)
        return 2


def demo_step(db_dir: Path, config: str | None, overrides: list[str]) -> None:
    """The demo's grid: ``configs/grid/demo.yaml`` on a local Ray, SQLite + MLflow, top 5."""
    from at_core.config import REPO_ROOT

    ns = argparse.Namespace(
        db_dir=str(db_dir),
        config=config,
        set=overrides,
        grid=str(REPO_ROOT / "configs" / "grid" / "demo.yaml"),
        run_id=None,
        smoke_test=False,
        ray_address=None,
        mlflow_uri=None,
        no_mlflow=False,
        no_reuse_actors=False,
        top=5,
        json=False,
    )
    cwd = os.getcwd()
    try:
        run(ns)
    finally:
        os.chdir(cwd)
