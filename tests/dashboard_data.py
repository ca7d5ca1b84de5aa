"""The dashboard tests' data folder, made the way a trader makes one (generate, features,
backtest, grid run): nothing is written into the stores by hand."""

from __future__ import annotations

from pathlib import Path

from tests.market_fixtures import market, sweep

DAYS = 5
SEED = 11


def build(db: Path) -> dict[str, object]:
    from at_core.backtest.cli import backtest
    from at_core.config import load_settings

    settings = load_settings()
    market(db, DAYS, SEED)
    bt = backtest(db, settings, write_report=False, progress=False)
    grid = {
        "name": "dash",
        "metric": "net_pnl",
        "params": {
            "alpha_bin": [0.25, 0.35],
            "accept_outside_k": [1, 2, 3],
            "max_hold_minutes": [15, 60],
        },
    }
    return {
        "db": db,
        "backtest": bt.run_id,
        "sweep": sweep(db, grid)["run_id"],
        "settings": settings,
    }
