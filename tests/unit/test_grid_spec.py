"""Grid files: validation before any work, stage split derived from the config model."""

from __future__ import annotations

from pathlib import Path

import pytest

from at_core.config import load_settings
from at_core.errors import ConfigError
from at_core.grid.spec import load_grid, parse_grid

REPO = Path(__file__).resolve().parents[2]


def test_split_is_derived_from_stage_tags() -> None:
    g = parse_grid(
        {
            "params": {
                "alpha_bin": [0.2, 0.3],
                "va_fraction": [0.6, 0.7, 0.8],
                "risk_pct": [0.01, 0.02],
            }
        },
        load_settings(),
    )
    assert g.feature_keys == ["alpha_bin", "va_fraction"] and g.strategy_keys == ["risk_pct"]
    assert (g.n_feature_points, g.n_strategy_points, g.n_combinations) == (6, 2, 12)
    assert len(g.feature_points()) == 6 and len(g.strategy_points()) == 2


def test_ranges_expand_inclusively_without_float_drift() -> None:
    g = parse_grid(
        {
            "params": {
                "risk_pct": {"from": 0.01, "to": 0.03, "step": 0.01},
                "accept_outside_k": {"from": 2, "to": 5, "step": 1},
            }
        },
        load_settings(),
    )
    assert g.params["risk_pct"] == [0.01, 0.02, 0.03]
    assert g.params["accept_outside_k"] == [2, 3, 4, 5]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"alpha_bins": [0.2]}, "unknown config key"),
        ({"va_fraction": [0.7, 1.5]}, r"va_fraction: value 1\.5"),
        ({"accept_outside_k": ["x"]}, "accept_outside_k"),
        ({"warmup_minutes": [10, 20]}, "not sweepable"),
        ({"risk_pct": {"from": 0.03, "to": 0.01, "step": 0.01}}, "to >= from"),
        ({"risk_pct": []}, "empty"),
        ({"risk_pct": [0.01, 0.01]}, "duplicate"),
    ],
)
def test_invalid_grids_stop_before_work(params: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_grid({"params": params}, load_settings())


def test_fixed_overrides_and_fingerprint() -> None:
    base = load_settings()
    a = parse_grid({"params": {"risk_pct": [0.01]}, "set": {"taker_fee_bps": 5.5}}, base)
    b = parse_grid({"params": {"risk_pct": [0.01]}}, base)
    assert a.base.taker_fee_bps == 5.5 and a.fingerprint() != b.fingerprint()
    with pytest.raises(ConfigError, match=r"set\.nope"):
        parse_grid({"params": {"risk_pct": [0.01]}, "set": {"nope": 1}}, base)


@pytest.mark.parametrize("name", ["demo", "smoke", "sensitivity"])
def test_shipped_grid_files_validate(name: str) -> None:
    g = load_grid(REPO / "configs" / "grid" / f"{name}.yaml", load_settings())
    assert g.n_combinations > 1 and g.feature_keys
