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

import concurrent.futures
import json
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
from at_core.grid.evaluate import DailyReturns, TrialResult
from at_core.grid.results import ResultStore
from at_core.grid.spec import GridSpec, point_key

log = at_logging.get("grid")

# evaluate(stage1, settings, strategy_points, threads) -> the trial's (full params, metrics)
# per strategy point and their daily returns
Evaluate = Callable[[Any, Settings, list[dict[str, Any]], int], TrialResult]
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


def sweep_workers(base: Settings, ray_address: str | None) -> int | None:
    """How many trials run at once (SPEC §12.5 ``backtest_workers``, default CPU/2): on a
    local Ray, ``auto`` is half this machine's cores (the rest stays free, e.g. for a live
    graph beside the research); a number is that number anywhere. On an existing cluster
    ``auto`` means no cap: the cluster's CPUs decide."""
    cluster = ray_address or os.environ.get("RAY_ADDRESS")
    if base.backtest_workers == "auto" and cluster:
        return None
    return base.effective_workers()


@dataclass
class SweepPlan:
    """What a (re)run of a sweep has to do: the trials still pending."""

    run_id: str
    resumed: bool
    adaptive: bool
    #: points stage 1 may be needed for (all planned points, or the feature grid for Optuna)
    candidates: list[dict[str, Any]]
    #: planned points not finished yet (empty for Optuna: it suggests as it goes)
    pending: list[dict[str, Any]]
    n_pending: int


def plan_sweep(spec: GridSpec, store: ResultStore, run_id: str | None = None) -> SweepPlan:
    """Register the run (or find it) and list what is left to do."""
    run_id = run_id or f"{spec.name}-{spec.fingerprint()}-{uuid.uuid4().hex[:6]}"
    grid_doc = {
        "name": spec.name,
        "params": spec.params,
        "metric": spec.metric,
        "mode": spec.mode,
        "source": spec.source,
        "search": spec.search.as_dict(),
        "validation": spec.validation.as_dict(),
    }
    resumed = store.start_run(run_id, spec.name, spec.fingerprint(), grid_doc, spec.n_combinations)
    done = store.finished_trials(run_id)
    adaptive = spec.search.algorithm == "optuna"
    if adaptive:
        candidates = spec.feature_points()  # for the stage-1 settings Optuna may pick
        n_pending = max(spec.n_planned_trials - len(done), 0)
        pending: list[dict[str, Any]] = []
    else:
        candidates = spec.planned_points()
        pending = [p for p in candidates if point_key(p) not in done]
        n_pending = len(pending)
    log.info(
        "sweep",
        run_id=run_id,
        resumed=resumed,
        search=spec.search.algorithm,
        combinations=spec.n_combinations,
        trials=spec.n_planned_trials,
        skipped=spec.n_planned_trials - n_pending,
    )
    return SweepPlan(run_id, resumed, adaptive, candidates, pending, n_pending)


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
    reuse_actors: bool = True,
    use_tune: bool | None = None,
) -> SweepSummary:
    """Run (or resume) a sweep; every strategy-grid row lands in ``grid_search_results``.

    ``use_tune=None`` (auto) runs the trials through Ray Tune, except a grid or random sweep
    with a single pending trial: there is nothing to schedule or search, and Tune's trial
    actor start-up (measured ~2 s here) would be most of the sweep's time, so that one trial
    runs as a plain Ray task with the same body, results path and MLflow logging.
    """

    t0 = time.perf_counter()
    if max_concurrent is None:
        max_concurrent = sweep_workers(spec.base, ray_address)
    store = ResultStore(db_dir)
    plan = plan_sweep(spec, store, run_id)
    run_id = plan.run_id
    # MLflow's import and a new SQLite store's migrations take seconds of Python work, while
    # ray.init mostly waits on the processes it starts: prepare the tracker in a thread
    # meanwhile and join it before the first trial can finish.
    tracker_future: concurrent.futures.Future[Any] | None = None
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    if mlflow_uri is not None:
        from at_core.grid.tracking import SweepTracker

        tracker_future = pool.submit(SweepTracker, mlflow_uri, spec, run_id, store)
    pool.shutdown(wait=False)

    def join_tracker() -> Any:
        return tracker_future.result() if tracker_future is not None else None

    if plan.n_pending:
        try:
            _execute(
                plan,
                spec,
                db_dir,
                store,
                stage1_fn,
                evaluate_fn,
                join_tracker,
                ray_address=ray_address,
                progress=progress,
                max_concurrent=max_concurrent,
                reuse_actors=reuse_actors,
                use_tune=use_tune,
            )
        except BaseException as exc:
            # never leave a sweep "running": failed, or interrupted (a rerun resumes it)
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
            store.finish_run(run_id, status="interrupted" if interrupted else "failed")
            try:
                tracker = join_tracker()
                if tracker is not None:
                    tracker.fail("KILLED" if interrupted else "FAILED")
            except Exception as track_exc:  # the sweep's own error is the one to report
                log.warning("could not mark the MLflow run", error=str(track_exc))
            raise
    return _finish(plan, spec, store, join_tracker(), t0)


