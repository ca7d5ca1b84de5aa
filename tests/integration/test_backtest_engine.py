"""Backtester through the bindings: no look-ahead, determinism, batch = singles, the
Python live-path replay (an independent fill model) agrees with the Rust one, and bad
tables fail with the column named."""

from __future__ import annotations

import numpy as np
import pytest
from fill_oracle import replay

from at_core.backtest import action_names, coerce_table, run_backtest, run_batch, synthetic_table
from at_core.config import load_settings
from at_core.errors import CoreError, InputError
from at_core.strategy import params_dict

DAY0 = 1_704_067_200_000


@pytest.fixture(scope="module")
def table() -> dict[str, np.ndarray]:
    return coerce_table(synthetic_table(4 * 1440, 7, DAY0))


def test_no_lookahead_and_deterministic(table: dict[str, np.ndarray]) -> None:
    s = load_settings()
    a = run_backtest(table, s)
    assert a.metrics["n_trades"] > 10
    assert a.metrics["lookahead_violations"] == 0
    tr = a.trades
    assert np.all(tr["fill_ts_ms"] > tr["decision_ts_ms"])
    assert np.all(tr["exit_ts_ms"] >= tr["fill_ts_ms"])
    b = run_backtest(table, s)
    # bit for bit; n/a metrics (a Sharpe from 4 days) are NaN on both sides
    assert {k: np.float64(v).tobytes() for k, v in a.metrics.items()} == {
        k: np.float64(v).tobytes() for k, v in b.metrics.items()
    }
    np.testing.assert_array_equal(a.equity, b.equity)
    recs = a.trade_records()
    assert {"decision_ts_ms", "fill_ts_ms", "side", "qty", "fees", "funding", "exit_reason"} <= set(
        recs[0]
    )


def test_flat_long_flat_transitions_in_decisions(table: dict[str, np.ndarray]) -> None:
    r = run_backtest(table, load_settings())
    names = action_names()
    actions = [names[c] for c in r.decisions["action"]]
    assert {"HOLD", "ENTER_LONG", "ENTER_SHORT", "EXIT"} <= set(actions)
    assert len(r.equity) == len(actions) == len(table["ts_min"])
    # Every long that opened went back to flat: an exit fill for each entry.
    longs = r.trades["side"] > 0
    assert longs.any() and np.all(r.trades["exit_ts_ms"][longs] > 0)


def test_batch_equals_single_runs(table: dict[str, np.ndarray]) -> None:
    s = load_settings()
    grid = [{"accept_outside_k": k, "risk_pct": r} for k in (2, 3) for r in (0.01, 0.02)]
    grid.append({"risk_pct": 0.0})
    out = run_batch(table, s, grid, threads=2)
    for i, g in enumerate(grid[:-1]):
        single = run_backtest(table, s, g).metrics
        assert out["net_pnl"][i] == single["net_pnl"]
        assert out["n_trades"][i] == single["n_trades"]
        assert out["error"][i] is None
    assert "risk_pct" in out["error"][-1]
    assert np.isnan(out["net_pnl"][-1])


def test_python_live_replay_matches_rust_fill_model(table: dict[str, np.ndarray]) -> None:
    s = load_settings(overrides={"use_limit_for_entry": False})
    p = params_dict(s)
    rust = run_backtest(table, s).metrics
    py = replay(table, p)
    assert py["n_trades"] == rust["n_trades"]
    assert py["final_equity"] == pytest.approx(rust["final_equity"], rel=1e-9)


def test_bad_tables_are_rejected(table: dict[str, np.ndarray]) -> None:
    s = load_settings()
    broken = dict(table)
    del broken["vah"]
    with pytest.raises(InputError, match="vah"):
        run_backtest(broken, s)
    look = dict(table)
    look["next_quote_ts"] = table["ts_min"] + 59_999
    with pytest.raises(CoreError, match="look ahead"):
        run_backtest(look, s)
