"""Walk-forward over 30 generated days, 7-day train / 1-day test windows (step 1 day, a
1-day embargo), over a 1,000-combination strategy grid: wall time of the sweep with its
validation (DSR, PBO, walk-forward: what ``grid run`` does with a ``validation:`` section)
against one plain sweep over the same 30 days, measured in the same process after an
untimed warm-up. The windows choose from the sweep's stored daily returns, so walk-forward
costs one sweep, not one sweep per window.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

DAYS = 30
PARAMS = {
    "accept_outside_k": [1, 2, 3, 4, 5],
    "of_entry_min_norm": [0.0, 0.05, 0.1, 0.15, 0.2],
    "qimb_entry_min": [0.0, 0.05, 0.1, 0.15],
    "max_hold_minutes": [15, 30, 60, 120, 240],
    "risk_pct": [0.01, 0.02],
}


def run() -> list[dict[str, Any]]:
    from at_core.config import load_settings
    from at_core.features.pipeline import run_features
    from at_core.grid.evaluate import evaluate_point, stage1_for
    from at_core.grid.runner import ensure_ray, run_sweep
    from at_core.grid.spec import parse_grid
    from at_core.grid.validation import validate
    from at_core.ingest.synthetic import generate_market

    root = Path(tempfile.mkdtemp(prefix="bench-wf-"))
    try:
        db = root / "db"
        generate_market(db, days=DAYS, seed=5, progress=False)
        base = load_settings()
        run_features(db, base, progress=False)
        ensure_ray()

        def s1(s: Any) -> Any:
            return stage1_for(db, s)

        spec = parse_grid({"name": "wf", "params": PARAMS,
                           "validation": {"walk_forward": {"train_days": 7, "test_days": 1}}},
                          base)  # fmt: skip
        assert spec.n_combinations == 1_000
        run_sweep(spec, db, s1, evaluate_point, run_id="warm", progress=False, mlflow_uri=None)
        t0 = time.perf_counter()
        run_sweep(spec, db, s1, evaluate_point, run_id="plain", progress=False, mlflow_uri=None)
        plain = time.perf_counter() - t0
        t1 = time.perf_counter()
        run_sweep(spec, db, s1, evaluate_point, run_id="wf", progress=False, mlflow_uri=None)
        t2 = time.perf_counter()
        v = validate(db, "wf", settings=base)
        t3 = time.perf_counter()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    wf = v.walk_forward
    assert wf is not None
    total = t3 - t1
    return [
        {
            "name": "validation.walk_forward_30d_1k_s",
            "value": total,
            "unit": "s",
            "baseline": plain,
            "ratio": total / plain,
            "note": f"{DAYS} generated days, 1,000 combinations: sweep {t2 - t1:.2f} s + "
            f"validation {t3 - t2:.2f} s ({len(wf.windows)} walk-forward windows 7d/1d with a "
            f"{wf.purge_days}-day embargo, DSR, PBO S={v.pbo_blocks} over {v.pbo_splits} "
            f"splits); baseline = one plain sweep of the same grid; stitched OOS Sharpe "
            f"{wf.oos_sharpe_ann:.2f} vs IS {wf.is_sharpe_ann_mean:.2f}",
        }
    ]


if __name__ == "__main__":
    for r in run():
        print(r)
