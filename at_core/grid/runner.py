"""The distributed sweep: Ray Tune over the feature grid, the Rust batch runner inside each trial.

Design (ARCHITECTURE.md "Grid search"): a Tune trial costs ~34 ms even with ``reuse_actors``,
so a trial is never one backtest. One trial = one point of the *feature* grid: it builds that
point's feature table once (stage 2, from stage-1 summaries shared through the object store)
and runs the whole *strategy* grid on it in the Rust batch runner. Stage-1 summaries are
computed once per distinct stage-1 setting and ``ray.put`` once.

Results travel through Ray, not a shared file system: each trial hands its rows to a
``ResultSink`` actor pinned to the driver's node, which writes them (with the trial's finished
mark, atomically) to SQLite. The driver logs one MLflow child run per trial as trials finish.
A rerun with the same run id skips the trials already finished.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray import tune

from at_core import logging as at_logging
from at_core.config import Settings
from at_core.grid.results import ResultStore
from at_core.grid.spec import GridSpec, point_key

log = at_logging.get("grid")

# evaluate(stage1, settings, strategy_points) -> [(full params, metrics)], one per strategy point
Evaluate = Callable[
    [Any, Settings, list[dict[str, Any]]], list[tuple[dict[str, Any], dict[str, Any]]]
]
# stage1(settings) -> stage-1 summaries (anything picklable; shared through the object store)
Stage1 = Callable[[Settings], Any]


@dataclass
class SweepSummary:
    run_id: str
    n_combinations: int
    n_trials: int
    n_trials_skipped: int
    wall_s: float
    nodes: dict[str, int] = field(default_factory=dict)
    mlflow_run_id: str | None = None


def _stage1_key(settings: Settings) -> str:
    keys = Settings.keys_of_stage("stage1")
    return point_key({k: getattr(settings, k) for k in keys})


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to a running cluster (``address`` or ``RAY_ADDRESS``) or start a local Ray.

    Local mode is the embedded default: no cluster, no servers to set up. The dashboard is
    not started (it binds ports and costs a second of start-up).
    """
    import ray

    if ray.is_initialized():
        return
    addr = address or os.environ.get("RAY_ADDRESS")
    if addr:
        ray.init(address=addr, log_to_driver=False)
    else:
        ray.init(
            num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False
        )


