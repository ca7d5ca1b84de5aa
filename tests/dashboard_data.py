"""The dashboard tests' data folder, made the way a trader makes one (generate, features,
backtest, grid run): nothing is written into the stores by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

DAYS = 5
SEED = 11


def build(db: Path) -> dict[str, object]:
    from at_core.backtest.cli import backtest
    from at_core.config import load_settings
    from at_core.features.pipeline import run_features
    from at_core.ingest.synthetic import generate_market

    settings = load_settings()
    generate_market(db, days=DAYS, seed=SEED, progress=False)
    run_features(db, settings, progress=False)
    bt = backtest(db, settings, write_report=False, progress=False)
    grid = db.parent / "grid.yaml"
    grid.write_text(
        yaml.safe_dump(
            {
                "name": "dash",
                "metric": "net_pnl",
                "params": {
                    "alpha_bin": [0.25, 0.35],
                    "accept_outside_k": [1, 2, 3],
                    "max_hold_minutes": [15, 60],
                },
            }
        )
    )
    r = subprocess.run(
        [sys.executable, "-m", "at_core.cli", "grid", "run", "--grid", str(grid),
         "--db-dir", str(db), "--json"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    sweep = json.loads(r.stdout.strip().splitlines()[-1])
    return {"db": db, "backtest": bt.run_id, "sweep": sweep["run_id"], "settings": settings}
