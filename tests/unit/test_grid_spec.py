"""Grid files: validation before any work, stage split derived from the config model."""

from __future__ import annotations

import json
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
        ({"state_snapshot_interval_minutes": [10, 20]}, "not sweepable"),
        ({"risk_pct": {"from": 0.03, "to": 0.01, "step": 0.01}}, "to >= from"),
        ({"risk_pct": []}, "empty"),
        ({"risk_pct": [0.01, 0.01]}, "duplicate"),
        ({"stop_fill_mode": ["worst_case", "tick_path"]}, "tick_path is not evaluated by the grid"),
        ({"funding_source": ["fixed", "history"]}, "history is not evaluated by the grid"),
        ({"tp2_pct": [0.6, 0.7]}, r"tp2_pct: value 0\.6"),
    ],
)
def test_invalid_grids_stop_before_work(params: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_grid({"params": params}, load_settings())


def test_metric_and_fixed_settings_are_checked_before_work() -> None:
    """Issue 10 §5: `metric: netpnl` used to run the whole sweep, be stored as finished,
    then fail; a fixed setting the grid cannot evaluate was silently priced as default."""
    with pytest.raises(ConfigError, match=r"metric 'netpnl' is not a backtest metric.*net_pnl"):
        parse_grid({"params": {"risk_pct": [0.01]}, "metric": "netpnl"}, load_settings())
    with pytest.raises(ConfigError, match="stop_fill_mode: tick_path"):
        parse_grid(
            {"params": {"risk_pct": [0.01]}, "set": {"stop_fill_mode": "tick_path"}},
            load_settings(),
        )


def test_fixed_overrides_and_fingerprint() -> None:
    base = load_settings()
    a = parse_grid({"params": {"risk_pct": [0.01]}, "set": {"taker_fee_bps": 5.5}}, base)
    b = parse_grid({"params": {"risk_pct": [0.01]}}, base)
    assert a.base.taker_fee_bps == 5.5 and a.fingerprint() != b.fingerprint()
    with pytest.raises(ConfigError, match=r"set\.nope"):
        parse_grid({"params": {"risk_pct": [0.01]}, "set": {"nope": 1}}, base)


@pytest.mark.parametrize("name", ["demo", "smoke", "sensitivity", "wide-optuna"])
def test_shipped_grid_files_validate(name: str) -> None:
    g = load_grid(REPO / "configs" / "grid" / f"{name}.yaml", load_settings())
    assert g.n_combinations > 1 and g.feature_keys


FEATURE6 = {"alpha_bin": [0.2, 0.25, 0.3], "va_fraction": [0.6, 0.7], "risk_pct": [0.01, 0.02]}


def test_grid_search_is_the_default_and_runs_every_feature_point() -> None:
    g = parse_grid({"params": FEATURE6}, load_settings())
    assert g.search.algorithm == "grid" and g.n_planned_trials == 6
    assert g.planned_points() == g.feature_points() and g.n_combinations == 12


def test_random_search_draws_distinct_points_reproducibly() -> None:
    doc = {"params": FEATURE6, "search": {"algorithm": "random", "num_samples": 4, "seed": 3}}
    a = parse_grid(doc, load_settings())
    b = parse_grid(doc, load_settings())
    pts = a.planned_points()
    assert len(pts) == 4 and len({json.dumps(p, sort_keys=True) for p in pts}) == 4
    assert pts == b.planned_points()  # a resumed run draws the same points
    assert all(p in a.feature_points() for p in pts)
    assert a.n_combinations == 4 * 2
    other = parse_grid({**doc, "search": {**doc["search"], "seed": 4}}, load_settings())
    assert other.fingerprint() != a.fingerprint()
    # more samples than points: every point once
    big = parse_grid({**doc, "search": {"algorithm": "random", "num_samples": 50}}, load_settings())
    assert big.n_planned_trials == 6 and len(big.planned_points()) == 6


def test_optuna_search_plans_num_samples_and_is_adaptive() -> None:
    g = parse_grid(
        {"params": FEATURE6, "search": {"algorithm": "optuna", "num_samples": 5}}, load_settings()
    )
    assert g.n_planned_trials == 5 and g.n_combinations == 10
    with pytest.raises(ValueError, match="adaptively"):
        g.planned_points()


@pytest.mark.parametrize(
    ("search", "match"),
    [
        ({"algorithm": "bayes"}, r"search\.algorithm.*not one of"),
        ({"algorithm": "random"}, r"search\.num_samples.*positive integer"),
        ({"algorithm": "optuna", "num_samples": 0}, r"search\.num_samples"),
        ({"algorithm": "grid", "num_samples": 3}, r"only for random or optuna"),
        ({"algorithm": "random", "num_samples": 2, "seed": "x"}, r"search\.seed"),
        ({"algorithm": "random", "num_samples": 2, "sampler": "tpe"}, r"unknown key"),
    ],
)
def test_invalid_search_stops_before_work(search: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_grid({"params": FEATURE6, "search": search}, load_settings(), "g.yaml")


def test_optuna_searcher_is_primed_with_a_resumed_runs_trials() -> None:
    from at_core.grid.runner import _optuna_search

    g = parse_grid(
        {"params": FEATURE6, "search": {"algorithm": "optuna", "num_samples": 5}}, load_settings()
    )
    finished = [
        {"trial_key": '{"alpha_bin":0.2,"va_fraction":0.6}', "best_json": '{"net_pnl": 12.5}'},
        {"trial_key": '{"alpha_bin":0.3,"va_fraction":0.7}', "best_json": None},  # no score
    ]
    algo = _optuna_search(g, finished)
    assert algo._points_to_evaluate == [{"alpha_bin": 0.2, "va_fraction": 0.6}]
    assert algo._evaluated_rewards == [12.5]


def test_backtest_workers_sets_the_sweep_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 §5: `backtest_workers` (SPEC §12.5, default CPU/2) was accepted and ignored."""
    import os

    from at_core.grid.runner import sweep_workers

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    auto = load_settings()
    assert sweep_workers(auto, None) == max(1, (os.cpu_count() or 2) // 2)
    assert sweep_workers(auto, "127.0.0.1:6379") is None, "a cluster's CPUs decide"
    three = load_settings(overrides={"backtest_workers": 3})
    assert sweep_workers(three, None) == 3 and sweep_workers(three, "127.0.0.1:6379") == 3
