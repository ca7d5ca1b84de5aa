"""Data folders made the way a trader makes them: a generated market with its features,
then a grid sweep through the real command line (nothing written into the stores by hand).
One builder for the tests that need a swept market (dashboard, validation, planted edge)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml


def market(db: Path, days: int, seed: int, accept_prob: float | None = None) -> dict[str, Any]:
    """``generate`` + ``features`` into ``db``; returns the generator's summary."""
    from at_core.config import load_settings
    from at_core.features.pipeline import run_features
    from at_core.ingest.synthetic import generate_market

    summary = generate_market(db, days=days, seed=seed, progress=False, accept_prob=accept_prob)
    run_features(db, load_settings(), progress=False)
    return summary


def sweep(db: Path, grid: dict[str, Any], *extra: str, timeout: float = 900) -> dict[str, Any]:
    """``auction-trader grid run`` of the grid ``grid`` (written beside ``db``) with the
    extra arguments; returns its JSON summary (run_id, validation, ...)."""
    path = db.parent / f"{grid['name']}.grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    r = subprocess.run(
        [sys.executable, "-m", "at_core.cli", "grid", "run", "--grid", str(path),
         "--db-dir", str(db), "--json", *extra],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))
