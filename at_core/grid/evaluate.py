"""What one grid trial computes: stage-1 data once per stage-1 setting, then per feature point
stage 2 + the whole strategy sub-grid in one Rust batch call.

``stage1_for`` runs on the driver (it reads ticks from the lake); its result is ``ray.put``
once and shared by every trial with that stage-1 setting. ``evaluate_point`` runs inside a
trial on any node: it needs only the stage-1 arrays, never the file system.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from at_core.config import Settings
from at_core.errors import InputError

Arrays = dict[str, np.ndarray]
#: keys of ``run_batch``'s result that are not metrics (declared in the Rust bindings)
DAILY_RETURNS, DAILY_DAYS = "daily_returns", "daily_days"


def _stage1_config(settings: Settings) -> dict[str, Any]:
    from at_core.features.engine import engine_config

    return {k: v for k, v in engine_config(settings).items() if Settings.stage_of(k) == "stage1"}


def stage1_for(db_dir: str | Path, settings: Settings, progress: bool = False) -> Arrays:
    """Stage-1 minute summaries for ``settings``' stage-1 keys.

    Reuses ``<db_dir>/stage1`` (written by ``auction-trader features``) when it was computed
    with the same stage-1 settings; otherwise recomputes stage 1 from the lake ticks, in
    memory, without touching the stored features.
    """
    from at_core.features import pipeline

    meta_path = Path(db_dir) / "stage1" / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        from at_core.storage.lake import Lake

        if meta.get("stage1_config") == _stage1_config(settings) and meta.get(
            "sources"
        ) == json.loads(json.dumps(Lake(db_dir).sources.fingerprint())):
            return pipeline.load_stage1(db_dir)
    out = pipeline.compute(db_dir, settings, progress=progress)
    if not len(out.get("ts_min", ())):
        raise InputError(f"the lake in {db_dir} holds no ticks: generate or import data first")
    keep = [k for k in out if k not in pipeline.STAGE2_COLUMNS]
    return {k: out[k] for k in keep}


def _clean(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass
class DailyReturns:
    """Each combination's mark-to-market return per UTC day: what the research statistics
    (deflated Sharpe, PBO, walk-forward) are computed from after the sweep. ``days`` holds
    UTC day numbers (ms // 86,400,000), one per column of ``returns`` (rows = the trial's
    combinations, in order; NaN rows for a combination whose parameters were invalid)."""

    days: np.ndarray
    returns: np.ndarray


@dataclass
class TrialResult:
    """One trial: (full params, metrics) per strategy point, and their daily returns."""

    rows: list[tuple[dict[str, Any], dict[str, Any]]]
    daily: DailyReturns | None = None


def evaluate_point(
    stage1: Arrays, settings: Settings, strategy_points: list[dict[str, Any]], threads: int = 1
) -> TrialResult:
    """Stage 2 for ``settings`` (a feature point) and every strategy point in one Rust call."""
    from at_core.backtest import run_batch
    from at_core.backtest.table import minute_table
    from at_core.features.engine import stage2

    feats = stage2(stage1, settings)
    table = minute_table({**stage1, **feats}, use_bvc=settings.use_bvc_fallback)
    res = run_batch(table, settings, strategy_points, threads=threads)
    daily = DailyReturns(
        days=np.asarray(res.pop(DAILY_DAYS), dtype=np.int64),
        returns=np.asarray(res.pop(DAILY_RETURNS), dtype=np.float64),
    )
    base = settings.model_dump(mode="json")
    metric_cols = [k for k in res if k != "error"]
    errors = res.get("error")
    rows: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for i, point in enumerate(strategy_points):
        metrics = {k: _clean(res[k][i]) for k in metric_cols}
        if errors is not None and errors[i]:
            metrics["error"] = str(errors[i])
        rows.append(({**base, **point}, metrics))
    return TrialResult(rows, daily)
