"""Before a sweep, swept keys that change nothing under the fixed settings are named
(issue 10 §6), measured on the data with the sweep's own Rust path."""

from __future__ import annotations

from pathlib import Path

import pytest

from at_core.config import load_settings
from at_core.features.pipeline import run_features
from at_core.grid.evaluate import stage1_for
from at_core.grid.precheck import inert_alone
from at_core.grid.spec import parse_grid
from at_core.ingest.synthetic import generate_market


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("precheck")
    generate_market(d, days=1, seed=7, progress=False)
    run_features(d, load_settings(), progress=False)
    return d


def test_a_norm_threshold_under_the_default_rule_is_named(db: Path) -> None:
    # of_threshold_mode `either` with raw thresholds of 0: OF_norm > t >= 0 implies OF > 0,
    # so the norm threshold never decides; the stop buffer does
    spec = parse_grid(
        {"params": {"of_entry_min_norm": [0.0, 0.1, 0.2], "stop_buffer_ticks": [2, 40]}},
        load_settings(),
    )
    stage1 = stage1_for(db, spec.base)
    assert inert_alone(spec, stage1) == ["of_entry_min_norm"]
    # under the norm-only rule the same key decides
    norm = parse_grid(
        {
            "params": {"of_entry_min_norm": [0.0, 0.5]},
            "set": {"of_threshold_mode": "norm"},
        },
        load_settings(),
    )
    assert inert_alone(norm, stage1) == []