def run_sweep(
    spec: GridSpec,
    db_dir: str | Path,
    stage1_fn: Stage1,
    evaluate_fn: Evaluate,
    run_id: str | None = None,
    ray_address: str | None = None,
    progress: bool = True,
    mlflow_uri: str | None = None,
    max_concurrent: int | None = None,
) -> SweepSummary:
    """Run (or resume) a sweep; every strategy-grid row lands in ``grid_search_results``."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    t0 = time.perf_counter()
    store = ResultStore(db_dir)
    run_id = run_id or f"{spec.name}-{spec.fingerprint()}-{uuid.uuid4().hex[:6]}"
    grid_doc = {
        "name": spec.name,
        "params": spec.params,
        "metric": spec.metric,
        "mode": spec.mode,
        "source": spec.source,
    }
    resumed = store.start_run(run_id, spec.name, spec.fingerprint(), grid_doc, spec.n_combinations)
    done = store.finished_trials(run_id)
    points = spec.feature_points()
    pending = [p for p in points if point_key(p) not in done]
    log.info(
        "sweep",
        run_id=run_id,
        resumed=resumed,
        combinations=spec.n_combinations,
        trials=len(points),
        skipped=len(points) - len(pending),
    )

    tracker = None
    if mlflow_uri is not None:
        from at_core.grid.tracking import SweepTracker

        tracker = SweepTracker(mlflow_uri, spec, run_id, store)

    if pending:
        ensure_ray(ray_address)
        # stage 1 once per distinct stage-1 setting, shared through the object store
        stage1_refs: dict[str, Any] = {}
        for p in pending:
            s = spec.base.model_copy(update=p)
            k = _stage1_key(s)
            if k not in stage1_refs:
                stage1_refs[k] = ray.put(stage1_fn(s))
        driver_node = ray.get_runtime_context().get_node_id()
        sink = _ResultSink.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=driver_node, soft=False)
        ).remote(str(db_dir), run_id)
        strategy_points = spec.strategy_points()
        base_dump = spec.base.model_dump()

        def trainable(config: dict[str, Any]) -> dict[str, Any]:
            point = config["point"]
            settings = Settings.model_validate({**base_dump, **point})
            stage1 = ray.get(stage1_refs[_stage1_key(settings)])
            t_kernel = time.perf_counter()
            rows = evaluate_fn(stage1, settings, strategy_points)
            kernel_s = time.perf_counter() - t_kernel
            best = _best(rows, spec.metric, spec.mode)
            node = ray.get_runtime_context().get_node_id()
            ray.get(sink.add.remote(point_key(point), rows, best, node, kernel_s))
            return {
                "score": (best or {}).get(spec.metric, float("nan")),
                "n_rows": len(rows),
                "node": node,
            }

        callbacks: list[Any] = [_ProgressCallback(len(pending), enabled=progress)]
        if tracker is not None:
            callbacks.append(tracker.callback())
        # quiet console: the progress bar above is the driver's only output; Ray's newer
        # output engine ignores verbose=0 and prints an experiment table per sweep
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        tuner = tune.Tuner(
            trainable,
            param_space={"point": tune.grid_search(pending)},
            tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=max_concurrent),
            run_config=tune.RunConfig(
                name=run_id,
                storage_path=str(Path(db_dir).resolve() / "ray_results"),
                verbose=0,
                callbacks=callbacks,
                progress_reporter=None,
                log_to_file=False,
            ),
        )
        results = tuner.fit()
        errors = [results[i].error for i in range(len(results)) if results[i].error is not None]
        if errors:
            store.finish_run(run_id, status="failed")
            raise RuntimeError(f"{len(errors)} trial(s) failed; first: {errors[0]}")
    trials = store.trials(run_id)
    nodes: dict[str, int] = {}
    for t in trials:
        nodes[t["node"] or "?"] = nodes.get(t["node"] or "?", 0) + 1
    mlflow_id = tracker.finish() if tracker is not None else None
    store.finish_run(run_id, mlflow_run_id=mlflow_id)
    return SweepSummary(
        run_id=run_id,
        n_combinations=spec.n_combinations,
        n_trials=len(points),
        n_trials_skipped=len(points) - len(pending),
        wall_s=time.perf_counter() - t0,
        nodes=nodes,
        mlflow_run_id=mlflow_id,
    )


def _best(
    rows: list[tuple[dict[str, Any], dict[str, Any]]], metric: str, mode: str
) -> dict[str, Any] | None:
    scored = [(float(m[metric]), p, m) for p, m in rows if m.get(metric) is not None]
    if not scored:
        return None
    pick = max(scored, key=lambda x: x[0]) if mode == "max" else min(scored, key=lambda x: x[0])
    return {**pick[2], "params": pick[1]}


def _make_sink() -> Any:
    import ray

    @ray.remote(num_cpus=0)
    class ResultSink:
        """Owns the SQLite writes of a sweep on the driver's node (results travel through Ray)."""

        def __init__(self, db_dir: str, run_id: str) -> None:
            self.store = ResultStore(db_dir)
            self.run_id = run_id

        def add(
            self,
            trial_key: str,
            rows: list[tuple[dict[str, Any], dict[str, Any]]],
            best: dict[str, Any] | None,
            node: str,
            kernel_s: float,
        ) -> int:
            self.store.add_trial(
                self.run_id, trial_key, rows, best=best, node=node, kernel_s=kernel_s
            )
            return len(rows)

    return ResultSink


class _LazySink:
    _cls: Any = None

    def options(self, **kw: Any) -> Any:
        if self._cls is None:
            self._cls = _make_sink()
        return self._cls.options(**kw)


_ResultSink = _LazySink()


class _ProgressCallback(tune.Callback):
    """One tqdm bar with ETA on the driver, advanced as trials complete."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="feature-grid trials", unit="trial", disable=not enabled)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.bar.update(1)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self.bar.close()