def _execute(
    plan: SweepPlan,
    spec: GridSpec,
    db_dir: str | Path,
    store: ResultStore,
    stage1_fn: Stage1,
    evaluate_fn: Evaluate,
    join_tracker: Callable[[], Any],
    *,
    ray_address: str | None,
    progress: bool,
    max_concurrent: int | None,
    reuse_actors: bool,
    use_tune: bool | None,
) -> None:
    """Run the pending trials on Ray (as plain tasks or through Tune); results land in
    SQLite through the driver or the sink actor, MLflow child runs through the tracker."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    run_id, adaptive, pending, candidates = (
        plan.run_id,
        plan.adaptive,
        plan.pending,
        plan.candidates,
    )
    n_pending = plan.n_pending
    ensure_ray(ray_address)
    # stage 1 once per distinct stage-1 setting, shared through the object store
    stage1_refs: dict[str, Any] = {}
    for p in pending or candidates:
        s = spec.base.model_copy(update=p)
        k = _stage1_key(s)
        if k not in stage1_refs:
            stage1_refs[k] = ray.put(stage1_fn(s))
    strategy_points = spec.strategy_points()
    base_dump = spec.base.model_dump()
    feature_keys = list(spec.feature_keys)
    metric, mode = spec.metric, spec.mode

    direct = use_tune is False or (use_tune is None and not adaptive and n_pending == 1)
    # one trial alone (direct) uses the workers as Rust threads over its strategy points
    threads = max(1, max_concurrent or 1) if direct else 1

    def compute(point: dict[str, Any]) -> tuple[str, TrialResult, Any, str, float]:
        """One trial's work: stage 2 + the whole strategy grid on the trial's node."""
        settings = Settings.model_validate({**base_dump, **point})
        stage1 = ray.get(stage1_refs[_stage1_key(settings)])
        t_kernel = time.perf_counter()
        res = evaluate_fn(stage1, settings, strategy_points, threads)
        kernel_s = time.perf_counter() - t_kernel
        node = ray.get_runtime_context().get_node_id()
        return point_key(point), res, _best(res.rows, metric, mode), node, kernel_s

    bar = _ProgressCallback(n_pending, enabled=progress)
    if direct:
        # the rows come back to the driver as the task's result (through Ray) and are
        # written here, in one transaction per trial, as the sink actor would
        task = ray.remote(num_cpus=1)(compute)
        for p in pending:
            key, res, best, node, kernel_s = ray.get(task.remote(p))
            store.add_trial(
                run_id, key, res.rows, best=best, node=node, kernel_s=kernel_s, daily=res.daily
            )
            tracker = join_tracker()
            if tracker is not None:
                tracker.log_stored_trial(p)
            bar.bar.update(1)
        bar.bar.close()
    else:
        driver_node = ray.get_runtime_context().get_node_id()
        sink = _ResultSink.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=driver_node, soft=False)
        ).remote(str(db_dir), run_id)

        def trainable(config: dict[str, Any]) -> dict[str, Any]:
            point = config["point"] if "point" in config else {k: config[k] for k in feature_keys}
            if adaptive:
                found, known = ray.get(sink.lookup.remote(point_key(point)))
                if found:  # a repeat suggestion: answer from the stored result
                    node = ray.get_runtime_context().get_node_id()
                    return {
                        "score": _score(known, metric),
                        "n_rows": 0,
                        "node": node,
                        "repeat": 1,
                    }
            key, res, best, node, kernel_s = compute(point)
            ray.get(sink.add.remote(key, res.rows, best, node, kernel_s, res.daily))
            return {
                "score": _score(best, metric),
                "n_rows": len(res.rows),
                "node": node,
                "repeat": 0,
            }

        callbacks: list[Any] = [bar]
        tracker = join_tracker()
        if tracker is not None:
            callbacks.append(tracker.callback())
        # quiet console: the progress bar above is the driver's only output; Ray's newer
        # output engine ignores verbose=0 and prints an experiment table per sweep
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        if adaptive:
            param_space: dict[str, Any] = {k: tune.choice(spec.params[k]) for k in feature_keys}
            tune_config = tune.TuneConfig(
                search_alg=_optuna_search(spec, store.trials(run_id)),
                num_samples=n_pending,
                metric="score",
                mode=mode,
                reuse_actors=reuse_actors,
                max_concurrent_trials=max_concurrent,
            )
        else:
            param_space = {"point": tune.grid_search(pending)}
            tune_config = tune.TuneConfig(
                reuse_actors=reuse_actors, max_concurrent_trials=max_concurrent
            )
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune_config,
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


def _finish(
    plan: SweepPlan, spec: GridSpec, store: ResultStore, tracker: Any, t0: float
) -> SweepSummary:
    """Close the MLflow parent run and the sweep's row; summarise."""
    trials = store.trials(plan.run_id)
    nodes: dict[str, int] = {}
    for t in trials:
        nodes[t["node"] or "?"] = nodes.get(t["node"] or "?", 0) + 1
    mlflow_id = tracker.finish() if tracker is not None else None
    store.finish_run(plan.run_id, mlflow_run_id=mlflow_id)
    return SweepSummary(
        run_id=plan.run_id,
        n_combinations=spec.n_combinations,
        n_trials=len(trials) if plan.adaptive else spec.n_planned_trials,
        n_trials_skipped=spec.n_planned_trials - plan.n_pending,
        wall_s=time.perf_counter() - t0,
        nodes=nodes,
        mlflow_run_id=mlflow_id,
    )


