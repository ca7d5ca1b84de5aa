"""Thin Python face of the Rust backtester (``rust/at-backtest``).

The feature table is a dict of 1-d NumPy arrays (:data:`MINUTE_TABLE_COLUMNS`), handed to
Rust without copying; the fill model, fees, funding, metrics and the batch runner all live
in Rust. The domain pitfall: a backtest must never fill an order at or before the minute
close that decided it (SPEC §12.4) — the fill references (``next_quote_ts``, ``next_bid``,
``next_ask``) are the first quote strictly after each close, and Rust rejects a table
whose fill reference is not after its close.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from at_core import _core
from at_core.config import Settings
from at_core.strategy import params_dict

#: Column name → dtype of the minute table the backtester reads. Kernel inputs are the
#: fields of ``MinuteInput`` (see ``at_core/_core.pyi``); the last five are fill references.
MINUTE_TABLE_COLUMNS: dict[str, Any] = {
    "ts_min": np.int64,
    "open": np.float64,
    "high": np.float64,
    "low": np.float64,
    "close": np.float64,
    "volume": np.float64,
    "vah_trade_dist": np.float64,
    "val_trade_dist": np.float64,
    "mid_close": np.float64,
    "spread_avg": np.float64,
    "poc": np.float64,
    "vah": np.float64,
    "val": np.float64,
    "va_valid": np.bool_,
    "of_1m": np.float64,
    "of_norm_1m": np.float64,
    "qimb_close": np.float64,
    "qimb_ema": np.float64,
    "ambiguous_frac": np.float64,
    "next_quote_ts": np.int64,
    "next_bid": np.float64,
    "next_ask": np.float64,
    "low_ts": np.int64,
    "high_ts": np.int64,
}

Table = dict[str, NDArray[Any]]


@dataclass
class BacktestRun:
    """One backtest: metrics, trade columns, per-minute equity and decisions."""

    metrics: dict[str, float]
    trades: dict[str, Any]
    equity: NDArray[np.float64]
    decisions: dict[str, Any]
    #: mark-to-market return per UTC day (the Sharpe's series) and each one's UTC day number
    daily_returns: NDArray[np.float64] | None = None
    daily_days: NDArray[np.int64] | None = None

    def trade_records(self) -> list[dict[str, Any]]:
        """Trades as one dict per trade (JSON-ready; NaN becomes None)."""
        n = len(self.trades["side"])
        out: list[dict[str, Any]] = []
        for i in range(n):
            rec: dict[str, Any] = {}
            for k, col in self.trades.items():
                v = col[i]
                if isinstance(v, np.generic):
                    v = v.item()
                if isinstance(v, float) and v != v:
                    v = None
                rec[k] = v
            rec["side"] = "LONG" if rec["side"] > 0 else "SHORT"
            out.append(rec)
        return out


def coerce_table(table: dict[str, Any]) -> Table:
    """Contiguous arrays of the right dtypes (no copy when they already are)."""
    out: Table = {}
    for k, dt in MINUTE_TABLE_COLUMNS.items():
        if k not in table:
            from at_core.errors import InputError

            raise InputError(f"feature table: missing column `{k}`")
        out[k] = np.ascontiguousarray(table[k], dtype=dt)
    optional = (
        ("tick_ts", np.int64),
        ("tick_price", np.float64),
        ("tick_start", np.uint32),
        # funding history (funding_source: history): instants (ms) and rates (fractions)
        ("funding_ts", np.int64),
        ("funding_rate", np.float64),
    )
    for k, dt in optional:
        if k in table:
            out[k] = np.ascontiguousarray(table[k], dtype=dt)
    return out


def run_backtest(
    table: dict[str, Any], settings: Settings, overrides: dict[str, Any] | None = None
) -> BacktestRun:
    """Backtest ``settings`` (+ strategy ``overrides``) over one minute table."""
    r = _core.backtest(coerce_table(table), params_dict(settings, overrides))
    return BacktestRun(
        metrics=dict(r["metrics"]),
        trades=r["trades"],
        equity=r["equity"],
        decisions=r["decisions"],
        daily_returns=r["daily_returns"],
        daily_days=r["daily_days"],
    )


def run_batch(
    table: dict[str, Any],
    settings: Settings,
    grid: list[dict[str, Any]],
    threads: int = 1,
) -> dict[str, Any]:
    """Metrics of every strategy parameter point of ``grid`` (dicts of overrides) over one
    table, in one Rust call that shares the table. Returns metric columns plus ``error``."""
    base = params_dict(settings)
    sets = [{**base, **params_dict(settings, g)} for g in grid]
    return dict(_core.backtest_batch(coerce_table(table), sets, threads))


def synthetic_table(minutes: int, seed: int, start_ms: int, ticks_per_leg: int = 0) -> Table:
    """Seeded synthetic minute table (stand-in until the feature engine feeds real ones)."""
    return dict(_core.synthetic_minute_table(minutes, seed, start_ms, ticks_per_leg))


def metric_names() -> list[str]:
    return list(_core.backtest_metric_names())


#: Fewest daily returns a Sharpe is reported from; below, the metric is NaN (shown n/a).
SHARPE_MIN_DAYS: int = _core.backtest_sharpe_min_days()


def action_names() -> list[str]:
    """Action names in code order (``decisions['action']`` holds codes)."""
    return list(_core.backtest_action_names())
