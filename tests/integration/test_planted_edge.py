"""The whole research path on generated markets with and without an edge planted in
them: generate (the market accepts 97 % of its breakouts, against the calibrated 55 %),
features, `grid run` of 48 combinations with its statistics. Costs are off in both (fees
and slippage 0) so that what is measured is the market's edge, not the cost of trading it.

What the statistics must say: with the edge, the winner's deflated Sharpe clears the
threshold and it is not flagged, and out of sample the selected combinations do not lose;
without it, the winner (still profitable in sample: the best of 48) is flagged and loses
out of sample half the time.

PBO is reported, not asserted: every combination of this grid trades the same planted
edge (N_eff ~ 2), so which of them ranks first in sample is noise and PBO says so (it
measures whether the in-sample ranking carries out of sample, not whether there is an
edge); the edge-vs-noise PBO checks are on return matrices (tests/unit/test_sweep_stats.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.market_fixtures import market, sweep

pytestmark = pytest.mark.slow
COSTLESS = ["maker_fee_bps=0", "taker_fee_bps=0", "slippage_ticks_entry=0", "slippage_ticks_exit=0"]
GRID = {
    "name": "edge",
    "metric": "net_pnl",
    "params": {
        "accept_outside_k": [1, 2, 3, 5],
        "enable_retest_mode": [True, False],
        "max_hold_minutes": [15, 60, 240],
        "alpha_bin": [0.25, 0.4],
    },
}


def _sweep(root: Path, accept_prob: float | None) -> dict[str, Any]:
    db = root / "db"
    summary = market(db, days=10, seed=5, accept_prob=accept_prob)
    assert summary["source_id"].endswith("-p0.97") == (accept_prob is not None)
    sets = [a for kv in COSTLESS for a in ("--set", kv)]
    v = sweep(db, GRID, "--no-mlflow", *sets)["validation"]
    assert v is not None
    return dict(v)


def test_a_planted_edge_is_found_and_its_absence_is_flagged(tmp_path: Path) -> None:
    planted = _sweep(tmp_path / "planted", 0.97)
    plain = _sweep(tmp_path / "plain", None)
    print(json.dumps({k: {"dsr": v["winner"]["dsr"], "pnl": v["winner"]["metric"],
                          "pbo": v["pbo"], "p_oos_loss": v["prob_oos_loss"],
                          "n_eff": v["n_eff"]} for k, v in (("planted", planted), ("plain", plain))}))  # fmt: skip
    assert planted["winner"]["metric"] > 0 and planted["winner"]["dsr"] >= planted["dsr_min"]
    assert not planted["winner_flagged"]
    assert planted["prob_oos_loss"] <= 0.2
    assert plain["winner"]["dsr"] < plain["dsr_min"] and plain["winner_flagged"]
    assert plain["prob_oos_loss"] >= 0.3
    # the planted market's winner is far stronger than the best of the plain one
    assert planted["winner"]["sharpe_day"] > 2 * plain["winner"]["sharpe_day"]