def _score(best: dict[str, Any] | None, metric: str) -> float:
    value = (best or {}).get(metric)
    return float(value) if value is not None else float("nan")


def _optuna_search(spec: GridSpec, finished: list[dict[str, Any]]) -> Any:
    """Optuna's TPE sampler over the feature grid, primed with the trials of a resumed run."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    prior: list[dict[str, Any]] = []
    rewards: list[float] = []
    for t in finished:
        best = json.loads(t["best_json"]) if t.get("best_json") else None
        score = _score(best, spec.metric)
        if score == score:  # not NaN
            prior.append(json.loads(t["trial_key"]))
            rewards.append(score)
    return OptunaSearch(
        points_to_evaluate=prior or None,
        evaluated_rewards=rewards or None,
        seed=spec.search.seed,
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
            daily: DailyReturns | None = None,
        ) -> int:
            self.store.add_trial(
                self.run_id, trial_key, rows, best=best, node=node, kernel_s=kernel_s, daily=daily
            )
            return len(rows)

        def lookup(self, trial_key: str) -> tuple[bool, dict[str, Any] | None]:
            """(finished?, best row) of a trial: lets a repeated suggestion skip the work."""
            for t in self.store.trials(self.run_id):
                if t["trial_key"] == trial_key:
                    return True, json.loads(t["best_json"]) if t["best_json"] else None
            return False, None

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
