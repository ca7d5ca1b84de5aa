"""MLflow tracking of sweeps: one parent run per sweep, one child run per Tune trial.

Never one MLflow run per strategy combination: with a SQLite tracking store a run costs
~30 ms and a sweep has thousands of combinations. Child runs carry the trial's feature
parameters and its best strategy parameters and metrics; the parent carries the grid
definition, totals and, as artifacts, the full result table. Logging happens on the driver
(the tracking URI may be a local file that worker nodes cannot reach).
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from at_core.grid.results import ResultStore
from at_core.grid.spec import GridSpec


def default_tracking_uri(db_dir: str | Path) -> str:
    """SQLite tracking store in DATABASE_DIR (a remote server works by changing the URI)."""
    return f"sqlite:///{Path(db_dir).resolve() / 'mlflow.db'}"


EXPERIMENT = "auction-trader-grid"
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
#: where `make mlflow-ui` serves (MLFLOW_PORT)
UI_BASE = "http://127.0.0.1:5000"


#: MLflow 3's UI opens an experiment on its GenAI overview ("Traces 0") unless the link
#: says which workflow it shows: the URL's `workflowType` wins over the browser's stored
#: choice (the experiment tag alone does not switch it in MLflow 3.17, seen in a browser)
ML_WORKFLOW = "workflowType=machine_learning"


def experiment_url(experiment_id: str, base: str = UI_BASE) -> str:
    """The MLflow UI page of the sweeps' experiment, opening on its runs."""
    return f"{base}/#/experiments/{experiment_id}?{ML_WORKFLOW}"


def parent_run_url(uri: str, mlflow_run_id: str, base: str = UI_BASE) -> str:
    """The MLflow UI page of a sweep's parent run (served by `make mlflow-ui`)."""
    import mlflow

    run = mlflow.MlflowClient(tracking_uri=uri).get_run(mlflow_run_id)
    return f"{base}/#/experiments/{run.info.experiment_id}/runs/{mlflow_run_id}?{ML_WORKFLOW}"


def _clean_metrics(m: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in m.items():
        if isinstance(v, bool) or (isinstance(v, int | float) and math.isfinite(float(v))):
            out[k] = float(v)
    return out


class SweepTracker:
    def __init__(self, uri: str, spec: GridSpec, run_id: str, store: ResultStore) -> None:
        import mlflow

        self.mlflow = mlflow
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        self.spec = spec
        self.run_id = run_id
        self.store = store
        exp = self.client.get_experiment_by_name(EXPERIMENT)
        self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(EXPERIMENT)
        # MLflow 3's UI opens an experiment on a GenAI traces overview ("0 traces") unless the
        # experiment says what it holds; with this kind it opens on the runs (the sweeps)
        if exp is None or exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        info = store.run_info(run_id) or {}
        parent = info.get("mlflow_run_id")
        if parent:
            self.parent_id = parent
        else:
            run = self.client.create_run(
                self.experiment_id, run_name=run_id, tags={"sweep_run_id": run_id}
            )
            self.parent_id = run.info.run_id
            store.set_mlflow_run(run_id, self.parent_id)
            self.client.log_param(self.parent_id, "grid_name", spec.name)
            self.client.log_param(self.parent_id, "n_combinations", spec.n_combinations)
            self.client.log_param(self.parent_id, "search", spec.search.algorithm)
            if spec.search.num_samples is not None:
                self.client.log_param(self.parent_id, "num_samples", spec.search.num_samples)
            self.client.log_param(
                self.parent_id, "feature_keys", ",".join(spec.feature_keys) or "-"
            )
            self.client.log_param(
                self.parent_id, "strategy_keys", ",".join(spec.strategy_keys) or "-"
            )
            self.client.log_text(self.parent_id, json.dumps(spec.params, indent=1), "grid.json")

    def log_trial(self, point: dict[str, Any], best: dict[str, Any] | None, n_rows: int) -> None:
        run = self.client.create_run(
            self.experiment_id,
            run_name=",".join(f"{k}={v}" for k, v in point.items()) or "all",
            tags={"mlflow.parentRunId": self.parent_id, "sweep_run_id": self.run_id},
        )
        rid = run.info.run_id
        params = {f"feature.{k}": v for k, v in point.items()}
        if best:
            params.update({f"best.{k}": best["params"].get(k) for k in self.spec.strategy_keys})
        from mlflow.entities import Metric, Param

        metrics = _clean_metrics({k: v for k, v in (best or {}).items() if k != "params"})
        metrics["n_rows"] = float(n_rows)
        self.client.log_batch(
            rid,
            metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        self.client.set_terminated(rid)

    def log_stored_trial(self, point: dict[str, Any]) -> None:
        """One child run for a finished trial, from what the result sink stored."""
        from at_core.grid.spec import point_key

        key = point_key(point)
        rows = [t for t in self.store.trials(self.run_id) if t["trial_key"] == key]
        best = json.loads(rows[0]["best_json"]) if rows and rows[0]["best_json"] else None
        self.log_trial(point, best, rows[0]["n_rows"] if rows else 0)

    def callback(self) -> Any:
        from ray import tune

        tracker = self
        feature_keys = list(self.spec.feature_keys)

        class _MlflowCallback(tune.Callback):
            def on_trial_complete(
                self, iteration: int, trials: list[Any], trial: Any, **info: Any
            ) -> None:
                if (trial.last_result or {}).get("repeat"):
                    return  # an adaptive search's repeat: its trial is logged already
                cfg = trial.config
                point = cfg["point"] if "point" in cfg else {k: cfg[k] for k in feature_keys}
                tracker.log_stored_trial(point)

        return _MlflowCallback()

    def fail(self, status: str = "FAILED") -> None:
        """End the sweep's parent run as FAILED (or KILLED when interrupted)."""
        self.client.set_terminated(self.parent_id, status=status)

    def finish(self) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{self.run_id}-results.csv"
            from at_core.grid.validation import row_statistics

            n = self.store.export_csv(
                self.run_id, path, extra=row_statistics(self.store, self.run_id)
            )
            self.client.log_artifact(self.parent_id, str(path))
        self.client.log_metric(self.parent_id, "n_results", float(n))
        self.client.set_terminated(self.parent_id)
        return self.parent_id
